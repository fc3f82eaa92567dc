package dev.cotrain.api.session;

import java.time.Instant;
import java.util.UUID;

/**
 * One row of the sessions table; {@code epoch} and {@code tokensPerSecond} come from the metrics
 * row of {@code latestStep}, if any. {@code request} is the stored JSON text; {@code queuePosition}
 * and {@code queueReason} are set while the session waits in the queue.
 */
public record SessionRow(
    UUID id,
    String workflowId,
    String name,
    String description,
    String request,
    String status,
    double progress,
    Long latestStep,
    Long totalSteps,
    Double latestLoss,
    Double latestAccuracy,
    Double learningRate,
    Integer latestEpoch,
    Double tokensPerSecond,
    String finalModelPath,
    String error,
    int attempt,
    Instant createdAt,
    Instant updatedAt,
    Instant finishedAt,
    int priority,
    String owner,
    Integer queuePosition,
    String queueReason) {}
