package dev.cotrain.activities.host;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.host.HostStore.Device;
import dev.cotrain.activities.host.HostStore.Host;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The inventory on the real PostgreSQL. */
class HostStoreTest {

  private final TestDatabase db = TestDatabase.get();
  private final HostStore store = new HostStore(db.dataSource());
  private final String id = "host-" + UUID.randomUUID();

  @AfterEach
  void forgetTheHost() throws SQLException {
    try (Connection c = db.dataSource().getConnection();
        PreparedStatement s = c.prepareStatement("DELETE FROM hosts WHERE id = ?")) {
      s.setString(1, id);
      s.executeUpdate();
    }
  }

  @Test
  void registeringAgainReplacesTheDeviceList() throws SQLException {
    store.register(
        new Host(
            id,
            2,
            Map.of("zone", "eu"),
            42,
            List.of(
                new Device(0, "NVIDIA H200", 1L << 37), new Device(1, "NVIDIA H200", 1L << 37))));
    store.register(new Host(id, 2, Map.of(), 43, List.of(new Device(1, "NVIDIA H200", 1L << 37))));

    assertThat(deviceIndexes()).containsExactly(1);
    assertThat(store.seen(id)).isTrue();
  }

  @Test
  void aHostThatIsNotRegisteredCannotBeSeen() {
    assertThat(store.seen(id)).isFalse();
  }

  private List<Integer> deviceIndexes() throws SQLException {
    try (Connection c = db.dataSource().getConnection();
        PreparedStatement s =
            c.prepareStatement(
                "SELECT device_index FROM devices WHERE host_id = ? ORDER BY device_index")) {
      s.setString(1, id);
      List<Integer> indexes = new ArrayList<>();
      try (ResultSet rs = s.executeQuery()) {
        while (rs.next()) {
          indexes.add(rs.getInt(1));
        }
      }
      return indexes;
    }
  }
}
