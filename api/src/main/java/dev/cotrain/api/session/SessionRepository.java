package dev.cotrain.api.session;

import dev.cotrain.workflows.session.SessionStatus;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** The sessions and metrics tables, as the API reads and creates them. */
@Repository
public class SessionRepository {

  private static final String SELECT_SESSION =
      """
      SELECT s.id, s.workflow_id, s.name, s.description, s.request::text AS request, s.status,
             s.progress, s.latest_step, s.total_steps, s.latest_loss, s.latest_accuracy,
             s.learning_rate, m.epoch AS latest_epoch, m.tokens_per_s AS latest_tokens_per_s,
             s.final_model_path, s.error, s.created_at, s.updated_at, s.finished_at
        FROM sessions s
        LEFT JOIN metrics m ON m.session_id = s.id AND m.step = s.latest_step
      """;

  private final JdbcClient jdbc;

  SessionRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  void insertQueued(UUID id, String workflowId, String name, String description, String request) {
    jdbc.sql(
            """
            INSERT INTO sessions (id, workflow_id, name, description, request, status)
            VALUES (:id, :workflowId, :name, :description, CAST(:request AS jsonb), :status)
            """)
        .param("id", id)
        .param("workflowId", workflowId)
        .param("name", name)
        .param("description", description)
        .param("request", request)
        .param("status", SessionStatus.QUEUED.name())
        .update();
  }

  void markFailed(UUID id, String error) {
    jdbc.sql(
            """
            UPDATE sessions
               SET status = :status, error = :error, updated_at = now(), finished_at = now()
             WHERE id = :id
            """)
        .param("id", id)
        .param("status", SessionStatus.FAILED.name())
        .param("error", error)
        .update();
  }

  public Optional<SessionRow> find(UUID id) {
    return jdbc.sql(SELECT_SESSION + " WHERE s.id = :id")
        .param("id", id)
        .query(SessionRepository::session)
        .optional();
  }

  /** Newest first. */
  List<SessionRow> list(int limit, long offset) {
    return jdbc.sql(
            SELECT_SESSION + " ORDER BY s.created_at DESC, s.id LIMIT :limit OFFSET :offset")
        .param("limit", limit)
        .param("offset", offset)
        .query(SessionRepository::session)
        .list();
  }

  /** Steps after {@code afterStep}, in step order, at most {@code limit}. */
  List<MetricRow> metrics(UUID id, long afterStep, int limit) {
    return jdbc.sql(
            """
            SELECT step, total_steps, epoch, loss, accuracy, learning_rate, grad_norm,
                   tokens_per_s, recorded_at
              FROM metrics
             WHERE session_id = :id AND step > :afterStep
             ORDER BY step
             LIMIT :limit
            """)
        .param("id", id)
        .param("afterStep", afterStep)
        .param("limit", limit)
        .query(
            (rs, n) ->
                new MetricRow(
                    rs.getLong("step"),
                    rs.getLong("total_steps"),
                    rs.getInt("epoch"),
                    rs.getDouble("loss"),
                    rs.getObject("accuracy", Double.class),
                    rs.getObject("learning_rate", Double.class),
                    rs.getObject("grad_norm", Double.class),
                    rs.getObject("tokens_per_s", Double.class),
                    instant(rs, "recorded_at")))
        .list();
  }

  private static SessionRow session(ResultSet rs, int n) throws SQLException {
    return new SessionRow(
        rs.getObject("id", UUID.class),
        rs.getString("workflow_id"),
        rs.getString("name"),
        rs.getString("description"),
        rs.getString("request"),
        rs.getString("status"),
        rs.getDouble("progress"),
        rs.getObject("latest_step", Long.class),
        rs.getObject("total_steps", Long.class),
        rs.getObject("latest_loss", Double.class),
        rs.getObject("latest_accuracy", Double.class),
        rs.getObject("learning_rate", Double.class),
        rs.getObject("latest_epoch", Integer.class),
        rs.getObject("latest_tokens_per_s", Double.class),
        rs.getString("final_model_path"),
        rs.getString("error"),
        instant(rs, "created_at"),
        instant(rs, "updated_at"),
        instant(rs, "finished_at"));
  }

  private static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime value = rs.getObject(column, OffsetDateTime.class);
    return value == null ? null : value.toInstant();
  }
}
