package dev.cotrain.api.auth;

import dev.cotrain.api.error.ApiException;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import jakarta.validation.Valid;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.Pattern;
import jakarta.validation.constraints.Size;
import java.net.URI;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.lang.Nullable;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * API tokens (docs/api.md): an admin creates them for owners; everyone lists and revokes their own,
 * an admin all of them.
 */
@RestController
@RequestMapping(path = "/api/tokens", produces = MediaType.APPLICATION_JSON_VALUE)
class TokenController {

  /** The body of {@code POST /api/tokens}. */
  record CreateTokenRequest(
      @NotBlank(message = "is required")
          @Size(max = 100, message = "must be at most 100 characters")
          String name,
      @NotBlank(message = "is required")
          @Pattern(
              regexp = "[A-Za-z0-9._@-]{1,64}",
              message = "must be 1 to 64 letters, digits, '.', '_', '@' or '-'")
          String owner,
      Boolean admin) {}

  /** A token as listed; {@code token} is set only in the answer to its creation. */
  record TokenResponse(
      UUID id,
      String name,
      String owner,
      boolean admin,
      Instant createdAt,
      @Nullable Instant revokedAt,
      @Nullable String token) {

    static TokenResponse of(TokenRepository.TokenRow row, String token) {
      return new TokenResponse(
          row.id(), row.name(), row.owner(), row.admin(), row.createdAt(), row.revokedAt(), token);
    }
  }

  record TokenListResponse(List<TokenResponse> tokens) {}

  private final TokenRepository tokens;

  TokenController(TokenRepository tokens) {
    this.tokens = tokens;
  }

  /** Admin only. The answer carries the token: it is shown this once. */
  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(
      responseCode = "201",
      description = "created; the answer is the only time the token is shown")
  @ApiResponse(responseCode = "403", description = "the caller's token is not an admin's")
  ResponseEntity<TokenResponse> create(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @Valid @RequestBody CreateTokenRequest request) {
    if (!caller.admin()) {
      throw new ApiException(HttpStatus.FORBIDDEN, "only an admin token can create tokens");
    }
    TokenRepository.Created created =
        tokens.create(request.name(), request.owner(), request.admin() != null && request.admin());
    return ResponseEntity.created(URI.create("/api/tokens/" + created.row().id()))
        .body(TokenResponse.of(created.row(), created.token()));
  }

  @GetMapping
  TokenListResponse list(@RequestAttribute(Caller.ATTRIBUTE) Caller caller) {
    return new TokenListResponse(
        tokens.list(caller.ownerFilter()).stream().map(t -> TokenResponse.of(t, null)).toList());
  }

  /** Revokes a token at once; another owner's token is 404 for a non-admin. */
  @DeleteMapping("/{id}")
  @ApiResponse(responseCode = "204", description = "revoked")
  ResponseEntity<Void> revoke(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    TokenRepository.TokenRow row =
        tokens
            .find(id)
            .filter(t -> caller.canSee(t.owner()))
            .orElseThrow(() -> ApiException.notFound("token " + id + " not found"));
    tokens.revoke(row.id());
    return ResponseEntity.noContent().build();
  }
}
