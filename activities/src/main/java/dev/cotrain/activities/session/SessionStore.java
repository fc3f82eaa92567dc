package dev.cotrain.activities.session;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.schema.SessionEvents;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * Writes session status, per-step metrics and checkpoints to PostgreSQL, and in the same
 * transaction NOTIFYs {@link SessionEvents#CHANNEL} so the API relays them to WebSocket clients
 * (docs/websocket.md). Every write is an upsert: a retried activity may repeat any of them.
 */
public final class SessionStore {

  /** One trainer step, as the worker stores and relays it. */
  public record StepMetrics(
      long step,
      long totalSteps,
      int epoch,
      double progressPercent,
      double loss,
      Double accuracy,
      Double learningRate,
      Double gradNorm,
      Integer batchSize,
      Double tokensPerSecond,
      int participants) {}

  private final DataSource dataSource;
  private final ObjectMapper json = new ObjectMapper();

  public SessionStore(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  public void recordStatus(StatusChange change) {
    boolean ended = change.status().isFinal();
    Map<String, Object> event = new LinkedHashMap<>();
    event.put("kind", "status");
    event.put("sessionId", change.sessionId());
    event.put("status", change.status().name());
    event.put("finalModelPath", change.finalModelPath());
    event.put("error", change.error());
    inTransaction(
        c -> {
          try (PreparedStatement update =
              c.prepareStatement(
                  """
                  UPDATE sessions SET status = ?,
                      final_model_path = coalesce(?, final_model_path),
                      error = ?,
                      progress = CASE WHEN ? = 'COMPLETED' THEN 100 ELSE progress END,
                      finished_at = CASE WHEN ? THEN coalesce(finished_at, now()) END,
                      updated_at = now()
                  WHERE id = ?
                  """)) {
            update.setString(1, change.status().name());
            update.setString(2, change.finalModelPath());
            update.setString(3, change.error());
            update.setString(4, change.status().name());
            update.setBoolean(5, ended);
            update.setObject(6, UUID.fromString(change.sessionId()));
            if (update.executeUpdate() != 1) {
              throw new IllegalStateException("no session " + change.sessionId());
            }
          }
          notify(c, event);
        });
  }

  public void recordStep(String sessionId, StepMetrics m) {
    UUID id = UUID.fromString(sessionId);
    Map<String, Object> event = new LinkedHashMap<>();
    event.put("kind", "progress");
    event.put("sessionId", sessionId);
    event.put("step", m.step());
    event.put("totalSteps", m.totalSteps());
    event.put("epoch", m.epoch());
    event.put("progress", m.progressPercent());
    event.put("loss", m.loss());
    event.put("accuracy", m.accuracy());
    event.put("learningRate", m.learningRate());
    event.put("batchSize", m.batchSize());
    event.put("participants", m.participants());
    event.put("tokensPerSecond", m.tokensPerSecond());
    inTransaction(
        c -> {
          try (PreparedStatement insert =
              c.prepareStatement(
                  """
                  INSERT INTO metrics (session_id, step, total_steps, epoch, loss, accuracy,
                                       learning_rate, grad_norm, tokens_per_s)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                  ON CONFLICT (session_id, step) DO UPDATE SET
                      total_steps = excluded.total_steps, epoch = excluded.epoch,
                      loss = excluded.loss, accuracy = excluded.accuracy,
                      learning_rate = excluded.learning_rate, grad_norm = excluded.grad_norm,
                      tokens_per_s = excluded.tokens_per_s, recorded_at = now()
                  """)) {
            insert.setObject(1, id);
            insert.setLong(2, m.step());
            insert.setLong(3, m.totalSteps());
            insert.setInt(4, m.epoch());
            insert.setDouble(5, m.loss());
            setDouble(insert, 6, m.accuracy());
            setDouble(insert, 7, m.learningRate());
            setDouble(insert, 8, m.gradNorm());
            setDouble(insert, 9, m.tokensPerSecond());
            insert.executeUpdate();
          }
          try (PreparedStatement update =
              c.prepareStatement(
                  """
                  UPDATE sessions SET progress = ?, latest_step = ?, total_steps = ?,
                      latest_loss = ?, latest_accuracy = ?, learning_rate = ?, updated_at = now()
                  WHERE id = ?
                  """)) {
            update.setDouble(1, m.progressPercent());
            update.setLong(2, m.step());
            update.setLong(3, m.totalSteps());
            update.setDouble(4, m.loss());
            setDouble(update, 5, m.accuracy());
            setDouble(update, 6, m.learningRate());
            update.setObject(7, id);
            update.executeUpdate();
          }
          notify(c, event);
        });
  }

  public void recordCheckpoint(String sessionId, long step, String path, long bytes) {
    inTransaction(
        c -> {
          try (PreparedStatement insert =
              c.prepareStatement(
                  """
                  INSERT INTO checkpoints (session_id, step, path, bytes) VALUES (?, ?, ?, ?)
                  ON CONFLICT (session_id, step) DO UPDATE SET
                      path = excluded.path, bytes = excluded.bytes, created_at = now()
                  """)) {
            insert.setObject(1, UUID.fromString(sessionId));
            insert.setLong(2, step);
            insert.setString(3, path);
            insert.setLong(4, bytes);
            insert.executeUpdate();
          }
        });
  }

  private void notify(Connection c, Map<String, Object> event) throws SQLException {
    String payload;
    try {
      payload = json.writeValueAsString(event);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    try (PreparedStatement notify = c.prepareStatement("SELECT pg_notify(?, ?)")) {
      notify.setString(1, SessionEvents.CHANNEL);
      notify.setString(2, payload);
      notify.execute();
    }
  }

  private static void setDouble(PreparedStatement s, int index, Double value) throws SQLException {
    if (value == null || value.isNaN() || value.isInfinite()) {
      s.setNull(index, Types.DOUBLE);
    } else {
      s.setDouble(index, value);
    }
  }

  private interface Work {
    void run(Connection c) throws SQLException;
  }

  private void inTransaction(Work work) {
    try (Connection c = dataSource.getConnection()) {
      c.setAutoCommit(false);
      try {
        work.run(c);
        c.commit();
      } catch (SQLException | RuntimeException e) {
        c.rollback();
        throw e;
      }
    } catch (SQLException e) {
      throw new IllegalStateException("database write failed: " + e.getMessage(), e);
    }
  }
}
