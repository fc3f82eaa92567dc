package dev.cotrain.schema;

import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Set;
import java.util.UUID;

/**
 * The writes that move a session's row, each with its {@code session_events} row and a NOTIFY, on a
 * connection whose transaction the caller owns. Used by the worker's activities (for the workflow's
 * transitions) and by the API (creating rows, settling rows whose workflow ended outside its own
 * code). A row in a final status is never changed again.
 */
public final class SessionTransitions {

  public static final Set<String> FINAL = Set.of("COMPLETED", "FAILED", "CANCELLED");

  /**
   * One transition. {@code seq} orders the transitions of a session: one with a {@code seq} not
   * above the row's is stale and changes nothing. {@code message} is stored whole.
   */
  public record Transition(
      UUID sessionId,
      UUID eventId,
      int seq,
      String status,
      String previousStatus,
      String cause,
      int attempt,
      String message,
      String finalModelPath) {}

  private SessionTransitions() {}

  /**
   * Inserts the session as QUEUED with its {@code created} event, unless a row with this id exists.
   * Its priority, owner and placement preference come from the request's top-level {@code
   * priority}, {@code owner} and {@code placement} (defaults 0, anonymous, spread). Returns whether
   * it inserted.
   */
  public static boolean insertQueued(
      Connection c, UUID id, String workflowId, String name, String description, String request)
      throws SQLException {
    try (PreparedStatement insert =
        c.prepareStatement(
            """
            INSERT INTO sessions
                (id, workflow_id, name, description, request, status, priority, owner, pack)
            SELECT ?, ?, ?, ?, r, 'QUEUED', coalesce((r->>'priority')::integer, 0),
                   coalesce(r->>'owner', 'anonymous'), coalesce(r->>'placement' = 'pack', false)
              FROM (SELECT CAST(? AS jsonb) AS r) AS request
            ON CONFLICT (id) DO NOTHING
            """)) {
      insert.setObject(1, id);
      insert.setString(2, workflowId);
      insert.setString(3, name);
      insert.setString(4, description);
      insert.setString(5, request);
      if (insert.executeUpdate() == 0) {
        return false;
      }
    }
    UUID eventId = UUID.nameUUIDFromBytes(("created " + id).getBytes(StandardCharsets.UTF_8));
    insertEvent(c, new Transition(id, eventId, 0, "QUEUED", null, "created", 0, null, null));
    return true;
  }

  /**
   * Applies {@code t} to the row and logs it; returns false, changing nothing, when it was applied
   * before, is stale, or the row is already final. Throws when the session does not exist.
   */
  public static boolean apply(Connection c, Transition t) throws SQLException {
    boolean ends = FINAL.contains(t.status());
    boolean holdsNothing = ends || "PAUSED".equals(t.status());
    try (PreparedStatement update =
        c.prepareStatement(
            """
            UPDATE sessions SET status = ?, status_seq = ?, attempt = ?,
                error = CASE WHEN ? = 'FAILED' THEN ? END,
                final_model_path = coalesce(?, final_model_path),
                progress = CASE WHEN ? = 'COMPLETED' THEN 100 ELSE progress END,
                finished_at = CASE WHEN ? THEN now() END,
                updated_at = now()
             WHERE id = ? AND status_seq < ?
               AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
            """)) {
      update.setString(1, t.status());
      update.setInt(2, t.seq());
      update.setInt(3, t.attempt());
      update.setString(4, t.status());
      update.setString(5, t.message());
      update.setString(6, t.finalModelPath());
      update.setString(7, t.status());
      update.setBoolean(8, ends);
      update.setObject(9, t.sessionId());
      update.setInt(10, t.seq());
      if (update.executeUpdate() == 0) {
        if (!exists(c, t.sessionId())) {
          throw new IllegalStateException("no session " + t.sessionId());
        }
        return false;
      }
    }
    if (holdsNothing) {
      // A paused or ended session neither waits nor holds a host or device, however it got there
      // (a terminated workflow cannot release them itself). The queue entry goes first: a pass of
      // the allocator that is placing it holds its row, and once that pass commits, the second
      // statement sees (and deletes) the placement it made.
      for (String table : List.of("queue", "placements")) {
        try (PreparedStatement release =
            c.prepareStatement("DELETE FROM " + table + " WHERE session_id = ?")) {
          release.setObject(1, t.sessionId());
          release.executeUpdate();
        }
      }
    }
    insertEvent(c, t);
    return true;
  }

  /** Sends {@code event} on {@link SessionEvents#CHANNEL} when the transaction commits. */
  public static void notify(Connection c, SessionEvent event) throws SQLException {
    try (PreparedStatement notify = c.prepareStatement("SELECT pg_notify(?, ?)")) {
      notify.setString(1, SessionEvents.CHANNEL);
      notify.setString(2, SessionEvents.encode(event));
      notify.execute();
    }
  }

  private static void insertEvent(Connection c, Transition t) throws SQLException {
    try (PreparedStatement insert =
        c.prepareStatement(
            """
            INSERT INTO session_events
                (event_id, session_id, status, previous_status, cause, attempt, message)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING id, at
            """)) {
      insert.setObject(1, t.eventId());
      insert.setObject(2, t.sessionId());
      insert.setString(3, t.status());
      insert.setString(4, t.previousStatus());
      insert.setString(5, t.cause());
      insert.setInt(6, t.attempt());
      insert.setString(7, t.message());
      try (ResultSet inserted = insert.executeQuery()) {
        if (!inserted.next()) {
          return;
        }
        notify(
            c,
            new SessionEvent.Status(
                t.sessionId().toString(),
                inserted.getLong("id"),
                inserted.getObject("at", OffsetDateTime.class).toInstant().toString(),
                t.status(),
                t.previousStatus(),
                t.cause(),
                t.attempt(),
                t.message(),
                false,
                t.finalModelPath()));
      }
    }
  }

  private static boolean exists(Connection c, UUID id) throws SQLException {
    try (PreparedStatement select = c.prepareStatement("SELECT 1 FROM sessions WHERE id = ?")) {
      select.setObject(1, id);
      try (ResultSet rs = select.executeQuery()) {
        return rs.next();
      }
    }
  }
}
