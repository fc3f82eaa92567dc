package dev.cotrain.activities.placement;

import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.schema.Transactions;
import dev.cotrain.workflows.session.PlacementActivities.Placement;
import dev.cotrain.workflows.session.TaskQueues;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The allocator (docs/placement.md): every call is one PostgreSQL transaction that locks the rows
 * of the alive hosts, in id order, so concurrent decisions run one after another and never hand out
 * a device twice (the primary key of {@code held_devices} enforces it as well). Each call runs a
 * {@link Scheduler} pass over the whole queue, so whoever's call frees or finds capacity places the
 * sessions next in line, not only itself.
 */
public final class PlacementStore {

  private final DataSource dataSource;

  public PlacementStore(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  /**
   * What a call decided: the caller's placement or why it waits ({@code placement}, null for a
   * release), the other sessions this pass placed, who must be told, and the preemptions to
   * deliver: the ones this pass chose and the ones still pending for the caller (delivering one
   * again is harmless, and it reaches a session that was not yet running the first time).
   */
  public record Decision(
      Placement placement, List<UUID> placedOthers, List<Scheduler.Preemption> preemptions) {}

  /**
   * Places attempt {@code attempt} of the session, which waits in the queue until it is its turn
   * and {@code gpusPerNode} devices on one alive host (or a CPU slot, in a cluster without devices)
   * are free. Answers the placement already made for this attempt, if any.
   */
  public Decision place(UUID sessionId, int attempt, int gpusPerNode, Duration aliveWithin) {
    return Transactions.call(
        dataSource,
        c -> {
          lockHosts(c);
          Placement existing = existing(c, sessionId, attempt);
          if (existing != null) {
            return new Decision(existing, List.of(), List.of());
          }
          try (PreparedStatement enqueue =
              c.prepareStatement(
                  """
                  INSERT INTO queue (session_id, attempt, gpus_per_node) VALUES (?, ?, ?)
                  ON CONFLICT (session_id) DO UPDATE
                      SET attempt = excluded.attempt, gpus_per_node = excluded.gpus_per_node
                  """)) {
            enqueue.setObject(1, sessionId);
            enqueue.setInt(2, attempt);
            enqueue.setInt(3, gpusPerNode);
            enqueue.executeUpdate();
          }
          Pass pass = pass(c, aliveWithin);
          Scheduler.Assignment mine = pass.plan().placed().get(sessionId);
          Scheduler.Wait wait = pass.plan().waiting().get(sessionId);
          Placement placement =
              mine != null
                  ? placement(mine)
                  : new Placement(null, null, List.of(), wait.reason(), wait.position());
          List<Scheduler.Preemption> preemptions = new ArrayList<>(pass.plan().preemptions());
          for (Scheduler.Running r : pass.running()) {
            if (sessionId.equals(r.preemptedFor())) {
              preemptions.add(
                  new Scheduler.Preemption(
                      r.sessionId(), sessionId, "preempted for session " + sessionId));
            }
          }
          return new Decision(placement, others(pass, sessionId), preemptions);
        });
  }

  /** Frees the session's placement and devices, and places whoever is next. */
  public Decision release(UUID sessionId, Duration aliveWithin) {
    return Transactions.call(
        dataSource,
        c -> {
          lockHosts(c);
          try (PreparedStatement delete =
              c.prepareStatement("DELETE FROM placements WHERE session_id = ?")) {
            delete.setObject(1, sessionId);
            delete.executeUpdate();
          }
          Pass pass = pass(c, aliveWithin);
          return new Decision(null, others(pass, sessionId), pass.plan().preemptions());
        });
  }

  private record Pass(Scheduler.Plan plan, List<Scheduler.Running> running) {}

  private record Queued(Scheduler.Waiting waiting, Integer position, String reason) {}

  /**
   * Runs the scheduler over the queue (its rows locked) and stores what it decided: placements and
   * held devices for the sessions it placed (their queue rows go), marks on the placements it
   * preempts, and each waiting session's position and reason, with a NOTIFY for each that changed.
   */
  private static Pass pass(Connection c, Duration aliveWithin) throws SQLException {
    List<Scheduler.Host> hosts = aliveHosts(c, aliveWithin);
    Map<UUID, Queued> queue = new LinkedHashMap<>();
    try (PreparedStatement select =
            c.prepareStatement(
                """
            SELECT q.session_id, q.attempt, q.gpus_per_node, q.position, q.reason,
                   s.priority, s.owner, s.pack, s.created_at
              FROM queue q JOIN sessions s ON s.id = q.session_id
             ORDER BY q.session_id
               FOR UPDATE OF q
            """);
        ResultSet rs = select.executeQuery()) {
      while (rs.next()) {
        UUID id = rs.getObject("session_id", UUID.class);
        queue.put(
            id,
            new Queued(
                new Scheduler.Waiting(
                    id,
                    rs.getInt("attempt"),
                    rs.getInt("gpus_per_node"),
                    rs.getInt("priority"),
                    rs.getString("owner"),
                    rs.getBoolean("pack"),
                    rs.getObject("created_at", OffsetDateTime.class).toInstant()),
                (Integer) rs.getObject("position"),
                rs.getString("reason")));
      }
    }
    List<Scheduler.Running> running = new ArrayList<>();
    try (PreparedStatement select =
            c.prepareStatement(
                """
            SELECT p.session_id, p.host_id, p.cpu_slot, p.placed_at, p.preempted_for,
                   s.priority, s.owner,
                   (SELECT count(*) FROM held_devices h WHERE h.session_id = p.session_id) AS held
              FROM placements p JOIN sessions s ON s.id = p.session_id
            """);
        ResultSet rs = select.executeQuery()) {
      while (rs.next()) {
        running.add(
            new Scheduler.Running(
                rs.getObject("session_id", UUID.class),
                rs.getString("host_id"),
                rs.getBoolean("cpu_slot") ? 1 : rs.getInt("held"),
                rs.getInt("priority"),
                rs.getString("owner"),
                rs.getObject("placed_at", OffsetDateTime.class).toInstant(),
                rs.getObject("preempted_for", UUID.class)));
      }
    }
    Scheduler.Plan plan =
        Scheduler.plan(hosts, queue.values().stream().map(Queued::waiting).toList(), running);
    boolean devices = hosts.stream().anyMatch(h -> h.totalDevices() > 0);
    for (Map.Entry<UUID, Scheduler.Assignment> placed : plan.placed().entrySet()) {
      hold(
          c,
          placed.getKey(),
          queue.get(placed.getKey()).waiting().attempt(),
          placed.getValue(),
          !devices);
    }
    try (PreparedStatement mark =
        c.prepareStatement("UPDATE placements SET preempted_for = ? WHERE session_id = ?")) {
      for (Scheduler.Preemption p : plan.preemptions()) {
        mark.setObject(1, p.forSession());
        mark.setObject(2, p.victim());
        mark.addBatch();
      }
      mark.executeBatch();
    }
    try (PreparedStatement update =
        c.prepareStatement("UPDATE queue SET position = ?, reason = ? WHERE session_id = ?")) {
      for (Map.Entry<UUID, Scheduler.Wait> w : plan.waiting().entrySet()) {
        Queued before = queue.get(w.getKey());
        Scheduler.Wait now = w.getValue();
        if (Objects.equals(before.position(), now.position())
            && Objects.equals(before.reason(), now.reason())) {
          continue;
        }
        update.setInt(1, now.position());
        update.setString(2, now.reason());
        update.setObject(3, w.getKey());
        update.addBatch();
        SessionTransitions.notify(
            c, new SessionEvent.Queue(w.getKey().toString(), now.position(), now.reason()));
      }
      update.executeBatch();
    }
    return new Pass(plan, running);
  }

  /** Stores one placement and its held devices, and takes the session out of the queue. */
  private static void hold(
      Connection c, UUID sessionId, int attempt, Scheduler.Assignment at, boolean cpuSlot)
      throws SQLException {
    try (PreparedStatement dequeue = c.prepareStatement("DELETE FROM queue WHERE session_id = ?")) {
      dequeue.setObject(1, sessionId);
      dequeue.executeUpdate();
    }
    try (PreparedStatement insert =
        c.prepareStatement(
            "INSERT INTO placements (session_id, attempt, host_id, cpu_slot) VALUES (?, ?, ?, ?)")) {
      insert.setObject(1, sessionId);
      insert.setInt(2, attempt);
      insert.setString(3, at.hostId());
      insert.setBoolean(4, cpuSlot);
      insert.executeUpdate();
    }
    try (PreparedStatement insert =
        c.prepareStatement(
            "INSERT INTO held_devices (host_id, device_index, session_id) VALUES (?, ?, ?)")) {
      for (int device : at.devices()) {
        insert.setString(1, at.hostId());
        insert.setInt(2, device);
        insert.setObject(3, sessionId);
        insert.addBatch();
      }
      insert.executeBatch();
    }
  }

  private static List<UUID> others(Pass pass, UUID caller) {
    return pass.plan().placed().keySet().stream().filter(id -> !id.equals(caller)).toList();
  }

  private static Placement placement(Scheduler.Assignment at) {
    return new Placement(
        at.hostId(), TaskQueues.trainingQueue(at.hostId()), at.devices(), null, null);
  }

  /** The placement of this attempt, if made; an older attempt's is released. */
  private static Placement existing(Connection c, UUID sessionId, int attempt) throws SQLException {
    String hostId;
    int placedAttempt;
    try (PreparedStatement select =
        c.prepareStatement(
            "SELECT host_id, attempt FROM placements WHERE session_id = ? FOR UPDATE")) {
      select.setObject(1, sessionId);
      try (ResultSet rs = select.executeQuery()) {
        if (!rs.next()) {
          return null;
        }
        hostId = rs.getString("host_id");
        placedAttempt = rs.getInt("attempt");
      }
    }
    if (placedAttempt != attempt) {
      try (PreparedStatement delete =
          c.prepareStatement("DELETE FROM placements WHERE session_id = ?")) {
        delete.setObject(1, sessionId);
        delete.executeUpdate();
      }
      return null;
    }
    List<Integer> devices = new ArrayList<>();
    try (PreparedStatement select =
        c.prepareStatement(
            "SELECT device_index FROM held_devices WHERE session_id = ? ORDER BY device_index")) {
      select.setObject(1, sessionId);
      try (ResultSet rs = select.executeQuery()) {
        while (rs.next()) {
          devices.add(rs.getInt(1));
        }
      }
    }
    return new Placement(
        hostId, TaskQueues.trainingQueue(hostId), List.copyOf(devices), null, null);
  }

  /**
   * Locks every host row, in id order: the allocator's calls run one at a time (a worker's presence
   * update waits for the running one).
   */
  private static void lockHosts(Connection c) throws SQLException {
    try (PreparedStatement lock =
        c.prepareStatement("SELECT id FROM hosts ORDER BY id FOR UPDATE")) {
      lock.execute(); // the driver reads every row, so every row is locked
    }
  }

  /** The alive hosts with what each has free (call with the hosts locked). */
  private static List<Scheduler.Host> aliveHosts(Connection c, Duration aliveWithin)
      throws SQLException {
    Map<String, Integer> cpuSlots = new LinkedHashMap<>();
    try (PreparedStatement lock =
        c.prepareStatement(
            """
            SELECT id, cpu_slots FROM hosts
             WHERE last_seen > now() - make_interval(secs => ?)
             ORDER BY id
            """)) {
      lock.setDouble(1, aliveWithin.toMillis() / 1000.0);
      try (ResultSet rs = lock.executeQuery()) {
        while (rs.next()) {
          cpuSlots.put(rs.getString("id"), rs.getInt("cpu_slots"));
        }
      }
    }
    List<Scheduler.Host> capacities = new ArrayList<>();
    if (cpuSlots.isEmpty()) {
      return capacities;
    }
    Array ids = c.createArrayOf("text", cpuSlots.keySet().toArray());
    Map<String, List<Integer>> free = new LinkedHashMap<>();
    Map<String, Integer> total = new LinkedHashMap<>();
    try (PreparedStatement select =
        c.prepareStatement(
            """
            SELECT d.host_id, d.device_index, h.session_id IS NULL AS free
              FROM devices d
              LEFT JOIN held_devices h USING (host_id, device_index)
             WHERE d.host_id = ANY (?)
             ORDER BY d.host_id, d.device_index
            """)) {
      select.setArray(1, ids);
      try (ResultSet rs = select.executeQuery()) {
        while (rs.next()) {
          String host = rs.getString("host_id");
          total.merge(host, 1, Integer::sum);
          if (rs.getBoolean("free")) {
            free.computeIfAbsent(host, h -> new ArrayList<>()).add(rs.getInt("device_index"));
          }
        }
      }
    }
    Map<String, Integer> slotsUsed = new LinkedHashMap<>();
    try (PreparedStatement select =
        c.prepareStatement(
            "SELECT host_id, count(*) FROM placements WHERE cpu_slot AND host_id = ANY (?) GROUP BY host_id")) {
      select.setArray(1, ids);
      try (ResultSet rs = select.executeQuery()) {
        while (rs.next()) {
          slotsUsed.put(rs.getString(1), rs.getInt(2));
        }
      }
    }
    for (Map.Entry<String, Integer> host : cpuSlots.entrySet()) {
      String id = host.getKey();
      capacities.add(
          new Scheduler.Host(
              id,
              total.getOrDefault(id, 0),
              free.getOrDefault(id, List.of()),
              host.getValue() - slotsUsed.getOrDefault(id, 0)));
    }
    return capacities;
  }
}
