package dev.cotrain.workflows.session;

import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * Judges a session's spec by the trainer's config rules before the session exists, so that the API
 * can refuse a combination the trainer would refuse (docs/decisions.md, entry 36). Started by the
 * API on {@link TaskQueues#CONTROL} with an id of {@link TaskQueues#CONFIG_CHECK_ID_PREFIX}; the
 * API waits for its result for a bounded time and otherwise accepts the session unchecked.
 */
@WorkflowInterface
public interface ConfigCheckWorkflow {

  /**
   * Runs {@link ConfigActivities#checkConfig} as a local activity on the worker that took the
   * workflow task and returns its verdict. No side effects; a retried or duplicate check is
   * harmless.
   */
  @WorkflowMethod
  ConfigVerdict check(GenerateConfigInput input);
}
