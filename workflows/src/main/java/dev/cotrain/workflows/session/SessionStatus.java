package dev.cotrain.workflows.session;

/** Lifecycle of a training session, as stored in PostgreSQL and sent to WebSocket clients. */
public enum SessionStatus {
  QUEUED,
  RUNNING,
  COMPLETED,
  FAILED;

  public boolean isFinal() {
    return this == COMPLETED || this == FAILED;
  }
}
