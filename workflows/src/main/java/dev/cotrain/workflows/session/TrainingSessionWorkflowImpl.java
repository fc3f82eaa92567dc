package dev.cotrain.workflows.session;

import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.TrainingActivities.RunTrainingInput;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import io.temporal.activity.ActivityCancellationType;
import io.temporal.activity.ActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.Workflow;
import java.time.Duration;

public class TrainingSessionWorkflowImpl implements TrainingSessionWorkflow {

  /** Failure types the trainer side marks as the user's to fix; retrying cannot help. */
  public static final String CONFIG_ERROR = "ConfigError";

  public static final String DATA_ERROR = "DataError";

  private static final String SESSION_FAILED = "SessionFailed";

  private final ConfigActivities config =
      Workflow.newActivityStub(
          ConfigActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              .setRetryOptions(
                  RetryOptions.newBuilder()
                      .setMaximumAttempts(5)
                      .setDoNotRetry(CONFIG_ERROR)
                      .build())
              .build());

  private final SessionActivities sessions =
      Workflow.newActivityStub(
          SessionActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              // A database outage must not lose a status change: retry until it is stored.
              .setRetryOptions(
                  RetryOptions.newBuilder().setMaximumInterval(Duration.ofMinutes(1)).build())
              .build());

  private final TrainingActivities training =
      Workflow.newActivityStub(
          TrainingActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.TRAINING)
              .setStartToCloseTimeout(Duration.ofDays(7))
              // Heartbeats arrive at least every few seconds; a silent minute means a dead worker.
              .setHeartbeatTimeout(Duration.ofSeconds(60))
              .setCancellationType(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
              .setRetryOptions(
                  RetryOptions.newBuilder()
                      .setInitialInterval(Duration.ofSeconds(5))
                      .setBackoffCoefficient(2)
                      .setMaximumInterval(Duration.ofMinutes(2))
                      // A trainer that crashes five times in a row has a problem a retry won't fix.
                      .setMaximumAttempts(5)
                      .setDoNotRetry(CONFIG_ERROR, DATA_ERROR)
                      .build())
              .build());

  private SessionStatus status = SessionStatus.QUEUED;

  @Override
  public SessionOutcome run(TrainingSessionInput input) {
    String id = input.sessionId();
    try {
      GeneratedConfig generated = config.generateConfig(new GenerateConfigInput(id, input.spec()));
      setStatus(new StatusChange(id, SessionStatus.RUNNING, null, null));
      TrainingResult result =
          training.runTraining(
              new RunTrainingInput(id, generated.configPath(), generated.checkpointDir()));
      setStatus(new StatusChange(id, SessionStatus.COMPLETED, result.finalModelPath(), null));
      return new SessionOutcome(
          id, status, result.finalModelPath(), result.steps(), result.finalLoss());
    } catch (ActivityFailure failure) {
      String message = rootMessage(failure);
      setStatus(new StatusChange(id, SessionStatus.FAILED, null, message));
      throw ApplicationFailure.newNonRetryableFailure(message, SESSION_FAILED);
    }
  }

  @Override
  public SessionStatus status() {
    return status;
  }

  private void setStatus(StatusChange change) {
    sessions.recordStatus(change);
    status = change.status();
  }

  /** The innermost failure's own message: the trainer's words, not Temporal's wrapping. */
  private static String rootMessage(ActivityFailure failure) {
    Throwable cause = failure;
    while (cause.getCause() != null) {
      cause = cause.getCause();
    }
    String message =
        cause instanceof TemporalFailure temporal ? temporal.getOriginalMessage() : null;
    return message == null || message.isBlank() ? failure.getMessage() : message;
  }
}
