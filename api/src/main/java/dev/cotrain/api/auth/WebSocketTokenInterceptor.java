package dev.cotrain.api.auth;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.server.ServerHttpRequest;
import org.springframework.http.server.ServerHttpResponse;
import org.springframework.web.socket.WebSocketHandler;
import org.springframework.web.socket.server.HandshakeInterceptor;

/**
 * A WebSocket handshake needs a token (docs/websocket.md): {@code Authorization: Bearer <token>}
 * where the client can set headers, or, from a browser, the subprotocol {@code bearer.<token>}
 * offered next to {@link #PROTOCOL}. Without a valid one the handshake is answered 401. The caller
 * goes into the socket's attributes as {@link Caller#ATTRIBUTE}.
 */
public class WebSocketTokenInterceptor implements HandshakeInterceptor {

  /** The subprotocol the server selects; a browser must offer it along with its token. */
  public static final String PROTOCOL = "cotrain.v1";

  static final String TOKEN_PROTOCOL_PREFIX = "bearer.";

  private final TokenRepository tokens;

  public WebSocketTokenInterceptor(TokenRepository tokens) {
    this.tokens = tokens;
  }

  @Override
  public boolean beforeHandshake(
      ServerHttpRequest request,
      ServerHttpResponse response,
      WebSocketHandler handler,
      Map<String, Object> attributes) {
    HttpHeaders headers = request.getHeaders();
    String authorization = headers.getFirst(HttpHeaders.AUTHORIZATION);
    Optional<Caller> caller =
        authorization != null
            ? BearerTokenFilter.authenticate(authorization, tokens)
            : protocols(headers).stream()
                .filter(p -> p.startsWith(TOKEN_PROTOCOL_PREFIX))
                .findFirst()
                .flatMap(
                    p ->
                        BearerTokenFilter.token(
                            p.substring(TOKEN_PROTOCOL_PREFIX.length()), tokens));
    if (caller.isEmpty()) {
      response.setStatusCode(HttpStatus.UNAUTHORIZED);
      response.getHeaders().set(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
      return false;
    }
    attributes.put(Caller.ATTRIBUTE, caller.get());
    return true;
  }

  @Override
  public void afterHandshake(
      ServerHttpRequest request,
      ServerHttpResponse response,
      WebSocketHandler handler,
      Exception exception) {}

  private static List<String> protocols(HttpHeaders headers) {
    List<String> values = headers.get("Sec-WebSocket-Protocol");
    return values == null
        ? List.of()
        : values.stream().flatMap(v -> Arrays.stream(v.split(","))).map(String::strip).toList();
  }
}
