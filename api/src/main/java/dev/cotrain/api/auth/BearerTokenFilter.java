package dev.cotrain.api.auth;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.error.ApiError;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Optional;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Every {@code /api/} request needs {@code Authorization: Bearer <token>}; without a valid one the
 * answer is 401 and nothing else runs. The caller is set as the request attribute {@link
 * Caller#ATTRIBUTE}.
 */
public class BearerTokenFilter extends OncePerRequestFilter {

  private final TokenRepository tokens;
  private final ObjectMapper mapper;

  public BearerTokenFilter(TokenRepository tokens, ObjectMapper mapper) {
    this.tokens = tokens;
    this.mapper = mapper;
  }

  @Override
  protected void doFilterInternal(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    Optional<Caller> caller = authenticate(request.getHeader(HttpHeaders.AUTHORIZATION), tokens);
    if (caller.isEmpty()) {
      response.setStatus(HttpServletResponse.SC_UNAUTHORIZED);
      response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
      response.setContentType(MediaType.APPLICATION_PROBLEM_JSON_VALUE);
      mapper.writeValue(
          response.getOutputStream(),
          ApiError.of(
              HttpStatus.UNAUTHORIZED,
              request.getHeader(HttpHeaders.AUTHORIZATION) == null
                  ? "an API token is required: Authorization: Bearer <token>"
                  : "the API token is unknown or revoked",
              request.getRequestURI()));
      return;
    }
    request.setAttribute(Caller.ATTRIBUTE, caller.get());
    chain.doFilter(request, response);
  }

  /** The caller of an {@code Authorization} header value, if it carries a valid bearer token. */
  static Optional<Caller> authenticate(String authorization, TokenRepository tokens) {
    if (authorization == null || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return Optional.empty();
    }
    return token(authorization.substring(7).strip(), tokens);
  }

  static Optional<Caller> token(String token, TokenRepository tokens) {
    if (!token.startsWith(Tokens.PREFIX) || token.length() > 200) {
      return Optional.empty();
    }
    return tokens.authenticate(token);
  }
}
