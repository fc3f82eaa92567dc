package dev.cotrain.workflows.session;

/** Failure types of the session's activities: the one place these names live. */
public final class FailureTypes {

  /** The spec or the trainer's config is invalid (trainer exit 2); retrying cannot help. */
  public static final String CONFIG_ERROR = "ConfigError";

  /** The data set is missing or unusable (trainer exit 3); retrying cannot help. */
  public static final String DATA_ERROR = "DataError";

  /** The trainer says a rerun would fail the same way (e.g. the loss diverged). */
  public static final String TRAINER_FAILED = "TrainerFailed";

  /** The trainer died or could not start; a retry resumes from the newest checkpoint. */
  public static final String TRAINER_CRASHED = "TrainerCrashed";

  /**
   * A rank's collective lost its peer: the failure of another rank or node is the cause, and the
   * workflow reports that one when it has it. Retried like a crash.
   */
  public static final String PEER_LOST = "PeerLost";

  /**
   * The trainer was stopped from outside the session (its worker is draining, or it got SIGTERM)
   * after writing a checkpoint; the session goes back to the queue at once.
   */
  public static final String TRAINER_PREEMPTED = "TrainerPreempted";

  /** The trainer refuses to evaluate a model (its files or the data are unusable). */
  public static final String EVALUATION_FAILED = "EvaluationFailed";

  /** The workflow's own failure when a session ends FAILED. */
  public static final String SESSION_FAILED = "SessionFailed";

  private FailureTypes() {}
}
