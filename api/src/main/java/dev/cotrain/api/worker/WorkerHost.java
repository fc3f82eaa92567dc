package dev.cotrain.api.worker;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.springframework.lang.Nullable;

/**
 * A registered worker host: its stable id ({@code COTRAIN_HOST_ID}, else the host name), CPU slots,
 * labels and devices, and when its worker was last seen ({@code lastSeen} is null once the host
 * left, or was found lost).
 */
record WorkerHost(
    String id,
    boolean alive,
    @Nullable Instant lastSeen,
    Instant startedAt,
    long workerPid,
    int cpuSlots,
    Map<String, String> labels,
    List<Device> devices) {

  /** A GPU ({@code nvidia-smi}) or a declared device ({@code COTRAIN_GPUS}, no memory known). */
  record Device(int index, String name, @Nullable Long memoryBytes) {}
}
