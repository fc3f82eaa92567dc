package dev.cotrain.api.session;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import java.time.Instant;
import java.util.List;
import org.springframework.lang.Nullable;

/**
 * A machine sample of one node of a session's trainer ({@code node} 0 for a session of one node):
 * its first rank's process's CPU (100 = one core) and memory, the machine's disk and network byte
 * counters since boot, and {@code gpus} as the trainer reported them ({@code index, utilization,
 * memoryUsedBytes, memoryTotalBytes}).
 */
record SystemSampleRow(
    int attempt,
    int node,
    int sample,
    long step,
    @Nullable Double cpuPercent,
    @Nullable Long rssBytes,
    @Nullable Long diskReadBytes,
    @Nullable Long diskWriteBytes,
    @Nullable Long netSentBytes,
    @Nullable Long netRecvBytes,
    List<Gpu> gpus,
    Instant recordedAt) {

  /** One GPU: {@code utilization} (%) is null without NVML. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  record Gpu(
      int index, @Nullable Double utilization, long memoryUsedBytes, long memoryTotalBytes) {}
}
