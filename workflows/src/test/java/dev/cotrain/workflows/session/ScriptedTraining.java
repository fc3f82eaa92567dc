package dev.cotrain.workflows.session;

import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.client.ActivityCompletionException;
import io.temporal.failure.ApplicationFailure;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A training activity that plays one scripted behaviour per attempt and reports its phases to the
 * workflow as the real one does.
 */
final class ScriptedTraining implements TrainingActivities {

  /** What one attempt does. */
  interface Behaviour {
    TrainingResult run(RunTrainingInput input, ActivityExecutionContext context);
  }

  final List<Integer> attempts = new CopyOnWriteArrayList<>();
  final List<List<Integer>> devices = new CopyOnWriteArrayList<>();
  final List<RunTrainingInput> inputs = new CopyOnWriteArrayList<>();
  private final ConcurrentLinkedQueue<Behaviour> script = new ConcurrentLinkedQueue<>();
  private final AtomicInteger cancels = new AtomicInteger();
  volatile int cancelled;

  void script(Behaviour... behaviours) {
    script.addAll(List.of(behaviours));
  }

  @Override
  public TrainingResult runTraining(RunTrainingInput input) {
    attempts.add(input.attempt());
    devices.add(input.devices());
    inputs.add(input);
    ActivityExecutionContext context = Activity.getExecutionContext();
    if (input.nodeRank() == 0) { // as the real one: node 0 reports for the session
      report(context, input, SessionStatus.STARTING);
      report(context, input, SessionStatus.RUNNING);
    }
    Behaviour next = script.poll();
    if (next == null) {
      throw new IllegalStateException("no behaviour scripted for attempt " + input.attempt());
    }
    try {
      return next.run(input, context);
    } catch (ActivityCompletionException e) {
      cancelled = cancels.incrementAndGet();
      throw e;
    }
  }

  private static void report(
      ActivityExecutionContext context, RunTrainingInput input, SessionStatus phase) {
    context
        .getWorkflowClient()
        .newWorkflowStub(TrainingSessionWorkflow.class, TaskQueues.workflowId(input.sessionId()))
        .trainerReport(
            new TrainingSessionWorkflow.TrainerReport(input.attempt(), phase, null, 200));
  }

  static Behaviour complete() {
    return (input, context) -> new TrainingResult("/s/final/" + input.sessionId(), 200, 1.0);
  }

  /** Completes as a trainer that reports what the registry stores. */
  static Behaviour completeForTheRegistry() {
    return (input, context) ->
        new TrainingResult(
            "/s/final/" + input.sessionId(), 200, 1.0, 1234L, "sha256:data", "/s/splits/v");
  }

  /** Heartbeats until the activity is cancelled, then throws what the heartbeat threw. */
  static Behaviour runUntilCancelled() {
    return (input, context) -> {
      while (true) {
        context.heartbeat(new TrainingProgress(1, 200, 5.0, -1, null));
        try {
          Thread.sleep(50);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException(e);
        }
      }
    };
  }

  static Behaviour fail(String type, String message, long checkpointStep) {
    return failAfter(0, type, message, checkpointStep);
  }

  /** Fails as {@link #fail} after {@code millis}, as a node that notices its trainer died late. */
  static Behaviour failAfter(long millis, String type, String message, long checkpointStep) {
    return (input, context) -> {
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      throw ApplicationFailure.newFailureWithCause(
          message,
          type,
          null,
          new TrainingProgress(checkpointStep + 3, 200, 2.0, checkpointStep, null));
    };
  }
}
