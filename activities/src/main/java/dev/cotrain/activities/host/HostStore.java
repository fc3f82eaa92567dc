package dev.cotrain.activities.host;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.schema.Transactions;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Types;
import java.util.List;
import java.util.Map;
import javax.sql.DataSource;

/**
 * The worker's side of the inventory (tables {@code hosts} and {@code devices}): it registers its
 * host with the devices it offers when it starts, and marks it seen every few seconds.
 */
public final class HostStore {

  /** One device of a host; {@code memoryBytes} is null when unknown (declared devices). */
  public record Device(int index, String name, Long memoryBytes) {}

  /**
   * What a worker offers: its host identity, CPU slots, labels and devices, and the address other
   * hosts reach it at (the rendezvous of sessions whose node 0 runs here; null: the host id).
   */
  public record Host(
      String id,
      int cpuSlots,
      Map<String, String> labels,
      long workerPid,
      List<Device> devices,
      String address) {

    public Host(
        String id, int cpuSlots, Map<String, String> labels, long workerPid, List<Device> devices) {
      this(id, cpuSlots, labels, workerPid, devices, null);
    }
  }

  private final DataSource dataSource;
  private final ObjectMapper json = new ObjectMapper();

  public HostStore(DataSource dataSource) {
    this.dataSource = dataSource;
  }

  /**
   * Inserts or replaces the host's row and its device list, in one transaction: devices it no
   * longer has are removed (and freed), the others keep whoever holds them.
   */
  public void register(Host host) {
    String labels;
    try {
      labels = json.writeValueAsString(host.labels());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    Transactions.run(
        dataSource,
        c -> {
          try (PreparedStatement upsert =
              c.prepareStatement(
                  """
                INSERT INTO hosts (id, cpu_slots, labels, worker_pid, started_at, last_seen, address)
                VALUES (?, ?, CAST(? AS jsonb), ?, now(), now(), ?)
                ON CONFLICT (id) DO UPDATE SET
                    cpu_slots = excluded.cpu_slots, labels = excluded.labels,
                    worker_pid = excluded.worker_pid, started_at = now(), last_seen = now(),
                    address = excluded.address
                """)) {
            upsert.setString(1, host.id());
            upsert.setInt(2, host.cpuSlots());
            upsert.setString(3, labels);
            upsert.setLong(4, host.workerPid());
            upsert.setString(5, host.address());
            upsert.executeUpdate();
          }
          // Devices it still has keep their rows (and whoever holds them); the others go.
          try (PreparedStatement delete =
              c.prepareStatement(
                  "DELETE FROM devices WHERE host_id = ? AND NOT (device_index = ANY (?))")) {
            delete.setString(1, host.id());
            delete.setArray(
                2,
                c.createArrayOf(
                    "integer", host.devices().stream().map(Device::index).toArray(Integer[]::new)));
            delete.executeUpdate();
          }
          try (PreparedStatement upsert =
              c.prepareStatement(
                  """
                INSERT INTO devices (host_id, device_index, name, memory_bytes) VALUES (?, ?, ?, ?)
                ON CONFLICT (host_id, device_index) DO UPDATE SET
                    name = excluded.name, memory_bytes = excluded.memory_bytes
                """)) {
            for (Device device : host.devices()) {
              upsert.setString(1, host.id());
              upsert.setInt(2, device.index());
              upsert.setString(3, device.name());
              upsert.setObject(4, device.memoryBytes(), Types.BIGINT);
              upsert.addBatch();
            }
            upsert.executeBatch();
          }
        });
  }

  /**
   * Marks the host gone at once (a worker that stops): nothing is placed on it any more, without
   * waiting for the heartbeat timeout. Its holds stay until their sessions release them.
   */
  public void leave(String hostId) {
    Transactions.run(
        dataSource,
        c -> {
          try (PreparedStatement update =
              c.prepareStatement("UPDATE hosts SET last_seen = '-infinity' WHERE id = ?")) {
            update.setString(1, hostId);
            update.executeUpdate();
          }
        });
  }

  /** Marks the host seen now; false when its row is gone (then register it again). */
  public boolean seen(String hostId) {
    try (Connection c = dataSource.getConnection();
        PreparedStatement update =
            c.prepareStatement("UPDATE hosts SET last_seen = now() WHERE id = ?")) {
      update.setString(1, hostId);
      return update.executeUpdate() == 1;
    } catch (SQLException e) {
      throw new IllegalStateException(
          "could not mark host " + hostId + " seen: " + e.getMessage(), e);
    }
  }
}
