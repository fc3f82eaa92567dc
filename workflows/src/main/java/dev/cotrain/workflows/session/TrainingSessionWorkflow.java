package dev.cotrain.workflows.session;

import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * One training session, from config generation to the final model. Its id is {@link
 * TaskQueues#workflowId(String)} of the session id, so a session has at most one running workflow.
 */
@WorkflowInterface
public interface TrainingSessionWorkflow {

  /**
   * Generates the TOML config, runs the trainer (retried from its newest checkpoint after a crash)
   * and records each status change in PostgreSQL. Completes with the final model's path; fails with
   * the trainer's own message when training cannot succeed (bad config, bad data, retries spent).
   */
  @WorkflowMethod
  SessionOutcome run(TrainingSessionInput input);

  /** The session's current status, as the workflow sees it. */
  @QueryMethod(description = "Current status of the training session")
  SessionStatus status();
}
