package dev.cotrain.workflows.session;

/** Task queue names and workflow ids: the one place these literals live. */
public final class TaskQueues {
  /** Session workflows, config generation and status bookkeeping. */
  public static final String CONTROL = "cotrain-control";

  /** Prefix of each host's training queue: a worker polls the one of its host only. */
  public static final String TRAINING_PREFIX = "cotrain-training-";

  /** Evaluations asked for through the API, one at a time on any worker's CPU. */
  public static final String EVALUATION = "cotrain-evaluation";

  public static final String WORKFLOW_ID_PREFIX = "session-";

  /** Prefix of the workflow ids of {@link ConfigCheckWorkflow}s: one per create, on CONTROL. */
  public static final String CONFIG_CHECK_ID_PREFIX = "config-check-";

  private TaskQueues() {}

  /** The {@link dev.cotrain.workflows.registry.ModelEvaluationWorkflow} of a version on a set. */
  public static String evaluationWorkflowId(String model, int version, String evalSet) {
    return "evaluate-" + model + "-v" + version + "-" + evalSet;
  }

  /** The task queue of one host's trainers, where the session placed there runs its attempt. */
  public static String trainingQueue(String hostId) {
    return TRAINING_PREFIX + hostId;
  }

  public static String workflowId(String sessionId) {
    return WORKFLOW_ID_PREFIX + sessionId;
  }
}
