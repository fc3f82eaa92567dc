package dev.cotrain.api.auth;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.annotation.Transactional;

/** The {@code api_tokens} table. */
@Repository
public class TokenRepository {

  /** A token as listed: never the token itself. */
  public record TokenRow(
      UUID id, String name, String owner, boolean admin, Instant createdAt, Instant revokedAt) {}

  /** A token just created: the row, and the token, shown this once. */
  public record Created(TokenRow row, String token) {}

  private final JdbcClient jdbc;

  TokenRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  public Created create(String name, String owner, boolean admin) {
    String token = Tokens.generate();
    UUID id = UUID.randomUUID();
    jdbc.sql(
            """
            INSERT INTO api_tokens (id, name, owner, admin, token_hash)
            VALUES (:id, :name, :owner, :admin, :hash)
            """)
        .param("id", id)
        .param("name", name)
        .param("owner", owner)
        .param("admin", admin)
        .param("hash", Tokens.hash(token))
        .update();
    return new Created(find(id).orElseThrow(), token);
  }

  /** The caller a token stands for, unless it is unknown or revoked. */
  Optional<Caller> authenticate(String token) {
    return jdbc.sql(
            "SELECT id, owner, admin FROM api_tokens WHERE token_hash = :hash AND revoked_at IS NULL")
        .param("hash", Tokens.hash(token))
        .query(
            (rs, n) ->
                new Caller(
                    rs.getObject("id", UUID.class), rs.getString("owner"), rs.getBoolean("admin")))
        .optional();
  }

  Optional<TokenRow> find(UUID id) {
    return jdbc.sql("SELECT * FROM api_tokens WHERE id = :id")
        .param("id", id)
        .query(TokenRepository::row)
        .optional();
  }

  /** Every token of {@code owner}, or all of them when null; newest first. */
  List<TokenRow> list(String owner) {
    return jdbc.sql(
            """
            SELECT * FROM api_tokens WHERE (CAST(:owner AS text) IS NULL OR owner = :owner)
             ORDER BY created_at DESC, id
            """)
        .param("owner", owner)
        .query(TokenRepository::row)
        .list();
  }

  /** Revokes the token; a revoked token stays listed. Answers whether it was active. */
  boolean revoke(UUID id) {
    return jdbc.sql(
                "UPDATE api_tokens SET revoked_at = now() WHERE id = :id AND revoked_at IS NULL")
            .param("id", id)
            .update()
        == 1;
  }

  /**
   * Creates an admin token when there is no active one, under a lock that makes two API instances
   * starting together create one between them. Answers it, or empty when one exists.
   */
  @Transactional
  public Optional<Created> createFirstAdmin() {
    jdbc.sql("SELECT pg_advisory_xact_lock(hashtext('cotrain.api_tokens.admin'))")
        .query()
        .listOfRows();
    boolean exists =
        jdbc.sql("SELECT count(*) FROM api_tokens WHERE admin AND revoked_at IS NULL")
                .query(Long.class)
                .single()
            > 0;
    return exists ? Optional.empty() : Optional.of(create("admin", "admin", true));
  }

  private static TokenRow row(java.sql.ResultSet rs, int n) throws java.sql.SQLException {
    OffsetDateTime revoked = rs.getObject("revoked_at", OffsetDateTime.class);
    return new TokenRow(
        rs.getObject("id", UUID.class),
        rs.getString("name"),
        rs.getString("owner"),
        rs.getBoolean("admin"),
        rs.getObject("created_at", OffsetDateTime.class).toInstant(),
        revoked == null ? null : revoked.toInstant());
  }
}
