package dev.cotrain.workflows.registry;

import io.temporal.activity.ActivityInterface;
import java.util.List;

/** Evaluates a model directory with the trainer's own objective, on a worker. */
@ActivityInterface
public interface EvaluationActivities {

  /**
   * Runs {@code python -m cotrain_core.evaluate --model <modelPath> --data <data>} ({@code data}: a
   * path on this worker, or else {@code dataset}, a file under its storage root's datasets/raw) and
   * records the result in the directory's model card under {@code setName}; heartbeats while it
   * runs and stops the process when cancelled. {@code devices} are passed as {@code
   * CUDA_VISIBLE_DEVICES} (empty: CPU). Fails with {@code EVALUATION_FAILED} (not retried) when the
   * trainer refuses the model or the data.
   */
  EvaluationResult evaluate(EvaluateInput input);

  record EvaluateInput(
      String modelPath, String data, String dataset, String setName, List<Integer> devices) {}

  /** Eval loss, its perplexity, and token accuracy (null where the objective has none). */
  record EvaluationResult(double loss, double perplexity, Double accuracy) {}
}
