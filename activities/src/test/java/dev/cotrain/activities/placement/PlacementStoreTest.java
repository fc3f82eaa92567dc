package dev.cotrain.activities.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.host.HostStore;
import dev.cotrain.activities.host.HostStore.Device;
import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.workflows.session.PlacementActivities.Node;
import dev.cotrain.workflows.session.PlacementActivities.Placement;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The allocator on the real PostgreSQL. */
class PlacementStoreTest {

  private static final Duration ALIVE = Duration.ofSeconds(10);

  private final TestDatabase db = TestDatabase.get();
  private final PlacementStore store = new PlacementStore(db.dataSource());
  private final HostStore hosts = new HostStore(db.dataSource());

  /** Before and after: later tests (and the end-to-end ones) must not see these hosts. */
  @BeforeEach
  @AfterEach
  void emptyInventory() throws SQLException {
    execute("DELETE FROM hosts");
    execute("DELETE FROM queue");
  }

  @Test
  void placesOnTheLeastLoadedHostAndSaysWhyWhenItCannot() throws SQLException {
    register("a", 0, 1);
    register("b", 0);
    register("gone", 0, 1, 2, 3);
    execute("UPDATE hosts SET last_seen = now() - interval '1 minute' WHERE id = 'gone'");

    Placement first = place(session(), 1, 1, ALIVE);
    Placement tooBig = place(session(), 1, 4, ALIVE);

    assertThat(first.hostId()).isEqualTo("a"); // two free against one
    assertThat(first.taskQueue()).isEqualTo("cotrain-training-a");
    assertThat(first.devices()).containsExactly(0);
    assertThat(tooBig.placed()).isFalse();
    assertThat(tooBig.waiting()).isEqualTo("no alive host has 4 devices (the largest has 2)");
    UUID second = session();
    assertThat(place(second, 1, 1, ALIVE).placed()).isTrue();
    Placement pair = place(session(), 1, 2, ALIVE);
    assertThat(pair.waiting())
        .isEqualTo("waiting for 2 free devices on one host (most free now: 1)");
  }

  @Test
  void theSameAttemptGetsTheSamePlacementAndAReleaseFreesItsDevices() {
    register("a", 0, 1);
    UUID id = session();

    Placement placed = place(id, 1, 2, ALIVE);
    Placement again = place(id, 1, 2, ALIVE);
    UUID other = session();
    Placement blocked = place(other, 1, 1, ALIVE);
    store.release(id, ALIVE, null);
    Placement freed = place(other, 1, 1, ALIVE);

    assertThat(again).isEqualTo(placed);
    assertThat(placed.devices()).containsExactly(0, 1);
    assertThat(blocked.placed()).isFalse();
    assertThat(freed.devices()).containsExactly(0);
  }

  @Test
  void concurrentRequestsNeverGetTheSameDevice() throws Exception {
    register("a", 0, 1);
    register("b", 0, 1);
    List<UUID> sessions = IntStream.range(0, 16).mapToObj(i -> session()).toList();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    List<Future<Placement>> answers = new ArrayList<>();
    try {
      for (UUID id : sessions) {
        Callable<Placement> place = () -> place(id, 1, 1, ALIVE);
        answers.add(pool.submit(place));
      }
      int placed = 0;
      for (Future<Placement> answer : answers) {
        placed += answer.get().placed() ? 1 : 0;
      }

      assertThat(placed).isEqualTo(4);
      assertThat(count("SELECT count(DISTINCT (host_id, device_index)) FROM held_devices"))
          .isEqualTo(4);
      assertThat(count("SELECT count(*) FROM held_devices")).isEqualTo(4);
      assertThat(count("SELECT count(*) FROM queue")).isEqualTo(12);
      assertThat(count("SELECT count(DISTINCT position) FROM queue")).isEqualTo(12);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aReleasePlacesTheNextInLineAndSaysSo() {
    register("a", 0);
    UUID running = session();
    UUID next = session();
    UUID after = session();
    place(running, 1, 1, ALIVE);
    Placement waits = place(next, 1, 1, ALIVE);
    place(after, 1, 1, ALIVE);

    PlacementStore.Decision released = store.release(running, ALIVE, null);

    assertThat(waits.position()).isEqualTo(1);
    assertThat(released.placedOthers()).containsExactly(next);
    assertThat(place(next, 1, 1, ALIVE).devices()).containsExactly(0);
    assertThat(place(after, 1, 1, ALIVE).position()).isEqualTo(1);
  }

  @Test
  void aHigherPrioritySessionPreemptsAndGetsTheDevicesOnceTheyAreReleased() throws SQLException {
    register("a", 0);
    UUID low = session();
    UUID high = session();
    execute("UPDATE sessions SET priority = 10 WHERE id = '" + high + "'");
    place(low, 1, 1, ALIVE);

    PlacementStore.Decision first = store.place(high, 1, 1, 1, ALIVE);
    PlacementStore.Decision again = store.place(high, 1, 1, 1, ALIVE);
    PlacementStore.Decision released = store.release(low, ALIVE, null);

    assertThat(first.placement().waiting())
        .isEqualTo("preempting lower-priority session " + low + " (they checkpoint first)");
    assertThat(first.preemptions()).extracting(Scheduler.Preemption::victim).containsExactly(low);
    // Asked again while the victim stops: no new victim, the pending one is told again.
    assertThat(again.placement().waiting())
        .isEqualTo("waiting for preempted session " + low + " to checkpoint and stop");
    assertThat(again.preemptions()).extracting(Scheduler.Preemption::victim).containsExactly(low);
    assertThat(released.placedOthers()).containsExactly(high);
  }

  @Test
  void aGangHoldsDevicesOnDistinctHostsAndMeetsAtNodeZerosAddressOnAFreePort() {
    register("a", 0);
    register("b", 0);
    hosts.register(
        new HostStore.Host(
            "c", 1, Map.of(), 1, List.of(new Device(0, "declared", null)), "10.0.0.3"));
    UUID first = session();
    UUID second = session();

    Placement one = store.place(first, 1, 2, 1, ALIVE).placement();
    Placement again = store.place(first, 1, 2, 1, ALIVE).placement();

    assertThat(one.nodes()).extracting(Node::hostId).containsExactly("a", "b");
    assertThat(one.nodes()).allMatch(n -> n.devices().equals(List.of(0)));
    assertThat(one.masterAddr()).isEqualTo("a"); // no address registered: the host id
    assertThat(one.masterPort()).isEqualTo(PlacementStore.FIRST_MASTER_PORT);
    assertThat(again).isEqualTo(one);
    assertThat(store.place(second, 1, 2, 1, ALIVE).placement().waiting())
        .isEqualTo("waiting for 2 hosts with 1 free devices each (now 1)");
    store.release(first, ALIVE, null);
    Placement two = store.place(second, 1, 2, 1, ALIVE).placement();
    assertThat(two.nodes()).extracting(Node::hostId).containsExactly("a", "b");
    register("a", 0, 1);
    UUID third = session();
    assertThat(store.place(third, 1, 2, 1, ALIVE).placement().nodes())
        .extracting(Node::hostId)
        .containsExactly("a", "c");
    assertThat(store.place(third, 1, 2, 1, ALIVE).placement().masterPort())
        .isEqualTo(PlacementStore.FIRST_MASTER_PORT + 1); // a's first port is taken by second
  }

  @Test
  void aHostWhoseNodeStoppedHeartbeatingIsGoneUntilItsWorkerIsSeenAgain() throws SQLException {
    register("dead", 0);
    register("live", 0);
    UUID a = session();
    UUID b = session();
    place(a, 1, 1, ALIVE);
    place(b, 1, 1, ALIVE);
    // The dead host's worker last marked it 6 s ago; the live one just now.
    execute("UPDATE hosts SET last_seen = now() - interval '6 seconds' WHERE id = 'dead'");

    store.release(a, ALIVE, "dead");
    store.release(b, ALIVE, "live");

    UUID retry = session();
    assertThat(place(retry, 1, 1, ALIVE).hostId()).isEqualTo("live");
    assertThat(hosts.seen("dead")).isTrue(); // a worker that is alive after all comes back
    assertThat(place(session(), 1, 1, ALIVE).hostId()).isEqualTo("dead");
  }

  @Test
  void aPausedOrEndedSessionNeitherWaitsNorHolds() throws SQLException {
    register("a", 0);
    UUID holder = session();
    UUID waiter = session();
    place(holder, 1, 1, ALIVE);
    place(waiter, 1, 1, ALIVE);

    for (UUID id : List.of(holder, waiter)) {
      try (Connection c = db.dataSource().getConnection()) {
        SessionTransitions.apply(
            c,
            new SessionTransitions.Transition(
                id, UUID.randomUUID(), 1, "PAUSED", "PAUSING", "paused", 1, null, null));
      }
    }

    assertThat(count("SELECT count(*) FROM placements")).isZero();
    assertThat(count("SELECT count(*) FROM queue")).isZero();
  }

  @Test
  void withoutDevicesEachSessionTakesACpuSlot() {
    register("cpu", new int[0], 2);

    assertThat(place(session(), 1, 2, ALIVE).devices()).isEmpty();
    assertThat(place(session(), 1, 2, ALIVE).placed()).isTrue();
    assertThat(place(session(), 1, 1, ALIVE).waiting()).startsWith("waiting for a free CPU slot");
  }

  @Test
  void withNoWorkerAliveTheSessionWaits() {
    assertThat(place(session(), 1, 1, ALIVE).waiting()).isEqualTo("no worker is alive");
  }

  private Placement place(UUID id, int attempt, int gpusPerNode, Duration alive) {
    return store.place(id, attempt, 1, gpusPerNode, alive).placement();
  }

  private long count(String sql) throws SQLException {
    try (Connection c = db.dataSource().getConnection();
        Statement s = c.createStatement();
        java.sql.ResultSet rs = s.executeQuery(sql)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  private void register(String id, int... devices) {
    register(id, devices, 1);
  }

  private void register(String id, int[] devices, int cpuSlots) {
    hosts.register(
        new HostStore.Host(
            id,
            cpuSlots,
            Map.of(),
            1,
            IntStream.of(devices).mapToObj(i -> new Device(i, "declared", null)).toList()));
  }

  private UUID session() {
    UUID id = UUID.randomUUID();
    db.insertSession(id.toString());
    return id;
  }

  private void execute(String sql) throws SQLException {
    try (Connection c = db.dataSource().getConnection();
        Statement s = c.createStatement()) {
      s.execute(sql);
    }
  }
}
