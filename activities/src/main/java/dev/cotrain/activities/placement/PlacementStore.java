package dev.cotrain.activities.placement;

import dev.cotrain.schema.Transactions;
import dev.cotrain.workflows.session.PlacementActivities.Placement;
import dev.cotrain.workflows.session.TaskQueues;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import javax.sql.DataSource;

/**
 * The allocator (docs/placement.md): placements are decided in PostgreSQL transactions that lock
 * the rows of the alive hosts, in id order, so concurrent decisions queue up and never hand out a
 * device twice; the primary key of {@code held_devices} enforces it as well.
 */
public final class PlacementStore {

  private final DataSource dataSource;

  public PlacementStore(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  /** What one alive host has free right now. */
  private record Capacity(
      String hostId, int totalDevices, List<Integer> freeDevices, int freeCpuSlots) {}

  /**
   * Places attempt {@code attempt} of the session: {@code gpusPerNode} devices on the alive host
   * with the most free devices, or, in a cluster without devices, a CPU slot on the host with the
   * most free slots. Answers the placement it already made for this attempt, if any.
   */
  public Placement place(UUID sessionId, int attempt, int gpusPerNode, Duration aliveWithin) {
    return Transactions.call(
        dataSource,
        c -> {
          Placement existing = existing(c, sessionId, attempt);
          if (existing != null) {
            return existing;
          }
          List<Capacity> hosts = capacities(c, aliveWithin);
          if (hosts.isEmpty()) {
            return waiting("no worker is alive");
          }
          boolean devices = hosts.stream().anyMatch(h -> h.totalDevices() > 0);
          Capacity chosen;
          List<Integer> held;
          if (devices) {
            chosen =
                hosts.stream()
                    .filter(h -> h.freeDevices().size() >= gpusPerNode)
                    .max(Comparator.comparingInt(h -> h.freeDevices().size()))
                    .orElse(null);
            if (chosen == null) {
              int largest = hosts.stream().mapToInt(Capacity::totalDevices).max().orElse(0);
              int mostFree = hosts.stream().mapToInt(h -> h.freeDevices().size()).max().orElse(0);
              return waiting(
                  gpusPerNode > largest
                      ? "no alive host has "
                          + gpusPerNode
                          + " devices (the largest has "
                          + largest
                          + ")"
                      : "waiting for "
                          + gpusPerNode
                          + " free devices on one host (most free now: "
                          + mostFree
                          + ")");
            }
            held = chosen.freeDevices().subList(0, gpusPerNode);
          } else {
            chosen =
                hosts.stream()
                    .filter(h -> h.freeCpuSlots() > 0)
                    .max(Comparator.comparingInt(Capacity::freeCpuSlots))
                    .orElse(null);
            if (chosen == null) {
              return waiting("waiting for a free CPU slot (every alive worker's slots are in use)");
            }
            held = List.of();
          }
          try (PreparedStatement insert =
              c.prepareStatement(
                  "INSERT INTO placements (session_id, attempt, host_id, cpu_slot) VALUES (?, ?, ?, ?)")) {
            insert.setObject(1, sessionId);
            insert.setInt(2, attempt);
            insert.setString(3, chosen.hostId());
            insert.setBoolean(4, !devices);
            insert.executeUpdate();
          }
          try (PreparedStatement hold =
              c.prepareStatement(
                  "INSERT INTO held_devices (host_id, device_index, session_id) VALUES (?, ?, ?)")) {
            for (int device : held) {
              hold.setString(1, chosen.hostId());
              hold.setInt(2, device);
              hold.setObject(3, sessionId);
              hold.addBatch();
            }
            hold.executeBatch();
          }
          return new Placement(
              chosen.hostId(), TaskQueues.trainingQueue(chosen.hostId()), List.copyOf(held), null);
        });
  }

  /** Frees the session's placement and devices. */
  public void release(UUID sessionId) {
    Transactions.run(
        dataSource,
        c -> {
          try (PreparedStatement delete =
              c.prepareStatement("DELETE FROM placements WHERE session_id = ?")) {
            delete.setObject(1, sessionId);
            delete.executeUpdate();
          }
        });
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
    return new Placement(hostId, TaskQueues.trainingQueue(hostId), List.copyOf(devices), null);
  }

  /** The alive hosts, locked in id order, with what each has free. */
  private static List<Capacity> capacities(Connection c, Duration aliveWithin) throws SQLException {
    Map<String, Integer> cpuSlots = new LinkedHashMap<>();
    try (PreparedStatement lock =
        c.prepareStatement(
            """
            SELECT id, cpu_slots FROM hosts
             WHERE last_seen > now() - make_interval(secs => ?)
             ORDER BY id FOR UPDATE
            """)) {
      lock.setDouble(1, aliveWithin.toMillis() / 1000.0);
      try (ResultSet rs = lock.executeQuery()) {
        while (rs.next()) {
          cpuSlots.put(rs.getString("id"), rs.getInt("cpu_slots"));
        }
      }
    }
    List<Capacity> capacities = new ArrayList<>();
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
          new Capacity(
              id,
              total.getOrDefault(id, 0),
              free.getOrDefault(id, List.of()),
              host.getValue() - slotsUsed.getOrDefault(id, 0)));
    }
    return capacities;
  }

  private static Placement waiting(String why) {
    return new Placement(null, null, List.of(), why);
  }
}
