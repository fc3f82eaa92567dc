package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Session bookkeeping in PostgreSQL. */
@ActivityInterface
public interface SessionActivities {

  /**
   * Stores the session's new status (with the final model path or the error message) and notifies
   * WebSocket subscribers. Idempotent: recording the same change twice leaves the same row.
   */
  void recordStatus(StatusChange change);

  /** {@code finalModelPath} is set for COMPLETED, {@code error} for FAILED. */
  record StatusChange(
      String sessionId, SessionStatus status, String finalModelPath, String error) {}
}
