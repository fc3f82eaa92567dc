package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Session bookkeeping in PostgreSQL: the row is the projection of the workflow's state. */
@ActivityInterface
public interface SessionActivities {

  /**
   * Stores the session's row as QUEUED with a {@code created} event, unless it exists: the API
   * inserts it too, and whichever runs first wins, so a crash of the API between starting the
   * workflow and inserting the row still leaves a row. Idempotent. Retried until stored.
   */
  void registerSession(RegisterSession input);

  /**
   * Applies one status transition: the row's status, the {@code session_events} row and a NOTIFY to
   * WebSocket subscribers, in one transaction. Idempotent by {@code eventId}; a transition older
   * than the row's ({@code seq}) or one after a final status changes nothing. Retried until stored,
   * so a database outage delays a transition but never loses it.
   */
  void recordStatus(StatusChange change);

  /** {@code request} is the normalized creation request as JSON, as the API stores it. */
  record RegisterSession(String sessionId, String name, String description, String request) {}

  /**
   * One transition. {@code eventId} is minted by the workflow; {@code seq} increases with each
   * transition of the session; {@code cause} is a keyword (docs/lifecycle.md), {@code message} the
   * human-readable detail (the trainer's error for FAILED); {@code finalModelPath} is set for
   * COMPLETED; {@code attempt} is the trainer attempt the transition belongs to (0 before the
   * first).
   */
  record StatusChange(
      String sessionId,
      String eventId,
      int seq,
      SessionStatus status,
      SessionStatus previous,
      String cause,
      int attempt,
      String message,
      String finalModelPath) {}
}
