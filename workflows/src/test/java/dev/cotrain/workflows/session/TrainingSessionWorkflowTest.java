package dev.cotrain.workflows.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.SessionActivities.StatusChange;
import dev.cotrain.workflows.session.TrainingActivities.RunTrainingInput;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.worker.Worker;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.mockito.ArgumentCaptor;
import org.mockito.InOrder;

class TrainingSessionWorkflowTest {

  private static final String ID = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";

  private TestWorkflowEnvironment env;
  private ConfigActivities config;
  private TrainingActivities training;
  private SessionActivities sessions;

  @BeforeEach
  void setUp() {
    env = TestWorkflowEnvironment.newInstance();
    config = mock(ConfigActivities.class, withSettings().withoutAnnotations());
    training = mock(TrainingActivities.class, withSettings().withoutAnnotations());
    sessions = mock(SessionActivities.class, withSettings().withoutAnnotations());
    Worker control = env.newWorker(TaskQueues.CONTROL);
    control.registerWorkflowImplementationTypes(TrainingSessionWorkflowImpl.class);
    control.registerActivitiesImplementations(config, sessions);
    env.newWorker(TaskQueues.TRAINING).registerActivitiesImplementations(training);
    env.start();
    when(config.generateConfig(any()))
        .thenReturn(new GeneratedConfig("/s/configs/generated/" + ID + ".toml", "/s/ckpt/" + ID));
  }

  @AfterEach
  void tearDown() {
    env.close();
  }

  @Test
  void completesWithTheFinalModelAndRecordsEachStatus() {
    when(training.runTraining(any())).thenReturn(new TrainingResult("/s/final/" + ID, 200, 1.25));

    SessionOutcome outcome = workflow().run(new TrainingSessionInput(ID, spec()));

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    assertThat(outcome.finalModelPath()).isEqualTo("/s/final/" + ID);
    assertThat(outcome.steps()).isEqualTo(200);
    ArgumentCaptor<RunTrainingInput> run = ArgumentCaptor.forClass(RunTrainingInput.class);
    InOrder order = inOrder(config, sessions, training);
    order.verify(config).generateConfig(any());
    order.verify(sessions).recordStatus(new StatusChange(ID, SessionStatus.RUNNING, null, null));
    order.verify(training).runTraining(run.capture());
    order
        .verify(sessions)
        .recordStatus(new StatusChange(ID, SessionStatus.COMPLETED, "/s/final/" + ID, null));
    assertThat(run.getValue().configPath()).isEqualTo("/s/configs/generated/" + ID + ".toml");
    assertThat(run.getValue().checkpointDir()).isEqualTo("/s/ckpt/" + ID);
  }

  @Test
  void trainerConfigErrorEndsFailedWithTheTrainersMessageWithoutRetrying() {
    String message = "train.learning_rate: must be > 0, got -1.0";
    when(training.runTraining(any()))
        .thenThrow(
            ApplicationFailure.newNonRetryableFailure(
                message, TrainingSessionWorkflowImpl.CONFIG_ERROR));

    WorkflowFailedException failed =
        catchThrowableOfType(
            WorkflowFailedException.class,
            () -> workflow().run(new TrainingSessionInput(ID, spec())));

    assertThat(failed.getCause()).isInstanceOf(ApplicationFailure.class);
    assertThat(((ApplicationFailure) failed.getCause()).getOriginalMessage()).isEqualTo(message);
    verify(training, times(1)).runTraining(any());
    verify(sessions).recordStatus(new StatusChange(ID, SessionStatus.FAILED, null, message));
  }

  @Test
  void crashedTrainerIsRetriedAndTheSessionCompletes() {
    when(training.runTraining(any()))
        .thenThrow(ApplicationFailure.newFailure("trainer exited with code 137", "TrainerCrashed"))
        .thenReturn(new TrainingResult("/s/final/" + ID, 200, 1.0));

    SessionOutcome outcome = workflow().run(new TrainingSessionInput(ID, spec()));

    assertThat(outcome.status()).isEqualTo(SessionStatus.COMPLETED);
    verify(training, times(2)).runTraining(any());
  }

  private TrainingSessionWorkflow workflow() {
    WorkflowClient client = env.getWorkflowClient();
    return client.newWorkflowStub(
        TrainingSessionWorkflow.class,
        WorkflowOptions.newBuilder()
            .setWorkflowId(TaskQueues.workflowId(ID))
            .setTaskQueue(TaskQueues.CONTROL)
            .build());
  }

  static SessionSpec spec() {
    return new SessionSpec(
        "tiny",
        "",
        new SessionSpec.Model("llama2", "debug", "fp32"),
        new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, null, null, null, null, null),
        new SessionSpec.Distributed(1, 1, "ddp", null),
        new SessionSpec.Data(128, "", null, null),
        new SessionSpec.Checkpoint(50, null));
  }
}
