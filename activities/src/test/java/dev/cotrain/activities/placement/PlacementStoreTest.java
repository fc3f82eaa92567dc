package dev.cotrain.activities.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.host.HostStore;
import dev.cotrain.activities.host.HostStore.Device;
import dev.cotrain.workflows.session.PlacementActivities.Placement;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
  }

  @Test
  void placesOnTheLeastLoadedHostAndSaysWhyWhenItCannot() throws SQLException {
    register("a", 0, 1);
    register("b", 0);
    register("gone", 0, 1, 2, 3);
    execute("UPDATE hosts SET last_seen = now() - interval '1 minute' WHERE id = 'gone'");

    Placement first = store.place(session(), 1, 1, ALIVE);
    Placement tooBig = store.place(session(), 1, 4, ALIVE);

    assertThat(first.hostId()).isEqualTo("a"); // two free against one
    assertThat(first.taskQueue()).isEqualTo("cotrain-training-a");
    assertThat(first.devices()).containsExactly(0);
    assertThat(tooBig.placed()).isFalse();
    assertThat(tooBig.waiting()).isEqualTo("no alive host has 4 devices (the largest has 2)");
    UUID second = session();
    assertThat(store.place(second, 1, 1, ALIVE).placed()).isTrue();
    Placement pair = store.place(session(), 1, 2, ALIVE);
    assertThat(pair.waiting())
        .isEqualTo("waiting for 2 free devices on one host (most free now: 1)");
  }

  @Test
  void theSameAttemptGetsTheSamePlacementAndAReleaseFreesItsDevices() {
    register("a", 0, 1);
    UUID id = session();

    Placement placed = store.place(id, 1, 2, ALIVE);
    Placement again = store.place(id, 1, 2, ALIVE);
    UUID other = session();
    Placement blocked = store.place(other, 1, 1, ALIVE);
    store.release(id);
    Placement freed = store.place(other, 1, 1, ALIVE);

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
        Callable<Placement> place = () -> store.place(id, 1, 1, ALIVE);
        answers.add(pool.submit(place));
      }
      List<Placement> placed = new ArrayList<>();
      for (Future<Placement> answer : answers) {
        Placement placement = answer.get();
        if (placement.placed()) {
          placed.add(placement);
        }
      }

      assertThat(placed).hasSize(4);
      Set<String> devices = new HashSet<>();
      for (Placement p : placed) {
        assertThat(devices.add(p.hostId() + "/" + p.devices().get(0))).isTrue();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void withoutDevicesEachSessionTakesACpuSlot() {
    register("cpu", new int[0], 2);

    assertThat(store.place(session(), 1, 2, ALIVE).devices()).isEmpty();
    assertThat(store.place(session(), 1, 2, ALIVE).placed()).isTrue();
    assertThat(store.place(session(), 1, 1, ALIVE).waiting())
        .startsWith("waiting for a free CPU slot");
  }

  @Test
  void withNoWorkerAliveTheSessionWaits() {
    assertThat(store.place(session(), 1, 1, ALIVE).waiting()).isEqualTo("no worker is alive");
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
