package dev.cotrain.workflows.session;

/** Task queue names and workflow ids: the one place these literals live. */
public final class TaskQueues {
  /** Session workflows, config generation and status bookkeeping. */
  public static final String CONTROL = "cotrain-control";

  /** Prefix of each host's training queue: a worker polls the one of its host only. */
  public static final String TRAINING_PREFIX = "cotrain-training-";

  public static final String WORKFLOW_ID_PREFIX = "session-";

  /** Prefix of the workflow ids of {@link ConfigCheckWorkflow}s: one per create, on CONTROL. */
  public static final String CONFIG_CHECK_ID_PREFIX = "config-check-";

  private TaskQueues() {}

  /** The task queue of one host's trainers, where the session placed there runs its attempt. */
  public static String trainingQueue(String hostId) {
    return TRAINING_PREFIX + hostId;
  }

  public static String workflowId(String sessionId) {
    return WORKFLOW_ID_PREFIX + sessionId;
  }
}
