package dev.cotrain.activities.training;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.TrainingActivities;
import dev.cotrain.workflows.session.TrainingActivities.RunTrainingInput;
import dev.cotrain.workflows.session.TrainingActivities.TrainingProgress;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import dev.cotrain.workflows.session.TrainingSessionWorkflowImpl;
import io.temporal.activity.ActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestActivityEnvironment;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
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
  private StorageLayout layout;

  @BeforeEach
  void setUp() {
    layout = new StorageLayout(root).create();
    db.insertSession(sessionId);
    env = TestActivityEnvironment.newInstance();
    Path fakeTrainer = Path.of("src/test/resources/fake_trainer").toAbsolutePath();
    env.registerActivitiesImplementations(
        new TrainingActivitiesImpl(
            layout,
            new SessionStore(db.dataSource()),
            new TrainerLauncher(
                List.of("env", "PYTHONPATH=" + fakeTrainer, "python3"), Duration.ofSeconds(5)),
            Duration.ofMillis(50)));
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
                    && layout
                        .checkpoints(sessionId)
                        .resolve("step-2")
                        .toString()
                        .equals(p.checkpointPath()));
    assertThat(db.progress(sessionId)).isEqualTo(100.0);
  }

  @Test
  void configErrorFailsWithoutRetryCarryingTheTrainersMessage() throws IOException {
    ActivityFailure failure =
        catchThrowableOfType(
            ActivityFailure.class, () -> activity().runTraining(input("config-error")));

    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(TrainingSessionWorkflowImpl.CONFIG_ERROR);
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
    assertThat(cause.getOriginalMessage())
        .isEqualTo("trainer exited with code 1: RuntimeError: the GPU fell off the bus");
  }

  @Test
  void retryResumesFromTheCheckpointInTheLastHeartbeat() throws IOException {
    Path checkpoint = Files.createDirectories(layout.checkpoints(sessionId).resolve("step-2"));
    env.setHeartbeatDetails(new TrainingProgress(2, 3, 1.5, checkpoint.toString()));

    activity().runTraining(input("ok"));

    String argv = Files.readString(layout.checkpoints(sessionId).resolve("argv.json"));
    assertThat(argv).contains("\"--resume\", \"" + checkpoint + "\"");
  }

  @Test
  void heartbeatCheckpointOutsideTheSessionsTreeIsIgnored() throws IOException {
    Path elsewhere = Files.createDirectories(root.resolve("elsewhere"));
    env.setHeartbeatDetails(new TrainingProgress(2, 3, 1.5, elsewhere.toString()));

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
        sessionId, config.toString(), layout.checkpoints(sessionId).toString());
  }
}
