package dev.cotrain.activities.registry;

import dev.cotrain.workflows.registry.RegistryActivities;

/** {@link RegistryActivities} over {@link RegistryStore}. */
public final class RegistryActivitiesImpl implements RegistryActivities {

  private final RegistryStore store;

  public RegistryActivitiesImpl(RegistryStore store) {
    this.store = store;
  }

  @Override
  public ModelVersion registerVersion(RegisterVersion input) {
    return store.registerVersion(input);
  }

  @Override
  public void recordEvaluation(RecordEvaluation input) {
    store.recordEvaluation(input);
  }

  @Override
  public void evaluationFailed(EvaluationFailed input) {
    if (VALIDATION.equals(input.evalSet())) {
      store.evaluationFailed(input.model(), input.version(), input.message());
    }
  }
}
