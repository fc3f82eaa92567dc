package dev.cotrain.api.session;

import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.workflows.session.SessionOutcome;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowStub;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.context.event.EventListener;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/**
 * Settles rows whose workflow ended without recording its end: terminated or timed out in Temporal
 * (the workflow's own code records every other ending). Runs when the API starts and then every
 * {@code cotrain.reconcile.interval} (off with {@code cotrain.reconcile.enabled=false}).
 */
@Component
@ConditionalOnProperty(name = "cotrain.reconcile.enabled", matchIfMissing = true)
class SessionReconciler {

  private static final Logger log = LoggerFactory.getLogger(SessionReconciler.class);

  /** A row this young may belong to a workflow that is being started right now. */
  private static final Duration MISSING_GRACE = Duration.ofMinutes(1);

  private static final int BATCH = 500;

  private final SessionRepository repository;
  private final WorkflowClient workflowClient;

  SessionReconciler(SessionRepository repository, WorkflowClient workflowClient) {
    this.repository = repository;
    this.workflowClient = workflowClient;
  }

  @EventListener(ApplicationReadyEvent.class)
  void onStart() {
    reconcile();
  }

  @Scheduled(
      fixedDelayString = "${cotrain.reconcile.interval:15s}",
      initialDelayString = "${cotrain.reconcile.interval:15s}")
  void periodically() {
    reconcile();
  }

  /** Returns how many rows it settled. */
  int reconcile() {
    int settled = 0;
    try {
      for (SessionRow row : repository.open(BATCH)) {
        if (settle(row)) {
          settled++;
        }
      }
    } catch (RuntimeException e) {
      log.warn("Reconciling sessions failed: {}", e.getMessage());
    }
    return settled;
  }

  private boolean settle(SessionRow row) {
    WorkflowStub stub = workflowClient.newUntypedWorkflowStub(row.workflowId());
    WorkflowExecutionStatus status;
    try {
      status = stub.describe().getWorkflowExecutionInfo().getStatus();
    } catch (WorkflowNotFoundException e) {
      if (row.createdAt().isBefore(Instant.now().minus(MISSING_GRACE))) {
        return apply(row, "FAILED", "workflow_missing", "its workflow does not exist in Temporal");
      }
      return false;
    }
    return switch (status) {
      case WORKFLOW_EXECUTION_STATUS_TERMINATED ->
          apply(row, "CANCELLED", "terminated", "terminated in Temporal: " + terminateReason(row));
      case WORKFLOW_EXECUTION_STATUS_TIMED_OUT ->
          apply(row, "FAILED", "timed_out", "the workflow timed out in Temporal");
      case WORKFLOW_EXECUTION_STATUS_CANCELED ->
          apply(row, "CANCELLED", "cancelled", "cancelled in Temporal");
      case WORKFLOW_EXECUTION_STATUS_FAILED ->
          apply(row, "FAILED", "failed", "the workflow failed; see it in the Temporal UI");
      case WORKFLOW_EXECUTION_STATUS_COMPLETED -> completed(row, stub);
      default -> false; // running: the workflow records its own transitions
    };
  }

  private boolean completed(SessionRow row, WorkflowStub stub) {
    SessionOutcome outcome = stub.getResult(SessionOutcome.class);
    return apply(
        row,
        outcome.status().name(),
        outcome.status().name().toLowerCase(),
        null,
        outcome.finalModelPath());
  }

  private String terminateReason(SessionRow row) {
    HistoryEvent last = workflowClient.fetchHistory(row.workflowId()).getLastEvent();
    if (last.getEventType() == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED) {
      String reason = last.getWorkflowExecutionTerminatedEventAttributes().getReason();
      return reason.isBlank() ? "no reason given" : reason;
    }
    return "no reason given";
  }

  private boolean apply(SessionRow row, String status, String cause, String message) {
    return apply(row, status, cause, message, null);
  }

  private boolean apply(
      SessionRow row, String status, String cause, String message, String finalModelPath) {
    boolean applied =
        repository.apply(
            new SessionTransitions.Transition(
                row.id(),
                UUID.randomUUID(),
                Integer.MAX_VALUE,
                status,
                row.status(),
                cause,
                row.attempt(),
                message,
                finalModelPath));
    if (applied) {
      log.info("Session {}: settled {} ({}) after its workflow ended", row.id(), status, cause);
    }
    return applied;
  }
}
