package dev.cotrain.workflows.registry;

import io.temporal.activity.ActivityInterface;

/** The model registry's bookkeeping (docs/models.md), on the control task queue. */
@ActivityInterface
public interface RegistryActivities {

  /**
   * Makes a completed session's export the next version of its model: moves {@code exportPath} to
   * {@code models/final/<model>/v<N>} and stores the version (the session, the config's hash, the
   * data set's fingerprint, the parameter count, the files and their size). Idempotent per session:
   * a retry after a crash returns the version the first call made.
   */
  ModelVersion registerVersion(RegisterVersion input);

  /** Stores an evaluation of a version on a set, replacing an earlier one on the same set. */
  void recordEvaluation(RecordEvaluation input);

  /** The version's evaluation failed for good: the version stays, marked so with the reason. */
  void evaluationFailed(EvaluationFailed input);

  record RegisterVersion(
      String sessionId,
      String model,
      String exportPath,
      String configPath,
      Long parameters,
      String dataFingerprint,
      String validationPath) {}

  record ModelVersion(String model, int version, String path) {}

  /** {@code evalSet} {@value #VALIDATION} is the session's own held-out split. */
  record RecordEvaluation(
      String model, int version, String evalSet, double loss, double perplexity, Double accuracy) {}

  record EvaluationFailed(String model, int version, String evalSet, String message) {}

  /** The name of the session's own held-out split among a version's evaluations. */
  String VALIDATION = "validation";
}
