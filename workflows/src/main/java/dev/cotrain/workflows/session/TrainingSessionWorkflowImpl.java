package dev.cotrain.workflows.session;

import dev.cotrain.workflows.registry.EvaluationActivities;
import dev.cotrain.workflows.registry.EvaluationActivities.EvaluateInput;
import dev.cotrain.workflows.registry.EvaluationActivities.EvaluationResult;
import dev.cotrain.workflows.registry.RegistryActivities;
import dev.cotrain.workflows.registry.RegistryActivities.EvaluationFailed;
import dev.cotrain.workflows.registry.RegistryActivities.ModelVersion;
import dev.cotrain.workflows.registry.RegistryActivities.RecordEvaluation;
import dev.cotrain.workflows.registry.RegistryActivities.RegisterVersion;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.PlacementActivities.Node;
import dev.cotrain.workflows.session.PlacementActivities.PlaceRequest;
import dev.cotrain.workflows.session.PlacementActivities.Placement;
import dev.cotrain.workflows.session.PlacementActivities.ReleaseRequest;
import dev.cotrain.workflows.session.SessionActivities.RegisterSession;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.TrainingActivities.RunTrainingInput;
import dev.cotrain.workflows.session.TrainingActivities.TrainingProgress;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import io.temporal.activity.ActivityCancellationType;
import io.temporal.activity.ActivityOptions;
import io.temporal.api.enums.v1.TimeoutType;
import io.temporal.common.RetryOptions;
import io.temporal.common.converter.Values;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.failure.TimeoutFailure;
import io.temporal.workflow.Async;
import io.temporal.workflow.CancellationScope;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import io.temporal.workflow.WorkflowInit;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Set;

/**
 * The session's state machine (docs/lifecycle.md). The main thread runs attempts; update and signal
 * handlers only change the in-memory state and wake it; every transition is queued and stored in
 * order by a recorder thread, in a scope that a cancellation from Temporal does not reach, so the
 * row ends truthful however the workflow ends.
 */
public class TrainingSessionWorkflowImpl implements TrainingSessionWorkflow {

  /** Attempts in a row that may fail without writing a new checkpoint before the session fails. */
  public static final int MAX_ATTEMPTS_WITHOUT_PROGRESS = 5;

  static final Duration FIRST_RETRY_DELAY = Duration.ofSeconds(1);

  /** A session waiting for capacity asks again after 1 s, then twice as long, up to this. */
  static final Duration MAX_PLACEMENT_WAIT = Duration.ofSeconds(15);

  /** A placed attempt that no worker of its host starts within this is placed again. */
  static final Duration START_TIMEOUT = Duration.ofMinutes(1);

  static final Duration MAX_RETRY_DELAY = Duration.ofMinutes(1);

  /** Messages kept in workflow history and the session's events are cut to this many chars. */
  static final int MAX_MESSAGE_CHARS = 16 * 1024;

  private static final Set<String> USER_ERRORS =
      Set.of(FailureTypes.CONFIG_ERROR, FailureTypes.DATA_ERROR, FailureTypes.TRAINER_FAILED);

  /** Bookkeeping must not be lost to a database outage: retried until stored. */
  private static final RetryOptions UNTIL_STORED =
      RetryOptions.newBuilder().setMaximumInterval(Duration.ofSeconds(10)).build();

  private final ConfigActivities config =
      Workflow.newActivityStub(
          ConfigActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              .setSummary("Write the trainer's TOML config")
              .setRetryOptions(
                  RetryOptions.newBuilder()
                      .setMaximumAttempts(5)
                      .setDoNotRetry(FailureTypes.CONFIG_ERROR)
                      .build())
              .build());

  private final PlacementActivities placements =
      Workflow.newActivityStub(
          PlacementActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              .setRetryOptions(UNTIL_STORED)
              .build());

  /** The change that added registration and evaluation after training (docs/models.md). */
  static final String REGISTRY_CHANGE = "model-registry";

  /** Tries of the evaluation after training; each runs where the session trained. */
  static final int EVALUATION_ATTEMPTS = 3;

  private final RegistryActivities registry =
      Workflow.newActivityStub(
          RegistryActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofMinutes(5))
              .setSummary("Register the trained model")
              .setRetryOptions(UNTIL_STORED)
              .build());

  private final SessionActivities sessions =
      Workflow.newActivityStub(
          SessionActivities.class,
          ActivityOptions.newBuilder()
              .setTaskQueue(TaskQueues.CONTROL)
              .setStartToCloseTimeout(Duration.ofSeconds(30))
              .setRetryOptions(UNTIL_STORED)
              .build());

  private final String sessionId;
  private SessionStatus status = SessionStatus.QUEUED;
  private int attempt;
  private boolean pauseRequested;
  private boolean cancelRequested;
  private boolean preemptRequested;
  private boolean woken;
  private long newestCheckpoint = -1;
  private Long resumedFrom;
  private long totalSteps;

  /** Node 0's training activity while an attempt runs. */
  private Promise<TrainingResult> running;

  /** The first node of the running attempt that failed, once one has. */
  private ActivityFailure firstFailed;

  private String placedOn;

  /** Transitions not yet stored, oldest first; the recorder thread drains it. */
  private final Deque<StatusChange> unrecorded = new ArrayDeque<>();

  private int seq;
  private CancellationScope root;

  /**
   * Knows its session before any handler runs: a cancel that arrives in the first workflow task
   * (right after the create) runs before {@link #run}, and its transition must name the session.
   */
  @WorkflowInit
  public TrainingSessionWorkflowImpl(TrainingSessionInput input) {
    sessionId = input.sessionId();
  }

  @Override
  public SessionOutcome run(TrainingSessionInput input) {
    root = CancellationScope.current();
    SessionSpec spec = input.spec();
    Workflow.upsertTypedSearchAttributes(
        SessionSearchAttributes.STATUS.valueSet(status.name()),
        SessionSearchAttributes.MODEL.valueSet(spec.model().type() + "-" + spec.model().size()),
        SessionSearchAttributes.STRATEGY.valueSet(spec.distributed().strategy()));
    describe();
    RegisterSession registration =
        new RegisterSession(sessionId, spec.name(), spec.description(), input.request());
    Workflow.newDetachedCancellationScope(
            () -> Async.procedure(this::recordTransitions, registration))
        .run();
    // The session runs in a scope that a cancellation from Temporal does not reach: it notices
    // such a cancellation itself and stops the trainer as for any cancel, so that the row ends
    // truthful and CANCELLED means that no process is left.
    SessionOutcome[] outcome = new SessionOutcome[1];
    Workflow.newDetachedCancellationScope(() -> outcome[0] = runSession(input)).run();
    return outcome[0];
  }

  private SessionOutcome runSession(TrainingSessionInput input) {
    GeneratedConfig generated;
    try {
      generated = config.generateConfig(new GenerateConfigInput(sessionId, input.spec()));
    } catch (ActivityFailure failure) {
      throw fail(rootMessage(failure));
    }
    return train(input, generated);
  }

  private SessionOutcome train(TrainingSessionInput input, GeneratedConfig generated) {
    int failuresWithoutProgress = 0;
    while (true) {
      noticeCancelInTemporal();
      if (cancelRequested) {
        return cancelled();
      }
      if (preemptRequested) {
        preemptRequested = false;
        if (!pauseRequested) {
          transition(
              SessionStatus.QUEUED,
              "requeued",
              "preempted: resumes from its checkpoint when it is placed again");
        }
      }
      if (pauseRequested) {
        transition(SessionStatus.PAUSED, "paused", null);
        Workflow.await(() -> !pauseRequested || cancelRequested || root.isCancelRequested());
        continue;
      }
      Placement placement = place(input);
      if (placement == null) {
        continue; // a pause or a cancel came while waiting for capacity
      }
      Attempt result = null;
      ModelVersion version = null;
      try {
        result = runAttempt(input, generated, placement);
        // Still holding the devices it trained on: the evaluation runs there.
        // A load-generating session has no model to register.
        if (result.completed() != null
            && input.modelName() != null
            && input.spec().load() == null
            && Workflow.getVersion(REGISTRY_CHANGE, Workflow.DEFAULT_VERSION, 1) == 1) {
          version = registerAndEvaluate(input, generated, placement, result.completed());
        }
      } finally {
        placements.release(
            new ReleaseRequest(
                sessionId,
                input.heartbeatTimeoutOrDefault(),
                result == null ? null : result.lostHost()));
      }
      if (result.completed() != null) {
        TrainingResult done = result.completed();
        String model = version == null ? done.finalModelPath() : version.path();
        transition(SessionStatus.COMPLETED, "completed", null, model);
        awaitRecorded();
        return new SessionOutcome(sessionId, status, model, done.steps(), done.finalLoss());
      }
      if (result.failure() == null) {
        continue; // stopped for a pause or a cancel: the top of the loop takes it from here
      }
      ActivityFailure failure = result.failure();
      String message = rootMessage(failure);
      if (!retryable(failure)) {
        throw fail(message);
      }
      long reached = result.newestCheckpoint();
      if (reached > newestCheckpoint) {
        newestCheckpoint = reached;
        failuresWithoutProgress = 0;
      }
      failuresWithoutProgress++;
      if (failuresWithoutProgress >= MAX_ATTEMPTS_WITHOUT_PROGRESS) {
        throw fail(
            message
                + " (gave up after "
                + failuresWithoutProgress
                + " attempts in a row without a new checkpoint)");
      }
      transition(SessionStatus.QUEUED, "retry", "attempt " + attempt + " failed: " + message);
      Duration delay =
          isType(failure, FailureTypes.TRAINER_PREEMPTED)
              ? Duration.ZERO
              : retryDelay(failuresWithoutProgress);
      Workflow.await(delay, () -> pauseRequested || cancelRequested || root.isCancelRequested());
    }
  }

  /**
   * Makes the export the next version of the session's model, then evaluates it on the session's
   * held-out split on node 0's host and devices (EVALUATING), tried {@link #EVALUATION_ATTEMPTS}
   * times. A failed evaluation is stored as such and never loses the model.
   */
  private ModelVersion registerAndEvaluate(
      TrainingSessionInput input,
      GeneratedConfig generated,
      Placement placement,
      TrainingResult done) {
    ModelVersion version =
        registry.registerVersion(
            new RegisterVersion(
                sessionId,
                input.modelName(),
                done.finalModelPath(),
                generated.configPath(),
                done.parameters(),
                done.dataFingerprint(),
                done.validationPath()));
    transition(
        SessionStatus.EVALUATING,
        "evaluating",
        "version " + version.version() + " of model " + version.model());
    if (done.validationPath() == null) {
      registry.evaluationFailed(
          new EvaluationFailed(
              version.model(),
              version.version(),
              RegistryActivities.VALIDATION,
              "the trainer reported no held-out split to evaluate on"));
      return version;
    }
    Node node = placement.nodes().get(0);
    EvaluationActivities evaluation =
        Workflow.newActivityStub(
            EvaluationActivities.class,
            ActivityOptions.newBuilder()
                .setTaskQueue(node.taskQueue())
                .setSummary("Evaluate version " + version.version() + " on " + node.hostId())
                .setScheduleToStartTimeout(START_TIMEOUT)
                .setStartToCloseTimeout(Duration.ofHours(6))
                .setHeartbeatTimeout(input.heartbeatTimeoutOrDefault())
                .setRetryOptions(
                    RetryOptions.newBuilder()
                        .setMaximumAttempts(EVALUATION_ATTEMPTS)
                        .setDoNotRetry(FailureTypes.EVALUATION_FAILED)
                        .build())
                .build());
    try {
      EvaluationResult result =
          evaluation.evaluate(
              new EvaluateInput(
                  version.path(),
                  done.validationPath(),
                  null,
                  RegistryActivities.VALIDATION,
                  node.devices()));
      registry.recordEvaluation(
          new RecordEvaluation(
              version.model(),
              version.version(),
              RegistryActivities.VALIDATION,
              result.loss(),
              result.perplexity(),
              result.accuracy()));
    } catch (ActivityFailure failure) {
      registry.evaluationFailed(
          new EvaluationFailed(
              version.model(),
              version.version(),
              RegistryActivities.VALIDATION,
              rootMessage(failure)));
    }
    return version;
  }

  /**
   * The outcome of one attempt: {@code completed} or {@code failure} is set, or neither when it was
   * stopped; {@code newestCheckpoint} is the newest checkpoint step any failed node reported;
   * {@code lostHost} the host whose node stopped heartbeating, if that is how it failed.
   */
  private record Attempt(
      TrainingResult completed, ActivityFailure failure, long newestCheckpoint, String lostHost) {}

  /**
   * The next attempt's placement, asked for until there is capacity (the session waits QUEUED,
   * saying why); null when a pause or a cancel comes first. Numbers the attempt.
   */
  private Placement place(TrainingSessionInput input) {
    String waitingFor = null;
    Duration wait = FIRST_RETRY_DELAY;
    while (!(pauseRequested || cancelRequested || root.isCancelRequested())) {
      woken = false;
      Placement placement =
          placements.place(
              new PlaceRequest(
                  sessionId,
                  attempt + 1,
                  input.spec().distributed().gpusPerNode(),
                  input.heartbeatTimeoutOrDefault(),
                  input.spec().distributed().nodes()));
      if (placement.placed()) {
        attempt++;
        return placement;
      }
      if (!placement.waiting().equals(waitingFor)) {
        waitingFor = placement.waiting();
        transition(SessionStatus.QUEUED, "waiting", waitingFor);
      }
      Workflow.await(
          wait, () -> woken || pauseRequested || cancelRequested || root.isCancelRequested());
      wait =
          wait.multipliedBy(2).compareTo(MAX_PLACEMENT_WAIT) > 0
              ? MAX_PLACEMENT_WAIT
              : wait.multipliedBy(2);
    }
    return null;
  }

  /**
   * Runs one training activity per node, each on its host's task queue, and waits for them all.
   * When one node fails the others are stopped (their trainers would otherwise wait for the lost
   * peer), and the attempt fails with the first failure; the next attempt restarts every node from
   * the newest checkpoint.
   */
  private Attempt runAttempt(
      TrainingSessionInput input, GeneratedConfig generated, Placement placement) {
    List<Node> nodes = placement.nodes();
    placedOn = describe(placement);
    firstFailed = null;
    List<Promise<TrainingResult>> promises = new ArrayList<>();
    CancellationScope scope =
        Workflow.newCancellationScope(
            () -> {
              for (int rank = 0; rank < nodes.size(); rank++) {
                Node node = nodes.get(rank);
                TrainingActivities training =
                    Workflow.newActivityStub(
                        TrainingActivities.class,
                        trainingOptions(input, node, nodes.size() == 1 ? null : rank));
                RunTrainingInput run =
                    new RunTrainingInput(
                        sessionId,
                        attempt,
                        generated.configPath(),
                        generated.checkpointDir(),
                        node.devices(),
                        rank,
                        nodes.size(),
                        placement.masterAddr(),
                        placement.masterPort());
                promises.add(Async.function(training::runTraining, run));
              }
            });
    scope.run();
    running = promises.get(0);
    Workflow.await(
        () ->
            promises.stream().allMatch(Promise::isCompleted)
                || firstFailure(promises) != null
                || pauseRequested
                || preemptRequested
                || cancelRequested
                || root.isCancelRequested());
    noticeCancelInTemporal();
    ActivityFailure failed = firstFailure(promises);
    boolean stopping = failed == null && !promises.stream().allMatch(Promise::isCompleted);
    if (stopping) {
      scope.cancel("session " + status.name().toLowerCase());
    } else if (failed != null && !promises.stream().allMatch(Promise::isCompleted)) {
      scope.cancel("another node of the session failed");
    }
    try {
      // With WAIT_CANCELLATION_COMPLETED each returns once its node's trainer is gone.
      long newest = -1;
      for (Promise<TrainingResult> node : promises) {
        try {
          node.get();
        } catch (ActivityFailure failure) {
          newest = Math.max(newest, checkpointStep(failure));
        }
      }
      if (stopping) {
        return new Attempt(null, null, -1, null);
      }
      failed = failed == null ? null : rootCause(failed, promises);
      return failed == null
          ? new Attempt(promises.get(0).get(), null, -1, null)
          : new Attempt(null, failed, newest, lostHost(failed, promises, nodes));
    } finally {
      running = null;
    }
  }

  private ActivityOptions trainingOptions(TrainingSessionInput input, Node node, Integer rank) {
    return ActivityOptions.newBuilder()
        .setTaskQueue(node.taskQueue())
        .setSummary(
            "Train, attempt "
                + attempt
                + (rank == null ? "" : ", node " + rank)
                + " on "
                + node.hostId())
        // Its host was alive when placed; if it died since, place the attempt again.
        .setScheduleToStartTimeout(START_TIMEOUT)
        // Bounded by heartbeats, not by a duration: a run may last weeks.
        .setStartToCloseTimeout(Duration.ofDays(365))
        .setHeartbeatTimeout(input.heartbeatTimeoutOrDefault())
        .setCancellationType(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        // This workflow retries, because only it can tell progress from a crash loop.
        .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build())
        .build();
  }

  /** The host of the node whose failure is a lost heartbeat (its worker died), else null. */
  private static String lostHost(
      ActivityFailure failed, List<Promise<TrainingResult>> promises, List<Node> nodes) {
    if (!(failed.getCause() instanceof TimeoutFailure timeout)
        || timeout.getTimeoutType() != TimeoutType.TIMEOUT_TYPE_HEARTBEAT) {
      return null;
    }
    for (int rank = 0; rank < promises.size(); rank++) {
      if (promises.get(rank).getFailure() == failed) {
        return nodes.get(rank).hostId();
      }
    }
    return null;
  }

  /**
   * The failure that tells why a gang stopped: the first node's, unless it only lost a peer and
   * another node failed by itself (for example its rank was killed).
   */
  private static ActivityFailure rootCause(
      ActivityFailure first, List<Promise<TrainingResult>> promises) {
    if (!isType(first, FailureTypes.PEER_LOST)) {
      return first;
    }
    for (Promise<TrainingResult> p : promises) {
      if (p.getFailure() instanceof ActivityFailure failure
          && !(failure.getCause() instanceof CanceledFailure)
          && !isType(failure, FailureTypes.PEER_LOST)) {
        return failure;
      }
    }
    return first;
  }

  /** The failure of the first node that failed (in completion order), if any. */
  private ActivityFailure firstFailure(List<Promise<TrainingResult>> promises) {
    if (firstFailed == null) {
      for (Promise<TrainingResult> p : promises) {
        if (p.isCompleted() && p.getFailure() instanceof ActivityFailure failure) {
          firstFailed = failure;
          break;
        }
      }
    }
    return firstFailed;
  }

  @Override
  public SessionStatus status() {
    return status;
  }

  @Override
  public ControlResult pause(ControlRequest request) {
    if (!pauseRequested) {
      pauseRequested = true;
      transition(SessionStatus.PAUSING, "pause_requested", requester(request));
    }
    return new ControlResult(status);
  }

  @Override
  public void validatePause(ControlRequest request) {
    if (status.isFinal() || cancelRequested || status == SessionStatus.EVALUATING) {
      throw refused("pause", "it is " + status);
    }
  }

  @Override
  public ControlResult resume(ControlRequest request) {
    pauseRequested = false;
    transition(SessionStatus.QUEUED, "resume_requested", requester(request));
    return new ControlResult(status);
  }

  @Override
  public void validateResume(ControlRequest request) {
    if (status != SessionStatus.PAUSED) {
      throw refused(
          "resume",
          status == SessionStatus.PAUSING
              ? "it is PAUSING; resume it once it is PAUSED"
              : "it is " + status + ", not PAUSED");
    }
  }

  @Override
  public ControlResult cancel(ControlRequest request) {
    if (!cancelRequested) {
      cancelRequested = true;
      transition(SessionStatus.CANCELLING, "cancel_requested", requester(request));
    }
    return new ControlResult(status);
  }

  @Override
  public void validateCancel(ControlRequest request) {
    if (status.isFinal()) {
      throw refused("cancel", "it is already " + status);
    }
    if (status == SessionStatus.EVALUATING) {
      throw refused("cancel", "it is EVALUATING: its model is saved, and COMPLETED follows");
    }
  }

  @Override
  public void wake() {
    woken = true;
  }

  @Override
  public void preempt(PreemptRequest request) {
    if (running == null || pauseRequested || cancelRequested || preemptRequested) {
      return; // not training (the allocator asks again while it still holds the devices)
    }
    preemptRequested = true;
    transition(SessionStatus.PAUSING, "preempted", request == null ? null : request.reason());
  }

  @Override
  public void trainerReport(TrainerReport report) {
    if (report.attempt() != attempt || running == null) {
      return; // a late report of an attempt that has ended
    }
    if (report.totalSteps() > 0) {
      totalSteps = report.totalSteps();
    }
    if (report.phase() == SessionStatus.STARTING && status == SessionStatus.QUEUED) {
      transition(SessionStatus.STARTING, "trainer_launched", "attempt " + attempt + " " + placedOn);
    } else if (report.phase() == SessionStatus.RUNNING
        && (status == SessionStatus.QUEUED || status == SessionStatus.STARTING)) {
      resumedFrom = report.resumedFromStep();
      transition(
          SessionStatus.RUNNING,
          "trainer_started",
          resumedFrom == null ? "from the start" : "resumed from step " + resumedFrom);
    }
  }

  /** A cancellation from the Temporal UI or CLI is a cancel like any other. */
  private void noticeCancelInTemporal() {
    if (root.isCancelRequested() && !cancelRequested) {
      cancelRequested = true;
      transition(SessionStatus.CANCELLING, "cancel_requested", "cancelled in Temporal");
    }
  }

  private SessionOutcome cancelled() {
    noticeCancelInTemporal();
    if (status != SessionStatus.CANCELLING) {
      transition(SessionStatus.CANCELLING, "cancel_requested", null);
    }
    transition(SessionStatus.CANCELLED, "cancelled", null);
    awaitRecorded();
    if (root.isCancelRequested()) {
      // Lets Temporal show the workflow as Canceled, as whoever cancelled it expects.
      throw new CanceledFailure("session cancelled");
    }
    return new SessionOutcome(sessionId, status, null, 0, 0.0);
  }

  private ApplicationFailure fail(String message) {
    transition(SessionStatus.FAILED, "failed", message);
    awaitRecorded();
    return ApplicationFailure.newNonRetryableFailure(bounded(message), FailureTypes.SESSION_FAILED);
  }

  private void transition(SessionStatus next, String cause, String message) {
    transition(next, cause, message, null);
  }

  private void transition(SessionStatus next, String cause, String message, String finalModel) {
    SessionStatus previous = status;
    status = next;
    unrecorded.add(
        new StatusChange(
            sessionId,
            Workflow.randomUUID().toString(),
            ++seq,
            next,
            previous,
            cause,
            attempt,
            bounded(message),
            finalModel));
    if (previous != next) {
      Workflow.upsertTypedSearchAttributes(SessionSearchAttributes.STATUS.valueSet(next.name()));
    }
    describe();
  }

  /**
   * Runs for the life of the workflow, in a detached scope: stores the row, then every transition
   * in order.
   */
  private void recordTransitions(RegisterSession registration) {
    sessions.registerSession(registration);
    while (true) {
      Workflow.await(() -> !unrecorded.isEmpty());
      sessions.recordStatus(unrecorded.peekFirst());
      unrecorded.removeFirst();
    }
  }

  private void awaitRecorded() {
    Workflow.await(unrecorded::isEmpty);
  }

  /** What the Temporal UI shows as the workflow's current details. */
  private void describe() {
    StringBuilder details = new StringBuilder("**").append(status).append("**");
    if (attempt > 0) {
      details.append(" · attempt ").append(attempt);
    }
    if (totalSteps > 0) {
      details.append(" · ").append(totalSteps).append(" steps");
    }
    if (resumedFrom != null) {
      details.append(" · resumed from step ").append(resumedFrom);
    }
    if (newestCheckpoint >= 0) {
      details.append(" · newest checkpoint known: step ").append(newestCheckpoint);
    }
    details
        .append(
            "\n\nLive step and loss: the training activity's heartbeat details (Pending Activities),"
                + " or GET /api/sessions/")
        .append(sessionId);
    Workflow.setCurrentDetails(details.toString());
  }

  /**
   * {@code on gpu-a, devices 0,1}, or for several nodes {@code on 2 nodes: gpu-a, devices 0; ...}.
   */
  private static String describe(Placement placement) {
    List<Node> nodes = placement.nodes();
    if (nodes.size() == 1) {
      return "on " + describe(nodes.get(0));
    }
    return "on "
        + nodes.size()
        + " nodes: "
        + String.join("; ", nodes.stream().map(TrainingSessionWorkflowImpl::describe).toList());
  }

  private static String describe(Node node) {
    return node.devices().isEmpty()
        ? node.hostId() + ", a CPU slot"
        : node.hostId()
            + ", devices "
            + String.join(",", node.devices().stream().map(String::valueOf).toList());
  }

  private static String requester(ControlRequest request) {
    return request == null || request.requestedBy() == null
        ? null
        : "requested by " + request.requestedBy();
  }

  private static IllegalStateException refused(String action, String why) {
    return new IllegalStateException("cannot " + action + " the session: " + why);
  }

  static Duration retryDelay(int failuresInARow) {
    Duration delay = FIRST_RETRY_DELAY.multipliedBy(1L << Math.min(failuresInARow - 1, 16));
    return delay.compareTo(MAX_RETRY_DELAY) > 0 ? MAX_RETRY_DELAY : delay;
  }

  private static boolean retryable(ActivityFailure failure) {
    if (failure.getCause() instanceof ApplicationFailure app) {
      return !app.isNonRetryable() && !USER_ERRORS.contains(app.getType());
    }
    return true; // a timeout (lost worker) or a cancellation of the activity from outside
  }

  private static boolean isType(ActivityFailure failure, String type) {
    return failure.getCause() instanceof ApplicationFailure app && type.equals(app.getType());
  }

  /** The newest checkpoint step the failed attempt reported, from its failure or heartbeats. */
  static long checkpointStep(ActivityFailure failure) {
    Values details = null;
    if (failure.getCause() instanceof ApplicationFailure app) {
      details = app.getDetails();
    } else if (failure.getCause() instanceof TimeoutFailure timeout) {
      details = timeout.getLastHeartbeatDetails();
    }
    if (details == null || details.getSize() == 0) {
      return -1;
    }
    try {
      TrainingProgress progress = details.get(TrainingProgress.class);
      return progress == null ? -1 : progress.checkpointStep();
    } catch (RuntimeException e) {
      return -1; // details of another shape: no progress known
    }
  }

  /** The innermost failure's own message: the trainer's words, not Temporal's wrapping. */
  static String rootMessage(TemporalFailure failure) {
    Throwable cause = failure;
    while (cause.getCause() != null) {
      cause = cause.getCause();
    }
    String message =
        cause instanceof TemporalFailure temporal ? temporal.getOriginalMessage() : null;
    if (cause instanceof TimeoutFailure timeout) {
      message =
          timeout.getTimeoutType() == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
              ? "the trainer's worker stopped heartbeating (lost, killed or partitioned)"
              : "the training activity timed out (" + timeout.getTimeoutType() + ")";
    }
    return message == null || message.isBlank() ? failure.getMessage() : message;
  }

  static String bounded(String message) {
    if (message == null || message.length() <= MAX_MESSAGE_CHARS) {
      return message;
    }
    return message.substring(0, MAX_MESSAGE_CHARS) + " … (cut)";
  }
}
