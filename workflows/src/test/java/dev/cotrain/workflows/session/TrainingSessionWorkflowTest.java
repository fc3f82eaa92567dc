package dev.cotrain.workflows.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import dev.cotrain.workflows.registry.EvaluationActivities;
import dev.cotrain.workflows.registry.RegistryActivities;
import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlRequest;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlResult;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.api.enums.v1.WorkflowIdConflictPolicy;
import io.temporal.client.UpdateOptions;
import io.temporal.client.WithStartWorkflowOperation;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.client.WorkflowUpdateHandle;
import io.temporal.client.WorkflowUpdateStage;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.testing.TestEnvironmentOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.worker.Worker;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TrainingSessionWorkflowTest {

  static final String ID = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";

  private TestWorkflowEnvironment env;
  private ConfigActivities config;
  private RecordingSessions sessions;
  private ScriptedTraining training;
  private ScriptedTraining training2;
  private FakePlacements placements;
  private RecordingRegistry registry;
  private ScriptedEvaluations evaluations;

  @BeforeEach
  void setUp() {
    env = newEnvironment();
    config = mock(ConfigActivities.class, withSettings().withoutAnnotations());
    sessions = new RecordingSessions();
    training = new ScriptedTraining();
    training2 = new ScriptedTraining();
    placements = new FakePlacements(1);
    registry = new RecordingRegistry();
    evaluations = new ScriptedEvaluations();
    Worker control = env.newWorker(TaskQueues.CONTROL);
    control.registerWorkflowImplementationTypes(TrainingSessionWorkflowImpl.class);
    control.registerActivitiesImplementations(config, sessions, placements, registry);
    env.newWorker(TaskQueues.trainingQueue(FakePlacements.HOST))
        .registerActivitiesImplementations(training, evaluations);
    env.newWorker(TaskQueues.trainingQueue(FakePlacements.HOST2))
        .registerActivitiesImplementations(training2);
    env.start();
    when(config.generateConfig(any()))
        .thenReturn(new GeneratedConfig("/s/configs/generated/" + ID + ".toml", "/s/ckpt/" + ID));
  }

  /** A test server that knows the session's search attributes, as the worker registers them. */
  static TestWorkflowEnvironment newEnvironment() {
    TestEnvironmentOptions.Builder options = TestEnvironmentOptions.newBuilder();
    SessionSearchAttributes.ALL.forEach(
        key ->
            options.registerSearchAttribute(
                key.getName(), IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD));
    return TestWorkflowEnvironment.newInstance(options.build());
  }

  @AfterEach
  void tearDown() {
    env.close();
  }

  @Test
  void completesAndRecordsEveryTransitionInOrder() {
    training.script(ScriptedTraining.complete());

    SessionOutcome outcome = workflow().run(input());

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(outcome.finalModelPath()).isEqualTo("/s/final/" + ID);
    assertThat(sessions.registered).hasSize(1);
    // It waited for capacity once, then ran where it was placed and gave the place back.
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.COMPLETED);
    assertThat(sessions.changes.get(0).cause()).isEqualTo("waiting");
    assertThat(sessions.changes.get(0).message())
        .isEqualTo("waiting for 1 free devices on one host");
    assertThat(sessions.changes.get(1).message()).isEqualTo("attempt 1 on test-host, devices 0");
    StatusChange completed = sessions.changes.get(3);
    assertThat(completed.finalModelPath()).isEqualTo("/s/final/" + ID);
    assertThat(completed.previous()).isEqualTo(SessionStatus.RUNNING);
    assertThat(sessions.changes).extracting(StatusChange::seq).containsExactly(1, 2, 3, 4);
    assertThat(placements.asked).extracting(p -> p.attempt()).containsExactly(1, 1);
    assertThat(placements.asked.get(0).gpusPerNode()).isEqualTo(1);
    assertThat(placements.released).containsExactly(ID);
    assertThat(training.devices).containsExactly(List.of(0));
  }

  @Test
  void aCompletedSessionRegistersItsModelThenEvaluatesItWhereItTrained() {
    training.script(ScriptedTraining.completeForTheRegistry());
    evaluations.script(ScriptedEvaluations.Result.CRASH, ScriptedEvaluations.Result.OK);

    SessionOutcome outcome = workflow().run(withModel("tiny"));

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(outcome.finalModelPath()).isEqualTo("/s/models/final/tiny/v1");
    assertThat(registry.registered).hasSize(1);
    RegistryActivities.RegisterVersion registered = registry.registered.get(0);
    assertThat(registered.model()).isEqualTo("tiny");
    assertThat(registered.exportPath()).isEqualTo("/s/final/" + ID);
    assertThat(registered.parameters()).isEqualTo(1234L);
    assertThat(registered.dataFingerprint()).isEqualTo("sha256:data");
    // Evaluated on the version's directory and the session's split, on its devices, after one
    // crashed try; its place was given back only after the evaluation.
    assertThat(evaluations.inputs).hasSize(2);
    assertThat(evaluations.inputs.get(1).modelPath()).isEqualTo("/s/models/final/tiny/v1");
    assertThat(evaluations.inputs.get(1).data()).isEqualTo("/s/splits/v");
    assertThat(evaluations.inputs.get(1).devices()).containsExactly(0);
    assertThat(registry.evaluations).hasSize(1);
    assertThat(registry.evaluations.get(0).loss()).isEqualTo(2.5);
    assertThat(registry.failed).isEmpty();
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.EVALUATING,
            SessionStatus.COMPLETED);
    assertThat(placements.released).containsExactly(ID);
  }

  @Test
  void anEvaluationThatFailsForGoodKeepsTheModelAndTheSessionCompletes() {
    training.script(ScriptedTraining.completeForTheRegistry());
    evaluations.script(ScriptedEvaluations.Result.REFUSED);

    SessionOutcome outcome = workflow().run(withModel("tiny"));

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(outcome.finalModelPath()).isEqualTo("/s/models/final/tiny/v1");
    assertThat(evaluations.inputs).hasSize(1); // refused: not retried
    assertThat(registry.failed).hasSize(1);
    assertThat(registry.failed.get(0).message()).contains("unusable split");
  }

  @Test
  void aSessionWithoutAModelNameCompletesWithTheTrainersExportAsBefore() {
    training.script(ScriptedTraining.completeForTheRegistry());

    SessionOutcome outcome = workflow().run(input());

    assertThat(outcome.finalModelPath()).isEqualTo("/s/final/" + ID);
    assertThat(registry.registered).isEmpty();
    assertThat(evaluations.inputs).isEmpty();
  }

  /**
   * A cancel that reaches the workflow in its first task, before {@code run} (here: update with
   * start; in production: a cancel right after the create), is stored for this session.
   */
  @Test
  void aCancelThatArrivesWithTheStartIsStoredForTheSession() {
    TrainingSessionWorkflow workflow =
        env.getWorkflowClient()
            .newWorkflowStub(
                TrainingSessionWorkflow.class,
                WorkflowOptions.newBuilder()
                    .setWorkflowId(TaskQueues.workflowId(ID))
                    .setTaskQueue(TaskQueues.CONTROL)
                    .setWorkflowIdConflictPolicy(
                        WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL)
                    .build());

    WorkflowUpdateHandle<ControlResult> cancel =
        WorkflowClient.startUpdateWithStart(
            workflow::cancel,
            new ControlRequest("test"),
            UpdateOptions.<ControlResult>newBuilder()
                .setWaitForStage(WorkflowUpdateStage.COMPLETED)
                .build(),
            new WithStartWorkflowOperation<>(workflow::run, input()));

    assertThat(cancel.getResultAsync().join().status()).isEqualTo(SessionStatus.CANCELLING);
    assertThat(WorkflowStub.fromTyped(workflow).getResult(SessionOutcome.class).status())
        .isEqualTo(SessionStatus.CANCELLED);
    assertThat(sessions.changes).isNotEmpty();
    assertThat(sessions.changes).allSatisfy(c -> assertThat(c.sessionId()).isEqualTo(ID));
    assertThat(sessions.statuses()).endsWith(SessionStatus.CANCELLED);
  }

  @Test
  void pauseStopsTheAttemptAndResumeStartsANewOne() {
    training.script(ScriptedTraining.runUntilCancelled(), ScriptedTraining.complete());
    TrainingSessionWorkflow workflow = workflow();
    CompletableFuture<SessionOutcome> result = WorkflowClient.execute(workflow::run, input());
    awaitStatus(workflow, SessionStatus.RUNNING);

    assertThat(workflow.pause(new ControlRequest("test")).status())
        .isEqualTo(SessionStatus.PAUSING);
    awaitStatus(workflow, SessionStatus.PAUSED);
    assertThat(training.cancelled).isEqualTo(1);
    // Pausing a paused session changes nothing; a second resume would be refused.
    assertThat(workflow.pause(new ControlRequest("test")).status()).isEqualTo(SessionStatus.PAUSED);
    assertThat(workflow.resume(new ControlRequest("test")).status())
        .isEqualTo(SessionStatus.QUEUED);

    assertThat(result.join().status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.PAUSING,
            SessionStatus.PAUSED,
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.COMPLETED);
    assertThat(sessions.changes.get(3).message()).isEqualTo("requested by test");
    // The paused session held nothing: its place was given back when the trainer stopped.
    assertThat(placements.released).hasSize(2);
    assertThat(training.attempts).containsExactly(1, 2);
  }

  @Test
  void aPreemptedSessionCheckpointsQueuesAgainAndResumesByItself() {
    training.script(ScriptedTraining.runUntilCancelled(), ScriptedTraining.complete());
    TrainingSessionWorkflow workflow = workflow();
    CompletableFuture<SessionOutcome> result = WorkflowClient.execute(workflow::run, input());
    awaitStatus(workflow, SessionStatus.RUNNING);

    workflow.preempt(new TrainingSessionWorkflow.PreemptRequest("preempted for session x"));

    assertThat(result.join().status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.PAUSING,
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.COMPLETED);
    assertThat(sessions.changes.get(3).cause()).isEqualTo("preempted");
    assertThat(sessions.changes.get(3).message()).isEqualTo("preempted for session x");
    assertThat(sessions.changes.get(4).cause()).isEqualTo("requeued");
    assertThat(training.cancelled).isEqualTo(1);
    assertThat(placements.released).hasSize(2);
    assertThat(training.attempts).containsExactly(1, 2);
  }

  @Test
  void aGangRunsOneActivityPerNodeAndRestartsTogetherWhenOneNodeFails() {
    // Node 1's trainer dies; node 0, which would wait for its lost peer, is stopped; both start
    // again from the newest checkpoint.
    training.script(ScriptedTraining.runUntilCancelled(), ScriptedTraining.complete());
    training2.script(
        ScriptedTraining.fail(FailureTypes.TRAINER_CRASHED, "rank 1 was killed by SIGKILL", 10),
        ScriptedTraining.complete());

    SessionOutcome outcome = workflow().run(twoNodes());

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(placements.asked).extracting(PlacementActivities.PlaceRequest::nodes).contains(2);
    assertThat(training.cancelled).isEqualTo(1);
    assertThat(training.attempts).containsExactly(1, 2);
    assertThat(training2.attempts).containsExactly(1, 2);
    assertThat(training.inputs.get(0).nodeRank()).isZero();
    assertThat(training2.inputs.get(0).nodeRank()).isEqualTo(1);
    assertThat(training2.inputs.get(0).nodes()).isEqualTo(2);
    assertThat(training2.inputs.get(0).masterAddr()).isEqualTo("10.0.0.1");
    assertThat(training2.inputs.get(0).masterPort()).isEqualTo(29500);
    assertThat(sessions.changes)
        .anyMatch(
            c ->
                c.cause().equals("retry")
                    && c.message().equals("attempt 1 failed: rank 1 was killed by SIGKILL"));
    assertThat(sessions.changes)
        .anyMatch(
            c ->
                c.cause().equals("trainer_launched")
                    && c.message()
                        .equals(
                            "attempt 1 on 2 nodes: test-host, devices 0; test-host-2, devices 0"));
  }

  @Test
  void aGangReportsTheNodeThatDiedRatherThanThePeerThatLostIt() {
    // Node 0's rank sees its collective break first; node 1 then reports its rank was killed.
    training.script(
        ScriptedTraining.fail(FailureTypes.PEER_LOST, "rank 0: Connection reset by peer", 10),
        ScriptedTraining.complete());
    training2.script(
        ScriptedTraining.failAfter(
            300, FailureTypes.TRAINER_CRASHED, "rank 1 was killed by SIGKILL", 10),
        ScriptedTraining.complete());

    assertThat(workflow().run(twoNodes()).status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(sessions.changes)
        .filteredOn(c -> c.cause().equals("retry"))
        .extracting(StatusChange::message)
        .containsExactly("attempt 1 failed: rank 1 was killed by SIGKILL");
  }

  private static TrainingSessionInput twoNodes() {
    SessionSpec spec = spec();
    SessionSpec twoNodes =
        new SessionSpec(
            spec.name(),
            spec.description(),
            spec.model(),
            spec.training(),
            new SessionSpec.Distributed(2, 1, "ddp", null),
            spec.data(),
            spec.checkpoint(),
            spec.load());
    return new TrainingSessionInput(ID, twoNodes, "{\"name\": \"tiny\"}", null);
  }

  @Test
  void impossibleRequestsAreRefusedWithTheReason() {
    training.script(ScriptedTraining.runUntilCancelled());
    TrainingSessionWorkflow workflow = workflow();
    WorkflowClient.execute(workflow::run, input());
    awaitStatus(workflow, SessionStatus.RUNNING);

    WorkflowUpdateException refused =
        catchThrowableOfType(
            WorkflowUpdateException.class, () -> workflow.resume(new ControlRequest("test")));

    assertThat(refused.getCause()).isInstanceOf(ApplicationFailure.class);
    assertThat(((ApplicationFailure) refused.getCause()).getOriginalMessage())
        .isEqualTo("cannot resume the session: it is RUNNING, not PAUSED");
    assertThat(workflow.cancel(new ControlRequest("test")).status())
        .isEqualTo(SessionStatus.CANCELLING);
    WorkflowUpdateException pauseWhileCancelling =
        catchThrowableOfType(
            WorkflowUpdateException.class, () -> workflow.pause(new ControlRequest("test")));
    assertThat(((ApplicationFailure) pauseWhileCancelling.getCause()).getOriginalMessage())
        .isEqualTo("cannot pause the session: it is CANCELLING");
  }

  @Test
  void cancelThroughTheUpdateStopsTheTrainerAndEndsCancelled() {
    training.script(ScriptedTraining.runUntilCancelled());
    TrainingSessionWorkflow workflow = workflow();
    CompletableFuture<SessionOutcome> result = WorkflowClient.execute(workflow::run, input());
    awaitStatus(workflow, SessionStatus.RUNNING);

    workflow.cancel(new ControlRequest("test"));

    assertThat(result.join().status()).isEqualTo(SessionStatus.CANCELLED);
    assertThat(training.cancelled).isEqualTo(1);
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.CANCELLING,
            SessionStatus.CANCELLED);
    assertThat(placements.released).containsExactly(ID);
  }

  @Test
  void cancelFromTemporalLeavesATruthfulRowOnceTheTrainerIsGone() {
    training.script(ScriptedTraining.runUntilCancelled());
    TrainingSessionWorkflow workflow = workflow();
    WorkflowClient.execute(workflow::run, input());
    awaitStatus(workflow, SessionStatus.RUNNING);

    WorkflowStub.fromTyped(workflow).cancel();

    WorkflowFailedException failed =
        catchThrowableOfType(
            WorkflowFailedException.class,
            () -> WorkflowStub.fromTyped(workflow).getResult(SessionOutcome.class));
    assertThat(failed.getCause()).isInstanceOf(CanceledFailure.class);
    assertThat(training.cancelled).isEqualTo(1);
    assertThat(sessions.statuses())
        .containsExactly(
            SessionStatus.QUEUED,
            SessionStatus.STARTING,
            SessionStatus.RUNNING,
            SessionStatus.CANCELLING,
            SessionStatus.CANCELLED);
    assertThat(sessions.changes.get(3).message()).isEqualTo("cancelled in Temporal");
    assertThat(placements.released).containsExactly(ID);
  }

  @Test
  void trainerConfigErrorEndsFailedWithTheTrainersMessageWithoutRetrying() {
    String message = "train.learning_rate: must be > 0, got -1.0";
    training.script(ScriptedTraining.fail(FailureTypes.CONFIG_ERROR, message, -1));

    WorkflowFailedException failed =
        catchThrowableOfType(WorkflowFailedException.class, () -> workflow().run(input()));

    assertThat(((ApplicationFailure) failed.getCause()).getOriginalMessage()).isEqualTo(message);
    assertThat(training.attempts).containsExactly(1);
    StatusChange last = sessions.changes.get(sessions.changes.size() - 1);
    assertThat(last.status()).isEqualTo(SessionStatus.FAILED);
    assertThat(last.message()).isEqualTo(message);
  }

  @Test
  void crashLoopAtTheSameCheckpointEndsFailedAfterTheBudgetWithTheLastError() {
    Supplier<ScriptedTraining.Behaviour> crashAt20 =
        () -> ScriptedTraining.fail(FailureTypes.TRAINER_CRASHED, "CUDA error at step 23", 20);
    training.script(
        crashAt20.get(), crashAt20.get(), crashAt20.get(), crashAt20.get(), crashAt20.get());

    WorkflowFailedException failed =
        catchThrowableOfType(WorkflowFailedException.class, () -> workflow().run(input()));

    assertThat(training.attempts)
        .hasSize(TrainingSessionWorkflowImpl.MAX_ATTEMPTS_WITHOUT_PROGRESS);
    assertThat(((ApplicationFailure) failed.getCause()).getOriginalMessage())
        .startsWith("CUDA error at step 23 (gave up after 5 attempts in a row");
    // Between attempts the session waits in the queue, saying why.
    assertThat(sessions.changes)
        .filteredOn(c -> c.status() == SessionStatus.QUEUED && c.cause().equals("retry"))
        .hasSize(4)
        .allMatch(c -> c.cause().equals("retry") && c.message().endsWith("CUDA error at step 23"));
  }

  @Test
  void attemptsThatEachWriteANewCheckpointAreRetriedWithoutLimit() {
    int preemptions = 2 * TrainingSessionWorkflowImpl.MAX_ATTEMPTS_WITHOUT_PROGRESS;
    ScriptedTraining.Behaviour[] script = new ScriptedTraining.Behaviour[preemptions + 1];
    for (int i = 0; i < preemptions; i++) {
      script[i] = ScriptedTraining.fail(FailureTypes.TRAINER_CRASHED, "preempted", 10L * (i + 1));
    }
    script[preemptions] = ScriptedTraining.complete();
    training.script(script);

    SessionOutcome outcome = workflow().run(input());

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(training.attempts).hasSize(preemptions + 1);
  }

  @Test
  void retryDelayDoublesUpToAMinute() {
    assertThat(TrainingSessionWorkflowImpl.retryDelay(1)).isEqualTo(Duration.ofSeconds(1));
    assertThat(TrainingSessionWorkflowImpl.retryDelay(3)).isEqualTo(Duration.ofSeconds(4));
    assertThat(TrainingSessionWorkflowImpl.retryDelay(40)).isEqualTo(Duration.ofMinutes(1));
  }

  private void awaitStatus(TrainingSessionWorkflow workflow, SessionStatus wanted) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (workflow.status() != wanted) {
      assertThat(System.nanoTime()).as("status %s within 30 s", wanted).isLessThan(deadline);
      sleep(20);
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private TrainingSessionWorkflow workflow() {
    return env.getWorkflowClient()
        .newWorkflowStub(
            TrainingSessionWorkflow.class,
            WorkflowOptions.newBuilder()
                .setWorkflowId(TaskQueues.workflowId(ID))
                .setTaskQueue(TaskQueues.CONTROL)
                .build());
  }

  static TrainingSessionInput withModel(String model) {
    return new TrainingSessionInput(ID, spec(), "{\"name\": \"tiny\"}", null, model);
  }

  static TrainingSessionInput input() {
    return new TrainingSessionInput(ID, spec(), "{\"name\": \"tiny\"}", null);
  }

  static SessionSpec spec() {
    return new SessionSpec(
        "tiny",
        "",
        new SessionSpec.Model("llama2", "debug", "fp32"),
        new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, null, null, null, null, null),
        new SessionSpec.Distributed(1, 1, "ddp", null),
        new SessionSpec.Data(128, "", null, null),
        new SessionSpec.Checkpoint(50, null),
        null);
  }

  /** Session bookkeeping that remembers what it was asked to store. */
  static final class RecordingRegistry implements RegistryActivities {
    final List<RegisterVersion> registered = new java.util.concurrent.CopyOnWriteArrayList<>();
    final List<RecordEvaluation> evaluations = new java.util.concurrent.CopyOnWriteArrayList<>();
    final List<EvaluationFailed> failed = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public ModelVersion registerVersion(RegisterVersion input) {
      registered.add(input);
      return new ModelVersion(input.model(), 1, "/s/models/final/" + input.model() + "/v1");
    }

    @Override
    public void recordEvaluation(RecordEvaluation input) {
      evaluations.add(input);
    }

    @Override
    public void evaluationFailed(EvaluationFailed input) {
      failed.add(input);
    }
  }

  /** An evaluation that plays one scripted result per try. */
  static final class ScriptedEvaluations implements EvaluationActivities {
    enum Result {
      OK,
      CRASH,
      REFUSED
    }

    final List<EvaluateInput> inputs = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final java.util.Queue<Result> script =
        new java.util.concurrent.ConcurrentLinkedQueue<>();

    void script(Result... results) {
      script.addAll(List.of(results));
    }

    @Override
    public EvaluationResult evaluate(EvaluateInput input) {
      inputs.add(input);
      Result next = script.poll();
      if (next == Result.CRASH) {
        throw ApplicationFailure.newFailure("evaluation process killed", "EvaluationCrashed");
      }
      if (next == Result.REFUSED || next == null) {
        throw ApplicationFailure.newNonRetryableFailure(
            "--data: unusable split", FailureTypes.EVALUATION_FAILED);
      }
      return new EvaluationResult(2.5, Math.exp(2.5), 0.4);
    }
  }

  static final class RecordingSessions implements SessionActivities {
    final List<RegisterSession> registered = new java.util.concurrent.CopyOnWriteArrayList<>();
    final List<StatusChange> changes = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public void registerSession(RegisterSession input) {
      registered.add(input);
    }

    @Override
    public void recordStatus(StatusChange change) {
      changes.add(change);
    }

    List<SessionStatus> statuses() {
      return changes.stream().map(StatusChange::status).toList();
    }
  }
}
