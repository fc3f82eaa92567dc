package dev.cotrain.api.session;

import com.fasterxml.jackson.databind.JsonNode;
import io.swagger.v3.oas.annotations.media.Schema;
import java.time.Instant;
import java.util.UUID;
import org.springframework.lang.Nullable;

/**
 * A session as the REST API shows it. {@code progress} is a percentage (0..100); {@code
 * latestMetrics} is null until the trainer has reported a step; {@code attempt} is the trainer
 * attempt (0 before the first); {@code error} the full message of a FAILED session; {@code request}
 * is the normalized creation request (defaults filled in); {@code priority} is the current one (it
 * may have been changed since); {@code queue} is set while the session waits for a placement.
 */
record SessionResponse(
    UUID id,
    String workflowId,
    String name,
    String description,
    String status,
    double progress,
    @Nullable Long latestStep,
    @Nullable Long totalSteps,
    @Nullable LatestMetrics latestMetrics,
    @Nullable String finalModelPath,
    @Nullable String error,
    int attempt,
    Instant createdAt,
    Instant updatedAt,
    @Nullable Instant finishedAt,
    int priority,
    String owner,
    @Nullable Queue queue,
    @Schema(implementation = CreateSessionRequest.class) JsonNode request) {

  record LatestMetrics(
      @Nullable Double loss, @Nullable Double accuracy, @Nullable Double learningRate) {}

  /** {@code position} counts from 1 (next to be placed); {@code reason} says what it waits for. */
  record Queue(@Nullable Integer position, @Nullable String reason) {}

  static SessionResponse of(SessionRow row, JsonNode request) {
    boolean hasMetrics =
        row.latestStep() != null
            || row.latestLoss() != null
            || row.latestAccuracy() != null
            || row.learningRate() != null;
    return new SessionResponse(
        row.id(),
        row.workflowId(),
        row.name(),
        row.description(),
        row.status(),
        row.progress(),
        row.latestStep(),
        row.totalSteps(),
        hasMetrics
            ? new LatestMetrics(row.latestLoss(), row.latestAccuracy(), row.learningRate())
            : null,
        row.finalModelPath(),
        row.error(),
        row.attempt(),
        row.createdAt(),
        row.updatedAt(),
        row.finishedAt(),
        row.priority(),
        row.owner(),
        row.queuePosition() == null && row.queueReason() == null
            ? null
            : new Queue(row.queuePosition(), row.queueReason()),
        request);
  }
}
