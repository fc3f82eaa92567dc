package dev.cotrain.workflows.registry;

import dev.cotrain.workflows.registry.EvaluationActivities.EvaluationResult;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * An evaluation of a registered version on a named evaluation set, asked for through the API: runs
 * on any worker ({@code cotrain-evaluation} queue, CPU), is retried, and stores its result with the
 * version.
 */
@WorkflowInterface
public interface ModelEvaluationWorkflow {

  @WorkflowMethod
  EvaluationResult evaluate(EvaluationRequest request);

  /** {@code dataset}: the set's file, relative to the storage root's datasets/raw. */
  record EvaluationRequest(
      String model, int version, String modelPath, String evalSet, String dataset) {}
}
