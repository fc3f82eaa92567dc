package dev.cotrain.activities.session;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.host.HostStore;
import dev.cotrain.activities.placement.PlacementStore;
import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionEvents;
import dev.cotrain.workflows.session.SessionActivities.RegisterSession;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.SessionStatus;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/** The session row and its event log on the real PostgreSQL. */
class SessionStoreTest {

  private final TestDatabase db = TestDatabase.get();
  private final SessionStore store = new SessionStore(db.dataSource());
  private final String id = UUID.randomUUID().toString();

  @Test
  void registeringTwiceKeepsOneRowAndOneCreatedEvent() {
    RegisterSession session = new RegisterSession(id, "tiny", "", "{\"name\": \"tiny\"}");

    store.registerSession(session);
    store.registerSession(session);

    assertThat(statuses()).containsExactly("QUEUED");
    assertThat(db.<String>query("SELECT cause FROM session_events WHERE session_id = ?", id))
        .containsExactly("created");
  }

  @Test
  void transitionsAreStoredOnceInOrderAndAFinalStatusIsNeverLeft() throws SQLException {
    store.registerSession(new RegisterSession(id, "tiny", "", "{}"));
    String host = "store-test-" + id;
    new HostStore(db.dataSource()).register(new HostStore.Host(host, 1, Map.of(), 1, List.of()));
    new PlacementStore(db.dataSource()).place(UUID.fromString(id), 1, 1, 1, Duration.ofSeconds(10));
    assertThat(db.<Long>query("SELECT count(*) FROM placements WHERE session_id = ?", id))
        .containsExactly(1L);
    StatusChange running = change(1, SessionStatus.RUNNING, "trainer_started", null);
    StatusChange failed = change(2, SessionStatus.FAILED, "failed", "x".repeat(20_000));

    store.recordStatus(running);
    store.recordStatus(running); // a retried activity
    store.recordStatus(failed);
    store.recordStatus(change(3, SessionStatus.RUNNING, "trainer_started", null));
    store.recordStatus(change(1, SessionStatus.QUEUED, "late", null));

    assertThat(statuses()).containsExactly("QUEUED", "RUNNING", "FAILED");
    // An ended session holds nothing.
    assertThat(db.<Long>query("SELECT count(*) FROM placements WHERE session_id = ?", id))
        .containsExactly(0L);
    assertThat(db.<String>query("SELECT status FROM sessions WHERE id = ?", id))
        .containsExactly("FAILED");
    // The full error is kept in the row and the event, though the NOTIFY payload is cut.
    assertThat(db.<String>query("SELECT error FROM sessions WHERE id = ?", id).get(0))
        .hasSize(20_000);
    assertThat(
            db.<String>query(
                    "SELECT message FROM session_events WHERE session_id = ? AND status = 'FAILED'",
                    id)
                .get(0))
        .hasSize(20_000);
  }

  @Test
  void systemSamplesAreStoredOnceAndSyncsOncePerOuterStep() {
    store.registerSession(new RegisterSession(id, "tiny", "", "{}"));
    SessionEvent.SystemSample sample =
        new SessionEvent.SystemSample(
            id,
            1,
            0,
            1,
            12,
            150.0,
            7L,
            1L,
            2L,
            3L,
            4L,
            List.of(new SessionEvent.Gpu(0, 88.5, 5, 6)));

    store.recordSystem(sample);
    store.recordSystem(sample); // a retried write
    store.recordSystem( // the same sample number from another node of the session
        new SessionEvent.SystemSample(
            id,
            1,
            1,
            1,
            12,
            90.0,
            7L,
            1L,
            2L,
            3L,
            4L,
            List.of(new SessionEvent.Gpu(0, 50.0, 5, 6))));
    store.recordSync(new SessionEvent.Sync(id, 1, 10, 2, 1000, 0.5));
    store.recordSync(new SessionEvent.Sync(id, 1, 10, 2, 1000, 0.25)); // a resumed attempt

    assertThat(
            db.<Integer>query(
                "SELECT node FROM system_metrics WHERE session_id = ? ORDER BY node", id))
        .containsExactly(0, 1);
    assertThat(
            db.<String>query(
                "SELECT gpus::text FROM system_metrics WHERE session_id = ? AND node = 0", id))
        .singleElement()
        .asString()
        .contains("\"utilization\": 88.5")
        .contains("\"memoryTotalBytes\": 6");
    assertThat(db.<Double>query("SELECT seconds FROM sync_events WHERE session_id = ?", id))
        .containsExactly(0.25);
  }

  @Test
  void aStepIsRelayedWithTheTimeItWasStored() throws Exception {
    store.registerSession(new RegisterSession(id, "tiny", "", "{}"));
    try (Connection listener = db.dataSource().getConnection();
        Statement listen = listener.createStatement()) {
      listen.execute("LISTEN " + SessionEvents.CHANNEL);

      store.recordStep(
          id, new SessionStore.StepMetrics(3, 10, 1, 30.0, 2.5, 0.4, 0.001, 1.0, 8, 500.0, 1));

      SessionEvent.Progress relayed = null;
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (relayed == null && System.nanoTime() < deadline) {
        PGNotification[] notes = listener.unwrap(PGConnection.class).getNotifications(500);
        for (PGNotification note : notes == null ? new PGNotification[0] : notes) {
          if (SessionEvents.decode(note.getParameter()) instanceof SessionEvent.Progress p
              && p.sessionId().equals(id)) {
            relayed = p;
          }
        }
      }
      assertThat(relayed).isNotNull();
      assertThat(relayed.step()).isEqualTo(3);
      Instant recordedAt =
          db.<java.sql.Timestamp>query(
                  "SELECT recorded_at FROM metrics WHERE session_id = ? AND step = 3", id)
              .get(0)
              .toInstant();
      assertThat(Instant.parse(relayed.at())).isEqualTo(recordedAt);
    }
  }

  private StatusChange change(int seq, SessionStatus status, String cause, String message) {
    return new StatusChange(
        id, UUID.randomUUID().toString(), seq, status, null, cause, 1, message, null);
  }

  private List<String> statuses() {
    return db.query("SELECT status FROM session_events WHERE session_id = ? ORDER BY id", id);
  }
}
