package dev.cotrain.activities.session;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.schema.Transactions;
import dev.cotrain.workflows.session.SessionActivities.RegisterSession;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.TaskQueues;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * Writes sessions, their transitions, per-step metrics, machine samples, DiLoCo outer steps and
 * checkpoints to PostgreSQL, and in the same transaction NOTIFYs the live {@link SessionEvent}s, so
 * the API relays them to WebSocket clients (docs/websocket.md). Every write is idempotent: a
 * retried activity may repeat any.
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

  /** Inserts the session's row and its {@code created} event unless the row exists. */
  public void registerSession(RegisterSession session) {
    UUID id = UUID.fromString(session.sessionId());
    inTransaction(
        c ->
            SessionTransitions.insertQueued(
                c,
                id,
                TaskQueues.workflowId(session.sessionId()),
                session.name(),
                session.description() == null ? "" : session.description(),
                session.request() == null ? "{}" : session.request()));
  }

  /** Applies one of the workflow's transitions (idempotent; see {@link SessionTransitions}). */
  public void recordStatus(StatusChange change) {
    inTransaction(
        c ->
            SessionTransitions.apply(
                c,
                new SessionTransitions.Transition(
                    UUID.fromString(change.sessionId()),
                    UUID.fromString(change.eventId()),
                    change.seq(),
                    change.status().name(),
                    change.previous() == null ? null : change.previous().name(),
                    change.cause(),
                    change.attempt(),
                    change.message(),
                    change.finalModelPath())));
  }

  /**
   * Stores the step and relays it with the time it was stored ({@code recorded_at}, which a client
   * catching up later reads too).
   */
  public void recordStep(String sessionId, StepMetrics m) {
    UUID id = UUID.fromString(sessionId);
    inTransaction(
        c -> {
          String at;
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
                  RETURNING recorded_at
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
            try (ResultSet stored = insert.executeQuery()) {
              stored.next();
              at = stored.getObject(1, OffsetDateTime.class).toInstant().toString();
            }
          }
          try (PreparedStatement update =
              c.prepareStatement(
                  """
                  UPDATE sessions SET progress = ?, latest_step = ?, total_steps = ?,
                      latest_loss = ?, latest_accuracy = ?, learning_rate = ?, updated_at = now()
                  WHERE id = ? AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
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
          SessionTransitions.notify(
              c,
              new SessionEvent.Progress(
                  sessionId,
                  m.step(),
                  m.totalSteps(),
                  m.epoch(),
                  m.progressPercent(),
                  m.loss(),
                  finite(m.accuracy()),
                  finite(m.learningRate()),
                  finite(m.gradNorm()),
                  m.batchSize(),
                  finite(m.tokensPerSecond()),
                  m.participants(),
                  at));
        });
  }

  /** A checkpoint the trainer wrote, with its eval loss where it evaluated it. */
  public void recordCheckpoint(
      String sessionId, long step, String path, long bytes, Double evalLoss) {
    inTransaction(
        c -> {
          try (PreparedStatement insert =
              c.prepareStatement(
                  """
                  INSERT INTO checkpoints (session_id, step, path, bytes, eval_loss)
                  VALUES (?, ?, ?, ?, ?)
                  ON CONFLICT (session_id, step) DO UPDATE SET
                      path = excluded.path, bytes = excluded.bytes, eval_loss = excluded.eval_loss,
                      created_at = now(), deleted_at = NULL
                  """)) {
            insert.setObject(1, UUID.fromString(sessionId));
            insert.setLong(2, step);
            insert.setString(3, path);
            insert.setLong(4, bytes);
            insert.setObject(5, evalLoss);
            insert.executeUpdate();
          }
        });
  }

  /** The trainer deleted the checkpoint of {@code step} from disk (retention). */
  public void checkpointDeleted(String sessionId, long step) {
    inTransaction(
        c -> {
          try (PreparedStatement update =
              c.prepareStatement(
                  "UPDATE checkpoints SET deleted_at = now()"
                      + " WHERE session_id = ? AND step = ? AND deleted_at IS NULL")) {
            update.setObject(1, UUID.fromString(sessionId));
            update.setLong(2, step);
            update.executeUpdate();
          }
        });
  }

  /** One machine sample; stored once per (attempt, sample). */
  public void recordSystem(SessionEvent.SystemSample sample) {
    String gpus;
    try {
      gpus = json.writeValueAsString(sample.gpus() == null ? List.of() : sample.gpus());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    inTransaction(
        c -> {
          try (PreparedStatement insert =
              c.prepareStatement(
                  """
                  INSERT INTO system_metrics (session_id, attempt, sample, step, cpu_percent,
                      rss_bytes, disk_read_bytes, disk_write_bytes, net_sent_bytes,
                      net_recv_bytes, gpus, node)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ?)
                  ON CONFLICT (session_id, attempt, node, sample) DO NOTHING
                  """)) {
            insert.setObject(1, UUID.fromString(sample.sessionId()));
            insert.setInt(2, sample.attempt());
            insert.setInt(3, sample.sample());
            insert.setLong(4, sample.step());
            setDouble(insert, 5, sample.cpuPercent());
            insert.setObject(6, sample.rssBytes(), Types.BIGINT);
            insert.setObject(7, sample.diskReadBytes(), Types.BIGINT);
            insert.setObject(8, sample.diskWriteBytes(), Types.BIGINT);
            insert.setObject(9, sample.netSentBytes(), Types.BIGINT);
            insert.setObject(10, sample.netRecvBytes(), Types.BIGINT);
            insert.setString(11, gpus);
            insert.setInt(12, sample.node());
            if (insert.executeUpdate() == 0) {
              return; // stored by an earlier try
            }
          }
          SessionTransitions.notify(c, sample);
        });
  }

  /** One DiLoCo outer step; a resumed attempt overwrites the ones it repeats. */
  public void recordSync(SessionEvent.Sync sync) {
    inTransaction(
        c -> {
          try (PreparedStatement upsert =
              c.prepareStatement(
                  """
                  INSERT INTO sync_events (session_id, outer_step, step, participants, bytes,
                                           seconds)
                  VALUES (?, ?, ?, ?, ?, ?)
                  ON CONFLICT (session_id, outer_step) DO UPDATE SET
                      step = excluded.step, participants = excluded.participants,
                      bytes = excluded.bytes, seconds = excluded.seconds, recorded_at = now()
                  """)) {
            upsert.setObject(1, UUID.fromString(sync.sessionId()));
            upsert.setLong(2, sync.outerStep());
            upsert.setLong(3, sync.step());
            upsert.setInt(4, sync.participants());
            upsert.setLong(5, sync.bytes());
            upsert.setDouble(6, sync.seconds());
            upsert.executeUpdate();
          }
          SessionTransitions.notify(c, sync);
        });
  }

  private static Double finite(Double value) {
    return value == null || value.isNaN() || value.isInfinite() ? null : value;
  }

  private static void setDouble(PreparedStatement s, int index, Double value) throws SQLException {
    if (value == null || value.isNaN() || value.isInfinite()) {
      s.setNull(index, Types.DOUBLE);
    } else {
      s.setDouble(index, value);
    }
  }

  private void inTransaction(Transactions.Statements work) {
    Transactions.run(dataSource, work);
  }
}
