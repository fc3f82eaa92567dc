package dev.cotrain.api.session;

import dev.cotrain.api.error.ApiException;
import dev.cotrain.api.temporal.TemporalProperties;
import dev.cotrain.api.worker.WorkerRepository;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import dev.cotrain.workflows.session.ConfigCheckWorkflow;
import dev.cotrain.workflows.session.SessionSpec;
import dev.cotrain.workflows.session.TaskQueues;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.common.metadata.POJOWorkflowInterfaceMetadata;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

/**
 * Refuses at create time what the trainer would refuse at launch, with the trainer's own message
 * (docs/decisions.md, entry 36): a {@link ConfigCheckWorkflow} on the control queue has a worker
 * judge the spec by the trainer's config rules. The API has no Python, so the rules run where the
 * trainer does. With no worker alive, or no verdict within the configured wait, the session is
 * accepted unchecked; the trainer still refuses it at launch, and it ends FAILED with the message.
 */
@Component
class TrainerConfigCheck {

  static final String WORKFLOW_TYPE =
      POJOWorkflowInterfaceMetadata.newInstance(ConfigCheckWorkflow.class)
          .getWorkflowType()
          .orElseThrow();

  /** A check that no worker took is dropped by Temporal after this long. */
  private static final Duration CHECK_LIFETIME = Duration.ofMinutes(1);

  private static final Logger log = LoggerFactory.getLogger(TrainerConfigCheck.class);

  private final WorkflowClient workflowClient;
  private final WorkerRepository workers;
  private final TemporalProperties temporal;

  TrainerConfigCheck(
      WorkflowClient workflowClient, WorkerRepository workers, TemporalProperties temporal) {
    this.workflowClient = workflowClient;
    this.workers = workers;
    this.temporal = temporal;
  }

  /**
   * Throws a 400 naming the request field of the trainer's key, with the trainer's message, when
   * the trainer refuses {@code spec}; returns when it accepts it, or when no verdict came in time.
   */
  void refuseWhatTheTrainerWould(String sessionId, SessionSpec spec) {
    if (!workers.anyAlive(temporal.heartbeatTimeout())) {
      log.debug("Session {}: no worker is alive; its config is judged at launch", sessionId);
      return;
    }
    ConfigVerdict verdict;
    try {
      WorkflowStub check =
          workflowClient.newUntypedWorkflowStub(
              WORKFLOW_TYPE,
              WorkflowOptions.newBuilder()
                  .setWorkflowId(TaskQueues.CONFIG_CHECK_ID_PREFIX + UUID.randomUUID())
                  .setTaskQueue(TaskQueues.CONTROL)
                  .setWorkflowExecutionTimeout(CHECK_LIFETIME)
                  .build());
      check.start(new GenerateConfigInput(sessionId, spec));
      verdict =
          check.getResult(
              temporal.configCheckTimeout().toMillis(), TimeUnit.MILLISECONDS, ConfigVerdict.class);
    } catch (TimeoutException e) {
      log.warn(
          "Session {}: no worker judged its config within {}; it is judged at launch",
          sessionId,
          temporal.configCheckTimeout());
      return;
    } catch (RuntimeException e) {
      log.warn(
          "Session {}: its config could not be checked ({}); it is judged at launch",
          sessionId,
          SessionService.reason(e));
      return;
    }
    if (verdict != null && verdict.outcome() == ConfigVerdict.Outcome.REFUSED) {
      throw ApiException.badField(TrainerKeys.fieldOf(verdict.key()), verdict.message());
    }
    if (verdict != null && verdict.outcome() == ConfigVerdict.Outcome.UNCHECKED) {
      log.warn(
          "Session {}: its config could not be checked ({}); it is judged at launch",
          sessionId,
          verdict.message());
    }
  }
}
