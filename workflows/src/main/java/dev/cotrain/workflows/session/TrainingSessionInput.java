package dev.cotrain.workflows.session;

/** Starts one session; {@code sessionId} is the UUID the API stored the session under. */
public record TrainingSessionInput(String sessionId, SessionSpec spec) {}
