package dev.cotrain.workflows.session;

import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.UpdateMethod;
import io.temporal.workflow.UpdateValidatorMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * One training session, from config generation to the final model. Its id is {@link
 * TaskQueues#workflowId(String)} of the session id, so a session has at most one workflow. The
 * workflow owns the session's lifecycle (docs/lifecycle.md); the PostgreSQL row is its projection.
 */
@WorkflowInterface
public interface TrainingSessionWorkflow {

  /**
   * Generates the TOML config and runs the trainer, attempt after attempt, until it completes, is
   * cancelled, or fails: with a non-retryable error, or after {@link
   * TrainingSessionWorkflowImpl#MAX_ATTEMPTS_WITHOUT_PROGRESS} attempts in a row that wrote no new
   * checkpoint. Completes with the outcome (COMPLETED, or CANCELLED through the API); fails with
   * the trainer's own message.
   */
  @WorkflowMethod
  SessionOutcome run(TrainingSessionInput input);

  @QueryMethod(description = "The session's current status (docs/lifecycle.md)")
  SessionStatus status();

  @UpdateMethod(
      name = "pause",
      description =
          "Pause: the trainer finishes its step, writes a checkpoint and exits; PAUSED until resumed."
              + " Accepted while QUEUED, STARTING, RUNNING, PAUSING or PAUSED.")
  ControlResult pause(ControlRequest request);

  @UpdateValidatorMethod(updateName = "pause")
  void validatePause(ControlRequest request);

  @UpdateMethod(
      name = "resume",
      description =
          "Resume a PAUSED session: it is queued again and continues from its newest checkpoint.")
  ControlResult resume(ControlRequest request);

  @UpdateValidatorMethod(updateName = "resume")
  void validateResume(ControlRequest request);

  @UpdateMethod(
      name = "cancel",
      description =
          "Cancel: the trainer gets SIGTERM, then SIGKILL after a grace period; CANCELLED once no"
              + " process is left. Accepted in every state but COMPLETED, FAILED and CANCELLED.")
  ControlResult cancel(ControlRequest request);

  @UpdateValidatorMethod(updateName = "cancel")
  void validateCancel(ControlRequest request);

  @SignalMethod(
      description =
          "Sent by the training activity: its trainer was launched (STARTING) or started"
              + " training (RUNNING)")
  void trainerReport(TrainerReport report);

  @SignalMethod(
      description =
          "Sent by the allocator when it placed this waiting session (or its turn may have come):"
              + " ask for the placement now rather than at the next poll")
  void wake();

  @SignalMethod(
      description =
          "Sent by the allocator: give the devices to a waiting session of higher priority. A"
              + " running session checkpoints and stops as for a pause (PAUSING), then queues again"
              + " (QUEUED) and resumes from that checkpoint when it is placed; otherwise ignored.")
  void preempt(PreemptRequest request);

  /** Why the allocator preempts the session, for its event log. */
  record PreemptRequest(String reason) {}

  /** {@code requestedBy} says who asked, for the session's event log (e.g. {@code api}). */
  record ControlRequest(String requestedBy) {}

  /** The state the session is now in, or heading to. */
  record ControlResult(SessionStatus status) {}

  /**
   * {@code phase} is STARTING or RUNNING; {@code resumedFromStep} is the checkpoint step the
   * trainer resumed from (null for a fresh start), set with RUNNING.
   */
  record TrainerReport(int attempt, SessionStatus phase, Long resumedFromStep, long totalSteps) {}
}
