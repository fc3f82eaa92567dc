package dev.cotrain.api.worker;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** The hosts and devices tables, which the workers write. */
@Repository
public class WorkerRepository {

  private final JdbcClient jdbc;
  private final ObjectMapper mapper;

  WorkerRepository(JdbcClient jdbc, ObjectMapper mapper) {
    this.jdbc = jdbc;
    this.mapper = mapper;
  }

  /**
   * The most devices any registered host offers (alive or not: a host may come back); empty when no
   * host offers devices, where sessions take CPU slots.
   */
  public OptionalInt mostDevicesOnOneHost() {
    int most =
        jdbc.sql(
                "SELECT coalesce(max(n), 0) FROM"
                    + " (SELECT count(*) AS n FROM devices GROUP BY host_id) hosts")
            .query(Integer.class)
            .single();
    return most == 0 ? OptionalInt.empty() : OptionalInt.of(most);
  }

  /** Whether a worker marked its host seen within {@code aliveWithin}. */
  public boolean anyAlive(Duration aliveWithin) {
    return jdbc.sql(
            "SELECT EXISTS (SELECT 1 FROM hosts WHERE last_seen > now() - make_interval(secs =>"
                + " :alive))")
        .param("alive", aliveWithin.toMillis() / 1000.0)
        .query(Boolean.class)
        .single();
  }

  /** Registered hosts (alive or not) offering at least {@code devices} devices (0: all of them). */
  public int hostsWithAtLeast(int devices) {
    return jdbc.sql(
            """
            SELECT count(*) FROM hosts h
             WHERE (SELECT count(*) FROM devices d WHERE d.host_id = h.id) >= :devices
            """)
        .param("devices", devices)
        .query(Integer.class)
        .single();
  }

  /** Alive hosts first (by id), then the gone ones. */
  List<WorkerHost> hosts(Duration aliveWithin) {
    Map<String, List<WorkerHost.Device>> devices = new LinkedHashMap<>();
    jdbc.sql(
            "SELECT host_id, device_index, name, memory_bytes FROM devices ORDER BY host_id, device_index")
        .query(
            rs -> {
              devices
                  .computeIfAbsent(rs.getString("host_id"), id -> new ArrayList<>())
                  .add(
                      new WorkerHost.Device(
                          rs.getInt("device_index"),
                          rs.getString("name"),
                          rs.getObject("memory_bytes", Long.class)));
            });
    return jdbc.sql(
            """
            SELECT id, last_seen > now() - make_interval(secs => :alive) AS alive,
                   NULLIF(last_seen, '-infinity') AS last_seen,
                   started_at, worker_pid, cpu_slots, labels::text AS labels
              FROM hosts
             ORDER BY alive DESC, id
            """)
        .param("alive", aliveWithin.toMillis() / 1000.0)
        .query(
            (rs, n) ->
                new WorkerHost(
                    rs.getString("id"),
                    rs.getBoolean("alive"),
                    rs.getTimestamp("last_seen") == null
                        ? null
                        : rs.getTimestamp("last_seen").toInstant(),
                    rs.getTimestamp("started_at").toInstant(),
                    rs.getLong("worker_pid"),
                    rs.getInt("cpu_slots"),
                    labels(rs.getString("labels")),
                    devices.getOrDefault(rs.getString("id"), List.of())))
        .list();
  }

  private Map<String, String> labels(String text) {
    try {
      return mapper.readValue(text, new TypeReference<Map<String, String>>() {});
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("stored host labels are not JSON", e);
    }
  }
}
