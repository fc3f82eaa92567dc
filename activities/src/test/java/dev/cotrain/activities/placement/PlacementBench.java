package dev.cotrain.activities.placement;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.host.HostStore;
import dev.cotrain.activities.host.HostStore.Device;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * The allocator's speed on the real PostgreSQL, not a test (its name keeps it out of the test run):
 * {@code bench/placement.sh} runs it. 100 hosts of 8 devices, every device held by a running
 * session, 1,000 sessions queued (10 owners, priorities 0 to 2, all below the running ones, so
 * nothing is preempted). Each cycle releases one running session, whose pass over the whole queue
 * places the next in line on the freed device, and queues a new session, whose pass finds it must
 * wait: every call decides the order and place of all 1,000 waiting sessions.
 */
class PlacementBench {

  static final int HOSTS = 100;
  static final int DEVICES_PER_HOST = 8;
  static final int QUEUED = 1_000;
  static final int WARMUP = 20;
  static final int CYCLES = 200;

  /** The simulated hosts are registered once and never marked seen again. */
  static final Duration ALIVE = Duration.ofHours(1);

  private final TestDatabase db = TestDatabase.get();
  private final PlacementStore store = new PlacementStore(db.dataSource());
  private final Random random = new Random(7);

  @Test
  void decisionsPerSecond() throws Exception {
    clean();
    HostStore hosts = new HostStore(db.dataSource());
    for (int h = 0; h < HOSTS; h++) {
      hosts.register(
          new HostStore.Host(
              "bench-%03d".formatted(h),
              1,
              Map.of(),
              1,
              IntStream.range(0, DEVICES_PER_HOST)
                  .mapToObj(i -> new Device(i, "declared", null))
                  .toList()));
    }
    Deque<UUID> running = new ArrayDeque<>();
    for (int i = 0; i < HOSTS * DEVICES_PER_HOST; i++) {
      UUID id = session(5);
      assertThat(store.place(id, 1, 1, 1, ALIVE).placement().placed()).isTrue();
      running.add(id);
    }
    for (int i = 0; i < QUEUED; i++) {
      assertThat(store.place(session(random.nextInt(3)), 1, 1, 1, ALIVE).placement().placed())
          .isFalse();
    }

    double[] release = new double[CYCLES];
    double[] enqueue = new double[CYCLES];
    for (int i = -WARMUP; i < CYCLES; i++) {
      long t0 = System.nanoTime();
      PlacementStore.Decision freed = store.release(running.poll(), ALIVE, null);
      long t1 = System.nanoTime();
      boolean waits = !store.place(session(random.nextInt(3)), 1, 1, 1, ALIVE).placement().placed();
      long t2 = System.nanoTime();
      assertThat(freed.placedOthers()).hasSize(1);
      assertThat(waits).isTrue();
      running.addAll(freed.placedOthers());
      if (i >= 0) {
        release[i] = (t1 - t0) / 1e6;
        enqueue[i] = (t2 - t1) / 1e6;
      }
    }

    double[] all = new double[CYCLES * 2];
    System.arraycopy(release, 0, all, 0, CYCLES);
    System.arraycopy(enqueue, 0, all, CYCLES, CYCLES);
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("command", "bench/placement.sh");
    result.put("machine", machine());
    result.put("hosts", HOSTS);
    result.put("devices", HOSTS * DEVICES_PER_HOST);
    result.put("queued", QUEUED);
    result.put("cycles", CYCLES);
    result.put("decisions_per_s", round(1000.0 / mean(all)));
    result.put("release_and_place_next_ms_p50", round(percentile(release, 50)));
    result.put("release_and_place_next_ms_p99", round(percentile(release, 99)));
    result.put("enqueue_ms_p50", round(percentile(enqueue, 50)));
    result.put("enqueue_ms_p99", round(percentile(enqueue, 99)));
    String out = System.getProperty("cotrain.bench.out");
    String json =
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(result);
    System.out.println(json);
    if (out != null) {
      Files.writeString(Path.of(out), json + "\n");
    }
    clean();
  }

  private UUID session(int priority) throws SQLException {
    UUID id = UUID.randomUUID();
    try (Connection c = db.dataSource().getConnection();
        PreparedStatement insert =
            c.prepareStatement(
                "INSERT INTO sessions (id, workflow_id, name, request, status, priority, owner)"
                    + " VALUES (?, ?, 'bench', '{}'::jsonb, 'QUEUED', ?, ?)")) {
      insert.setObject(1, id);
      insert.setString(2, "bench-" + id);
      insert.setInt(3, priority);
      insert.setString(4, "owner-" + random.nextInt(10));
      insert.executeUpdate();
    }
    return id;
  }

  private void clean() throws SQLException {
    try (Connection c = db.dataSource().getConnection();
        Statement s = c.createStatement()) {
      s.execute("DELETE FROM sessions WHERE name = 'bench'");
      s.execute("DELETE FROM hosts WHERE id LIKE 'bench-%'");
    }
  }

  private static String machine() {
    return System.getProperty("os.arch")
        + ", "
        + Runtime.getRuntime().availableProcessors()
        + " cores, Java "
        + System.getProperty("java.version")
        + ", PostgreSQL on the same machine";
  }

  private static double mean(double[] values) {
    return Arrays.stream(values).average().orElse(0);
  }

  private static double percentile(double[] values, int p) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[Math.max(0, (int) Math.ceil(p / 100.0 * sorted.length) - 1)];
  }

  private static double round(double value) {
    return Math.round(value * 100) / 100.0;
  }
}
