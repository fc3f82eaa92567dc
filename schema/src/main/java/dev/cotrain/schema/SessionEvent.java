package dev.cotrain.schema;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import java.util.List;

/**
 * A live event of one session, as the worker publishes it and the API relays it: the one typed
 * contract between the two (docs/websocket.md shows what clients receive). Encoded by {@link
 * SessionEvents}; the {@code kind} property names the type.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "kind")
@JsonSubTypes({
  @JsonSubTypes.Type(value = SessionEvent.Progress.class, name = "progress"),
  @JsonSubTypes.Type(value = SessionEvent.Status.class, name = "status"),
  @JsonSubTypes.Type(value = SessionEvent.SystemSample.class, name = "system"),
  @JsonSubTypes.Type(value = SessionEvent.Sync.class, name = "sync"),
  @JsonSubTypes.Type(value = SessionEvent.Queue.class, name = "queue")
})
public sealed interface SessionEvent {

  String sessionId();

  /**
   * One trainer step. {@code progress} is a percentage (0..100); {@code participants} the number of
   * ranks training; {@code at} is when the worker stored the step (ISO-8601, the metrics row's
   * {@code recorded_at}).
   */
  record Progress(
      String sessionId,
      long step,
      long totalSteps,
      int epoch,
      double progress,
      double loss,
      Double accuracy,
      Double learningRate,
      Double gradNorm,
      Integer batchSize,
      Double tokensPerSecond,
      int participants,
      String at)
      implements SessionEvent {}

  /**
   * One lifecycle transition, as stored in {@code session_events}: {@code at} is its ISO-8601 time;
   * {@code message} may be cut to fit a NOTIFY payload ({@code messageCut}), the full text is
   * served by the REST API.
   */
  record Status(
      String sessionId,
      long eventId,
      String at,
      String status,
      String previousStatus,
      String cause,
      int attempt,
      String message,
      boolean messageCut,
      String finalModelPath)
      implements SessionEvent {

    Status withMessage(String cutMessage, boolean cut) {
      return new Status(
          sessionId,
          eventId,
          at,
          status,
          previousStatus,
          cause,
          attempt,
          cutMessage,
          cut,
          finalModelPath);
    }
  }

  /**
   * A machine sample of one node's trainer ({@code node} 0 for a session of one node): {@code
   * cpuPercent} of the node's first rank's process (100 = one core), its resident memory, the
   * machine's disk and network byte counters since boot (differences of consecutive samples are
   * rates), and each GPU; {@code step} is the newest step at the time.
   */
  record SystemSample(
      String sessionId,
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
      List<Gpu> gpus)
      implements SessionEvent {}

  /** One GPU in a {@link SystemSample}; {@code utilization} (%) is null without NVML. */
  record Gpu(int index, Double utilization, long memoryUsedBytes, long memoryTotalBytes) {}

  /**
   * One DiLoCo outer step: {@code participants} ranks all-reduced {@code bytes} of pseudo-gradients
   * each, and the whole outer step took {@code seconds}.
   */
  record Sync(
      String sessionId, long outerStep, long step, int participants, long bytes, double seconds)
      implements SessionEvent {}

  /**
   * A waiting session's place in the queue changed: {@code position} counts from 1 (next to be
   * placed), {@code reason} says what it waits for (docs/placement.md).
   */
  record Queue(String sessionId, int position, String reason) implements SessionEvent {}
}
