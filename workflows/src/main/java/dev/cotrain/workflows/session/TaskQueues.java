package dev.cotrain.workflows.session;

/** Task queue names and workflow ids: the one place these literals live. */
public final class TaskQueues {
  /** Session workflows, config generation and status bookkeeping. */
  public static final String CONTROL = "cotrain-control";

  /** Trainer processes; a worker polls it with as many slots as it has training slots. */
  public static final String TRAINING = "cotrain-training";

  public static final String WORKFLOW_ID_PREFIX = "session-";

  private TaskQueues() {}

  public static String workflowId(String sessionId) {
    return WORKFLOW_ID_PREFIX + sessionId;
  }
}
