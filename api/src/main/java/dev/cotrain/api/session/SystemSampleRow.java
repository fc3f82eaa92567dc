package dev.cotrain.api.session;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;

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
    Double cpuPercent,
    Long rssBytes,
    Long diskReadBytes,
    Long diskWriteBytes,
    Long netSentBytes,
    Long netRecvBytes,
    JsonNode gpus,
    Instant recordedAt) {}
