package dev.cotrain.workflows.registry;

import dev.cotrain.workflows.registry.EvaluationActivities.EvaluateInput;
import dev.cotrain.workflows.registry.EvaluationActivities.EvaluationResult;
import dev.cotrain.workflows.registry.RegistryActivities.RecordEvaluation;
import dev.cotrain.workflows.session.FailureTypes;
import dev.cotrain.workflows.session.TaskQueues;
import io.temporal.activity.ActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.util.List;

public class ModelEvaluationWorkflowImpl implements ModelEvaluationWorkflow {

  private final EvaluationActivities evaluation =
      Workflow.newActivityStub(
          EvaluationActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.EVALUATION)
              .setStartToCloseTimeout(Duration.ofHours(6))
              .setHeartbeatTimeout(Duration.ofSeconds(30))
              .setRetryOptions(
                  RetryOptions.newBuilder()
                      .setMaximumAttempts(3)
                      .setDoNotRetry(FailureTypes.EVALUATION_FAILED)
                      .build())
              .build());

  private final RegistryActivities registry =
      Workflow.newActivityStub(
          RegistryActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              .setRetryOptions(
                  RetryOptions.newBuilder().setMaximumInterval(Duration.ofSeconds(10)).build())
              .build());

  @Override
  public EvaluationResult evaluate(EvaluationRequest request) {
    EvaluationResult result =
        evaluation.evaluate(
            new EvaluateInput(
                request.modelPath(), null, request.dataset(), request.evalSet(), List.of()));
    registry.recordEvaluation(
        new RecordEvaluation(
            request.model(),
            request.version(),
            request.evalSet(),
            result.loss(),
            result.perplexity(),
            result.accuracy()));
    return result;
  }
}
