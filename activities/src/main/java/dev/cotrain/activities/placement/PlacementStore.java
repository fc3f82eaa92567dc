package dev.cotrain.activities.placement;

import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.schema.Transactions;
import dev.cotrain.workflows.session.PlacementActivities.Node;
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
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The allocator (docs/placement.md): every call is one PostgreSQL transaction that locks the rows
 * of the hosts, in id order, so concurrent decisions run one after another and never hand out a
 * device twice (the primary key of {@code held_devices} enforces it as well). Each call runs a
 * {@link Scheduler} pass over the whole queue, so whoever's call frees or finds capacity places the
 * sessions next in line, not only itself.
 */
public final class PlacementStore {

  /** Rendezvous ports of sessions of several nodes: the lowest one free on node 0's host. */
  static final int FIRST_MASTER_PORT = 29500;

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
   * and {@code gpusPerNode} devices on each of {@code nodes} alive hosts (or a CPU slot each, in a
   * cluster without devices) are free. Answers the placement already made for this attempt, if any.
   */
  public Decision place(
      UUID sessionId, int attempt, int nodes, int gpusPerNode, Duration aliveWithin) {
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
                  INSERT INTO queue (session_id, attempt, nodes, gpus_per_node) VALUES (?, ?, ?, ?)
                  ON CONFLICT (session_id) DO UPDATE SET attempt = excluded.attempt,
                      nodes = excluded.nodes, gpus_per_node = excluded.gpus_per_node
                  """)) {
            enqueue.setObject(1, sessionId);
            enqueue.setInt(2, attempt);
            enqueue.setInt(3, nodes);
            enqueue.setInt(4, gpusPerNode);
            enqueue.executeUpdate();
          }
          Pass pass = pass(c, aliveWithin);
          Scheduler.Wait wait = pass.plan().waiting().get(sessionId);
          Placement placement =
              wait == null
                  ? existing(c, sessionId, attempt)
                  : Placement.waiting(wait.reason(), wait.position());
          List<Scheduler.Preemption> preemptions = new ArrayList<>(pass.plan().preemptions());
          for (UUID victim : pass.preemptingFor(sessionId)) {
            preemptions.add(
                new Scheduler.Preemption(victim, sessionId, "preempted for session " + sessionId));
          }
          return new Decision(placement, others(pass, sessionId), preemptions);
        });
  }

  /**
   * Frees the session's placement and devices, and places whoever is next. {@code lostHost}, if
   * set, is a host whose node stopped heartbeating: unless its worker was seen within the last half
   * of {@code aliveWithin} (a live worker marks it every 2 s), it counts as gone from now on, so
   * that the retry is not placed on a dead host that still looks alive for a few seconds.
   */
  public Decision release(UUID sessionId, Duration aliveWithin, String lostHost) {
    return Transactions.call(
        dataSource,
        c -> {
          lockHosts(c);
          delete(c, sessionId);
          if (lostHost != null) {
            try (PreparedStatement gone =
                c.prepareStatement(
                    """
                    UPDATE hosts SET last_seen = '-infinity'
                     WHERE id = ? AND last_seen < now() - make_interval(secs => ?)
                    """)) {
              gone.setString(1, lostHost);
              gone.setDouble(2, aliveWithin.toMillis() / 2000.0);
              gone.executeUpdate();
            }
          }
          Pass pass = pass(c, aliveWithin);
          return new Decision(null, others(pass, sessionId), pass.plan().preemptions());
        });
  }

  /**
   * A pass over the queue without a request of its own: what a worker runs when its host joins, so
   * that sessions waiting for capacity are placed at once.
   */
  public Decision schedule(Duration aliveWithin) {
    return Transactions.call(
        dataSource,
        c -> {
          lockHosts(c);
          Pass pass = pass(c, aliveWithin);
          return new Decision(
              null, List.copyOf(pass.plan().placed().keySet()), pass.plan().preemptions());
        });
  }

  private record Pass(Scheduler.Plan plan, List<Scheduler.Running> running) {
    /** The sessions already being preempted for {@code session}. */
    List<UUID> preemptingFor(UUID session) {
      return running.stream()
          .filter(r -> session.equals(r.preemptedFor()))
          .map(Scheduler.Running::sessionId)
          .distinct()
          .toList();
    }
  }

  private record Queued(Scheduler.Waiting waiting, Integer position, String reason) {}

  /**
   * Runs the scheduler over the queue (its rows locked) and stores what it decided: placements,
   * their nodes and held devices for the sessions it placed (their queue rows go), marks on the
   * placements it preempts, and each waiting session's position and reason, with a NOTIFY for each
   * that changed.
   */
  private static Pass pass(Connection c, Duration aliveWithin) throws SQLException {
    List<Scheduler.Host> hosts = aliveHosts(c, aliveWithin);
    Map<UUID, Queued> queue = new LinkedHashMap<>();
    try (PreparedStatement select =
            c.prepareStatement(
                """
                SELECT q.session_id, q.attempt, q.nodes, q.gpus_per_node, q.position, q.reason,
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
                    rs.getInt("nodes"),
                    rs.getInt("gpus_per_node"),
                    rs.getInt("priority"),
                    rs.getString("owner"),
                    rs.getBoolean("pack"),
                    rs.getObject("created_at", OffsetDateTime.class).toInstant()),
                rs.getObject("position", Integer.class),
                rs.getString("reason")));
      }
    }
    List<Scheduler.Running> running = new ArrayList<>();
    try (PreparedStatement select =
            c.prepareStatement(
                """
                SELECT n.session_id, n.host_id, n.cpu_slot, p.placed_at, p.preempted_for,
                       s.priority, s.owner,
                       (SELECT count(*) FROM held_devices h
                         WHERE h.session_id = n.session_id AND h.host_id = n.host_id) AS held
                  FROM placement_nodes n
                  JOIN placements p ON p.session_id = n.session_id
                  JOIN sessions s ON s.id = n.session_id
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
    Map<String, Set<Integer>> portsInUse = plan.placed().isEmpty() ? Map.of() : portsInUse(c);
    for (Map.Entry<UUID, List<Scheduler.Assignment>> placed : plan.placed().entrySet()) {
      Scheduler.Waiting w = queue.get(placed.getKey()).waiting();
      hold(c, w, placed.getValue(), !devices, portsInUse);
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

  /**
   * Stores one placement (node 0 on {@code nodes[0]}), its nodes and held devices, and takes the
   * session out of the queue. A session of several nodes gets the lowest rendezvous port not in use
   * on node 0's host.
   */
  private static void hold(
      Connection c,
      Scheduler.Waiting w,
      List<Scheduler.Assignment> nodes,
      boolean cpuSlot,
      Map<String, Set<Integer>> portsInUse)
      throws SQLException {
    try (PreparedStatement dequeue = c.prepareStatement("DELETE FROM queue WHERE session_id = ?")) {
      dequeue.setObject(1, w.sessionId());
      dequeue.executeUpdate();
    }
    String master = nodes.get(0).hostId();
    Integer port = null;
    if (nodes.size() > 1) {
      Set<Integer> used = portsInUse.computeIfAbsent(master, h -> new HashSet<>());
      port = FIRST_MASTER_PORT;
      while (used.contains(port)) {
        port++;
      }
      used.add(port);
    }
    try (PreparedStatement insert =
        c.prepareStatement(
            "INSERT INTO placements (session_id, attempt, host_id, master_port) VALUES (?, ?, ?, ?)")) {
      insert.setObject(1, w.sessionId());
      insert.setInt(2, w.attempt());
      insert.setString(3, master);
      insert.setObject(4, port, java.sql.Types.INTEGER);
      insert.executeUpdate();
    }
    try (PreparedStatement node =
            c.prepareStatement(
                "INSERT INTO placement_nodes (session_id, node_rank, host_id, cpu_slot) VALUES (?, ?, ?, ?)");
        PreparedStatement device =
            c.prepareStatement(
                "INSERT INTO held_devices (host_id, device_index, session_id) VALUES (?, ?, ?)")) {
      for (int rank = 0; rank < nodes.size(); rank++) {
        Scheduler.Assignment at = nodes.get(rank);
        node.setObject(1, w.sessionId());
        node.setInt(2, rank);
        node.setString(3, at.hostId());
        node.setBoolean(4, cpuSlot);
        node.addBatch();
        for (int index : at.devices()) {
          device.setString(1, at.hostId());
          device.setInt(2, index);
          device.setObject(3, w.sessionId());
          device.addBatch();
        }
      }
      node.executeBatch();
      device.executeBatch();
    }
  }

  private static Map<String, Set<Integer>> portsInUse(Connection c) throws SQLException {
    Map<String, Set<Integer>> ports = new HashMap<>();
    try (PreparedStatement select =
            c.prepareStatement(
                "SELECT host_id, master_port FROM placements WHERE master_port IS NOT NULL");
        ResultSet rs = select.executeQuery()) {
      while (rs.next()) {
        ports.computeIfAbsent(rs.getString(1), h -> new HashSet<>()).add(rs.getInt(2));
      }
    }
    return ports;
  }

  private static List<UUID> others(Pass pass, UUID caller) {
    return pass.plan().placed().keySet().stream().filter(id -> !id.equals(caller)).toList();
  }

  private static void delete(Connection c, UUID sessionId) throws SQLException {
    try (PreparedStatement delete =
        c.prepareStatement("DELETE FROM placements WHERE session_id = ?")) {
      delete.setObject(1, sessionId);
      delete.executeUpdate();
    }
  }

  /** The placement of this attempt, if made; an older attempt's is released. */
  private static Placement existing(Connection c, UUID sessionId, int attempt) throws SQLException {
    Integer port;
    int placedAttempt;
    try (PreparedStatement select =
        c.prepareStatement(
            "SELECT attempt, master_port FROM placements WHERE session_id = ? FOR UPDATE")) {
      select.setObject(1, sessionId);
      try (ResultSet rs = select.executeQuery()) {
        if (!rs.next()) {
          return null;
        }
        placedAttempt = rs.getInt("attempt");
        port = rs.getObject("master_port", Integer.class);
      }
    }
    if (placedAttempt != attempt) {
      delete(c, sessionId);
      return null;
    }
    List<Node> nodes = new ArrayList<>();
    String masterAddr = null;
    try (PreparedStatement select =
        c.prepareStatement(
            """
            SELECT n.host_id, coalesce(h.address, n.host_id) AS address,
                   array(SELECT d.device_index FROM held_devices d
                          WHERE d.session_id = n.session_id AND d.host_id = n.host_id
                          ORDER BY d.device_index) AS devices
              FROM placement_nodes n JOIN hosts h ON h.id = n.host_id
             WHERE n.session_id = ?
             ORDER BY n.node_rank
            """)) {
      select.setObject(1, sessionId);
      try (ResultSet rs = select.executeQuery()) {
        while (rs.next()) {
          String host = rs.getString("host_id");
          if (masterAddr == null) {
            masterAddr = rs.getString("address");
          }
          nodes.add(
              new Node(
                  host,
                  TaskQueues.trainingQueue(host),
                  List.of((Integer[]) rs.getArray("devices").getArray())));
        }
      }
    }
    Node first = nodes.get(0);
    return new Placement(
        first.hostId(),
        first.taskQueue(),
        first.devices(),
        null,
        null,
        List.copyOf(nodes.subList(1, nodes.size())),
        nodes.size() > 1 ? masterAddr : null,
        port);
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
    try (PreparedStatement select =
        c.prepareStatement(
            """
            SELECT id, cpu_slots FROM hosts
             WHERE last_seen > now() - make_interval(secs => ?)
             ORDER BY id
            """)) {
      select.setDouble(1, aliveWithin.toMillis() / 1000.0);
      try (ResultSet rs = select.executeQuery()) {
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
            """
            SELECT host_id, count(*) FROM placement_nodes
             WHERE cpu_slot AND host_id = ANY (?) GROUP BY host_id
            """)) {
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
