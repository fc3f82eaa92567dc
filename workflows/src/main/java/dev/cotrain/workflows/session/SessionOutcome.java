package dev.cotrain.workflows.session;

/** What a session that completed produced. A failed session ends the workflow with a failure. */
public record SessionOutcome(
    String sessionId, SessionStatus status, String finalModelPath, long steps, double finalLoss) {}
