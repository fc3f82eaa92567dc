package dev.cotrain.api.worker;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.List;

/**
 * A registered worker host: its stable id ({@code COTRAIN_HOST_ID}, else the host name), CPU slots,
 * labels and devices, and when its worker was last seen.
 */
record WorkerHost(
    String id,
    boolean alive,
    Instant lastSeen,
    Instant startedAt,
    long workerPid,
    int cpuSlots,
    JsonNode labels,
    List<Device> devices) {

  /** A GPU ({@code nvidia-smi}) or a declared device ({@code COTRAIN_GPUS}, no memory known). */
  record Device(int index, String name, Long memoryBytes) {}
}
