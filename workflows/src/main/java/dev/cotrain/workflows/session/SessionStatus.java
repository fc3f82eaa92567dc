package dev.cotrain.workflows.session;

/**
 * The lifecycle of a training session (docs/lifecycle.md). The same names are used in PostgreSQL,
 * the REST API, WebSocket messages and the {@code CotrainStatus} search attribute.
 */
public enum SessionStatus {
  /** Waiting for a worker slot: created, retrying after a failure, or resumed after a pause. */
  QUEUED,
  /** A worker took the session and launched the trainer, which has not started training yet. */
  STARTING,
  /** The trainer is training. */
  RUNNING,
  /** Pause requested: the trainer finishes its step, writes a checkpoint and exits. */
  PAUSING,
  /** No process runs; the newest checkpoint is where a resume continues. */
  PAUSED,
  /** Cancel requested: the trainer is being stopped. */
  CANCELLING,
  /**
   * Trained: the model is registered as a version of its model and is being evaluated on the
   * session's held-out split, on the devices it trained on.
   */
  EVALUATING,
  COMPLETED,
  FAILED,
  /** Cancelled, and no process of the session is left. */
  CANCELLED;

  public boolean isFinal() {
    return this == COMPLETED || this == FAILED || this == CANCELLED;
  }
}
