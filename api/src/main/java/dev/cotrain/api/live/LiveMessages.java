package dev.cotrain.api.live;

import dev.cotrain.schema.SessionEvent;
import java.util.List;
import java.util.Set;

/** The JSON text frames sent to WebSocket subscribers; see docs/websocket.md. */
final class LiveMessages {

  static final String PROGRESS = "training.progress";
  static final String STATUS = "session.status";
  static final String SYSTEM = "system.metrics";
  static final String SYNC = "diloco.sync";
  static final String QUEUE = "session.queue";
  static final String SUBSCRIBED = "sessions.subscribed";

  /** The types the session list channel carries. */
  static final Set<String> LISTED = Set.of(PROGRESS, STATUS, QUEUE);

  /** Not a message type: the queue kind of catch-up progress, which is never coalesced. */
  static final String CATCH_UP = "catch-up";

  private LiveMessages() {}

  /** Every message names its type and its session (null for none). */
  interface Message {
    String type();

    String sessionId();
  }

  /**
   * The first message of the session list channel, and again whenever events may have been lost:
   * (re)load the list after it.
   */
  record Subscribed(String type, String sessionId) implements Message {}

  /**
   * {@code progress} is a percentage (0..100); {@code at} is when the worker stored the step (null
   * in the snapshot of the newest step).
   */
  record TrainingProgress(
      String type,
      String sessionId,
      Long step,
      Long totalSteps,
      Integer epoch,
      Double progress,
      Double loss,
      Integer participants,
      Metrics metrics,
      Double tokensPerSecond,
      String at)
      implements Message {}

  record Metrics(Double accuracy, Double learningRate, Integer batchSize) {}

  /**
   * A lifecycle transition (or, as the first message, the current state). {@code error} is the
   * message of a FAILED session; {@code message} may be cut ({@code messageCut}), the REST API has
   * it whole; {@code eventId} and {@code at} are those of the session's event (null in a snapshot
   * of a session without events).
   */
  record SessionStatus(
      String type,
      String sessionId,
      String status,
      Double progress,
      String finalModelPath,
      String error,
      String previousStatus,
      String cause,
      Integer attempt,
      String message,
      boolean messageCut,
      Long eventId,
      String at)
      implements Message {}

  /**
   * A machine sample of one node of the trainer (about every 30 s): its first rank's CPU (100 = one
   * core) and memory, the machine's disk and network byte counters since boot, and each GPU.
   */
  record SystemMetrics(
      String type,
      String sessionId,
      int attempt,
      int node,
      long step,
      Double cpuPercent,
      Long rssBytes,
      Long diskReadBytes,
      Long diskWriteBytes,
      Long netSentBytes,
      Long netRecvBytes,
      List<SessionEvent.Gpu> gpus)
      implements Message {}

  /** A DiLoCo outer step: who took part, how many bytes each all-reduced, how long it took. */
  record DilocoSync(
      String type,
      String sessionId,
      long outerStep,
      long step,
      int participants,
      long bytes,
      double seconds)
      implements Message {}

  /** A waiting session's place in the queue: {@code position} from 1, and what it waits for. */
  record QueuePosition(String type, String sessionId, int position, String reason)
      implements Message {}
}
