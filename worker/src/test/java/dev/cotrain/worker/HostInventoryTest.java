package dev.cotrain.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cotrain.activities.host.HostStore.Device;
import java.util.Map;
import org.junit.jupiter.api.Test;

class HostInventoryTest {

  @Test
  void declaredDevicesAreDistinctIdsInOrder() {
    assertThat(HostInventory.devices(" 3, 0,1 "))
        .containsExactly(
            new Device(0, "declared", null),
            new Device(1, "declared", null),
            new Device(3, "declared", null));
  }

  @Test
  void declaredDevicesThatAreNotIdsAreRefusedNamingTheVariable() {
    for (String bad : new String[] {"0,0", "a", "-1", "0,,1"}) {
      assertThatThrownBy(() -> HostInventory.declared(bad))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith("COTRAIN_GPUS: ");
    }
  }

  @Test
  void nvidiaSmiLinesBecomeDevicesWithTheirMemory() {
    String out =
        """
        0, NVIDIA H200, 143771
        1, NVIDIA H200, 143771
        """;

    assertThat(HostInventory.parseNvidiaSmi(out))
        .containsExactly(
            new Device(0, "NVIDIA H200", 143771L * 1024 * 1024),
            new Device(1, "NVIDIA H200", 143771L * 1024 * 1024));
    assertThat(HostInventory.parseNvidiaSmi("No devices were found")).isEmpty();
  }

  @Test
  void labelsAreKeyValuePairs() {
    assertThat(HostInventory.labels("zone=eu, disk=nvme"))
        .isEqualTo(Map.of("zone", "eu", "disk", "nvme"));
    assertThat(HostInventory.labels(null)).isEmpty();
    assertThatThrownBy(() -> HostInventory.labels("zone"))
        .hasMessageStartingWith("COTRAIN_HOST_LABELS: ");
  }
}
