package dev.cotrain.activities.training;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.FailureTypes;
import dev.cotrain.workflows.session.TrainingActivities;
import dev.cotrain.workflows.session.TrainingActivities.RunTrainingInput;
import dev.cotrain.workflows.session.TrainingActivities.TrainingProgress;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import io.temporal.activity.ActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.testing.TestActivityEnvironment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainingActivitiesImplTest {

  @TempDir Path root;

  private final TestDatabase db = TestDatabase.get();
  private final String sessionId = UUID.randomUUID().toString();
  private final List<TrainingProgress> heartbeats = new CopyOnWriteArrayList<>();
  private TestActivityEnvironment env;
  private TrainingActivitiesImpl impl;
  private StorageLayout layout;

  @BeforeEach
  void setUp() {
    layout = new StorageLayout(root).create();
    db.insertSession(sessionId);
    env = TestActivityEnvironment.newInstance();
    Path fakeTrainer = Path.of("src/test/resources/fake_trainer").toAbsolutePath();
    impl =
        new TrainingActivitiesImpl(
            layout,
            new SessionStore(db.dataSource()),
            new TrainerLauncher(
                List.of("env", "PYTHONPATH=" + fakeTrainer, "python3"), Duration.ofSeconds(5)),
            Duration.ofMillis(50));
    env.registerActivitiesImplementations(impl);
    env.setActivityHeartbeatListener(TrainingProgress.class, heartbeats::add);
  }

  @AfterEach
  void tearDown() {
    env.close();
  }

  @Test
  void completedRunStoresEveryStepAndHeartbeatsTheNewestCheckpoint() throws IOException {
    TrainingResult result = activity().runTraining(input("ok"));

    assertThat(result.finalModelPath()).isEqualTo(layout.finalModel(sessionId).toString());
    assertThat(result.steps()).isEqualTo(3);
    assertThat(db.metricSteps(sessionId)).containsExactly(1L, 2L, 3L);
    assertThat(db.checkpointPaths(sessionId))
        .containsExactly(layout.checkpoints(sessionId).resolve("step-2").toString());
    assertThat(heartbeats)
        .anyMatch(
            p ->
                p.step() >= 2
                    && p.checkpointStep() == 2
                    && layout
                        .checkpoints(sessionId)
                        .resolve("step-2")
                        .toString()
                        .equals(p.checkpointPath()));
    assertThat(db.progress(sessionId)).isEqualTo(100.0);
    // The trainer sees exactly the devices its attempt holds.
    assertThat(Files.readString(layout.checkpoints(sessionId).resolve("devices.txt")))
        .isEqualTo("1,3");
  }

  @Test
  void aNodeOtherThanZeroMeetsAtTheRendezvousAndReportsOnlyItsMachine() throws IOException {
    RunTrainingInput node = input("node");
    RunTrainingInput second =
        new RunTrainingInput(
            node.sessionId(),
            node.attempt(),
            node.configPath(),
            node.checkpointDir(),
            node.devices(),
            1,
            2,
            "10.0.0.1",
            29501);

    TrainingResult result = activity().runTraining(second);

    assertThat(result.finalModelPath()).isNull(); // node 0 reports the session's result
    assertThat(Files.readString(layout.checkpoints(sessionId).resolve("rendezvous.txt")))
        .isEqualTo("1 10.0.0.1 29501");
    assertThat(db.<Integer>query("SELECT node FROM system_metrics WHERE session_id = ?", sessionId))
        .containsExactly(1);
    assertThat(db.metricSteps(sessionId)).isEmpty();
  }

  @Test
  void configErrorFailsWithoutRetryCarryingTheTrainersMessage() throws IOException {
    ActivityFailure failure =
        catchThrowableOfType(
            ActivityFailure.class, () -> activity().runTraining(input("config-error")));

    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.CONFIG_ERROR);
    assertThat(cause.isNonRetryable()).isTrue();
    assertThat(cause.getOriginalMessage()).isEqualTo("model.size: 7B is too big");
  }

  @Test
  void runtimeErrorTheTrainerMarksFinalIsNotRetried() throws IOException {
    ActivityFailure failure =
        catchThrowableOfType(
            ActivityFailure.class, () -> activity().runTraining(input("diverged")));

    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.isNonRetryable()).isTrue();
    assertThat(cause.getOriginalMessage()).isEqualTo("loss is nan at step 3");
  }

  @Test
  void crashIsRetryableAndNamesTheTrainersLastWords() throws IOException {
    ActivityFailure failure =
        catchThrowableOfType(ActivityFailure.class, () -> activity().runTraining(input("crash")));

    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.isNonRetryable()).isFalse();
    assertThat(cause.getType()).isEqualTo(FailureTypes.TRAINER_CRASHED);
    assertThat(cause.getOriginalMessage())
        .isEqualTo("trainer exited with code 1: RuntimeError: the GPU fell off the bus");
    // The workflow tells progress from a crash loop by the checkpoint the attempt reached.
    assertThat(cause.getDetails().get(TrainingProgress.class).checkpointStep()).isEqualTo(2);
  }

  @Test
  void trainerStoppedFromOutsideAfterACheckpointIsPreempted() throws IOException {
    ActivityFailure failure =
        catchThrowableOfType(ActivityFailure.class, () -> activity().runTraining(input("preempt")));

    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.TRAINER_PREEMPTED);
    assertThat(cause.isNonRetryable()).isFalse();
    assertThat(cause.getDetails().get(TrainingProgress.class).checkpointStep()).isEqualTo(2);
  }

  @Test
  void cancellationStopsTheTrainerWithACheckpointAndLeavesNoProcess() throws Exception {
    RunTrainingInput input = input("slow");
    CompletableFuture<CanceledFailure> run =
        CompletableFuture.supplyAsync(
            () -> catchThrowableOfType(CanceledFailure.class, () -> activity().runTraining(input)));
    awaitMetricSteps(3);

    env.requestCancelActivity();

    assertThat(run.get(30, TimeUnit.SECONDS)).isNotNull();
    assertThat(db.checkpointPaths(sessionId)).hasSize(1);
    assertThat(trainers()).isEmpty();
  }

  @Test
  void drainStopsEveryTrainerWhichCheckpointsAndIsPreempted() throws Exception {
    RunTrainingInput input = input("slow");
    CompletableFuture<ActivityFailure> run =
        CompletableFuture.supplyAsync(
            () -> catchThrowableOfType(ActivityFailure.class, () -> activity().runTraining(input)));
    awaitMetricSteps(3);

    impl.drain();

    ApplicationFailure cause = (ApplicationFailure) run.get(30, TimeUnit.SECONDS).getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.TRAINER_PREEMPTED);
    long checkpointStep = cause.getDetails().get(TrainingProgress.class).checkpointStep();
    assertThat(checkpointStep).isGreaterThanOrEqualTo(3);
    // Every step up to the checkpoint was stored before the attempt ended.
    assertThat(db.metricSteps(sessionId)).hasSizeGreaterThanOrEqualTo((int) checkpointStep);
    assertThat(trainers()).isEmpty();
  }

  private void awaitMetricSteps(int steps) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (db.metricSteps(sessionId).size() < steps) {
      assertThat(System.nanoTime()).as("%d steps stored within 30 s", steps).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  /** Processes of this test's trainer still alive. */
  private List<ProcessHandle> trainers() {
    return ProcessHandle.allProcesses()
        .filter(p -> p.info().commandLine().orElse("").contains(sessionId))
        .toList();
  }

  @Test
  void trainerFindsItsNewestCheckpointItselfRatherThanFromAHeartbeat() throws IOException {
    Path stale = Files.createDirectories(layout.checkpoints(sessionId).resolve("step-1"));
    env.setHeartbeatDetails(new TrainingProgress(1, 3, 1.5, 1, stale.toString()));

    activity().runTraining(input("ok"));

    String argv = Files.readString(layout.checkpoints(sessionId).resolve("argv.json"));
    assertThat(argv).doesNotContain("--resume");
  }

  private TrainingActivities activity() {
    return env.newActivityStub(
        TrainingActivities.class,
        ActivityOptions.newBuilder()
            .setStartToCloseTimeout(Duration.ofMinutes(1))
            .setHeartbeatTimeout(Duration.ofMillis(500))
            .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build())
            .build());
  }

  private RunTrainingInput input(String mode) throws IOException {
    Path config = layout.generatedConfig(sessionId);
    Files.writeString(
        config,
        """
        [run]
        session_id = "%s"
        name = "%s"
        final_path = "%s"
        [checkpoint]
        output_path = "%s"
        """
            .formatted(
                sessionId, mode, layout.finalModel(sessionId), layout.checkpoints(sessionId)));
    return new RunTrainingInput(
        sessionId, 1, config.toString(), layout.checkpoints(sessionId).toString(), List.of(1, 3));
  }
}
