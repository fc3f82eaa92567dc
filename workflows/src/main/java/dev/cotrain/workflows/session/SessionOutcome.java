package dev.cotrain.workflows.session;

/**
 * How a session ended when its workflow completes: COMPLETED (with the final model) or CANCELLED
 * through the API ({@code steps} and {@code finalLoss} are 0 then). A failed session ends the
 * workflow with a failure instead.
 */
public record SessionOutcome(
    String sessionId, SessionStatus status, String finalModelPath, long steps, double finalLoss) {}
