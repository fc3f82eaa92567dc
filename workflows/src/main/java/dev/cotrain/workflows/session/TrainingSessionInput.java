package dev.cotrain.workflows.session;

import java.time.Duration;

/**
 * Starts one session. {@code sessionId} is the UUID the API stores the session under; {@code
 * request} is the normalized creation request as JSON, for {@link
 * SessionActivities#registerSession}; {@code heartbeatTimeout} is how long a silent trainer
 * activity may go before it counts as lost (null: {@link #DEFAULT_HEARTBEAT_TIMEOUT}).
 */
public record TrainingSessionInput(
    String sessionId,
    SessionSpec spec,
    String request,
    Duration heartbeatTimeout,
    String modelName) {

  /** A session whose export is not registered (sessions made before the registry). */
  public TrainingSessionInput(
      String sessionId, SessionSpec spec, String request, Duration heartbeatTimeout) {
    this(sessionId, spec, request, heartbeatTimeout, null);
  }

  public static final Duration DEFAULT_HEARTBEAT_TIMEOUT = Duration.ofSeconds(10);

  public Duration heartbeatTimeoutOrDefault() {
    return heartbeatTimeout == null ? DEFAULT_HEARTBEAT_TIMEOUT : heartbeatTimeout;
  }
}
