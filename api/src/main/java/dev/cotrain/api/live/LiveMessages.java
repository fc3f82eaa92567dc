package dev.cotrain.api.live;

/** The JSON text frames sent to WebSocket subscribers; see docs/websocket.md. */
final class LiveMessages {

  static final String PROGRESS = "training.progress";
  static final String STATUS = "session.status";

  private LiveMessages() {}

  /** {@code progress} is a percentage (0..100). */
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
      Double tokensPerSecond) {}

  record Metrics(Double accuracy, Double learningRate, Integer batchSize) {}

  record SessionStatus(
      String type,
      String sessionId,
      String status,
      Double progress,
      String finalModelPath,
      String error) {}
}
