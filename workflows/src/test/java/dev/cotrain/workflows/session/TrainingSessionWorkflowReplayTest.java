package dev.cotrain.workflows.session;

import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.WorkflowReplayer;
import io.temporal.worker.Worker;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Replays checked-in histories of each shape of session against today's workflow code: a change
 * that would break running sessions fails here and belongs behind {@code Workflow.getVersion}.
 */
class TrainingSessionWorkflowReplayTest {

  private static final String DIR = "histories/";

  @ParameterizedTest
  @ValueSource(strings = {"completed", "retried", "paused-resumed", "cancelled"})
  void replaysTheRecordedHistory(String shape) throws Exception {
    WorkflowReplayer.replayWorkflowExecutionFromResource(
        DIR + "training-session-" + shape + ".json", TrainingSessionWorkflowImpl.class);
  }

  /**
   * Re-records the histories (only for a deliberate, versioned change): {@code mvn -pl workflows
   * test -Dtest=TrainingSessionWorkflowReplayTest -Dcotrain.recordHistory=true}.
   */
  @Test
  @EnabledIfSystemProperty(named = "cotrain.recordHistory", matches = "true")
  void recordHistories() throws Exception {
    record("completed", training -> training.script(ScriptedTraining.complete()), w -> {});
    record(
        "retried",
        training ->
            training.script(
                ScriptedTraining.fail(FailureTypes.TRAINER_CRASHED, "exit code -9", 50),
                ScriptedTraining.complete()),
        w -> {});
    record(
        "paused-resumed",
        training ->
            training.script(ScriptedTraining.runUntilCancelled(), ScriptedTraining.complete()),
        w -> {
          awaitStatus(w, SessionStatus.RUNNING);
          w.pause(new ControlRequest("replay test"));
          awaitStatus(w, SessionStatus.PAUSED);
          w.resume(new ControlRequest("replay test"));
        });
    record(
        "cancelled",
        training -> training.script(ScriptedTraining.runUntilCancelled()),
        w -> {
          awaitStatus(w, SessionStatus.RUNNING);
          w.cancel(new ControlRequest("replay test"));
        });
  }

  private static void record(
      String shape, Consumer<ScriptedTraining> script, Consumer<TrainingSessionWorkflow> control)
      throws Exception {
    try (TestWorkflowEnvironment env = TrainingSessionWorkflowTest.newEnvironment()) {
      ConfigActivities config = mock(ConfigActivities.class, withSettings().withoutAnnotations());
      String id = TrainingSessionWorkflowTest.ID;
      when(config.generateConfig(any()))
          .thenReturn(new GeneratedConfig("/s/configs/generated/" + id + ".toml", "/s/ckpt/" + id));
      ScriptedTraining training = new ScriptedTraining();
      script.accept(training);
      Worker worker = env.newWorker(TaskQueues.CONTROL);
      worker.registerWorkflowImplementationTypes(TrainingSessionWorkflowImpl.class);
      worker.registerActivitiesImplementations(
          config, new TrainingSessionWorkflowTest.RecordingSessions(), new FakePlacements(1));
      env.newWorker(TaskQueues.trainingQueue(FakePlacements.HOST))
          .registerActivitiesImplementations(training);
      env.start();
      WorkflowClient client = env.getWorkflowClient();
      TrainingSessionWorkflow workflow =
          client.newWorkflowStub(
              TrainingSessionWorkflow.class,
              WorkflowOptions.newBuilder()
                  .setWorkflowId(TaskQueues.workflowId(id))
                  .setTaskQueue(TaskQueues.CONTROL)
                  .build());
      WorkflowClient.execute(workflow::run, TrainingSessionWorkflowTest.input());
      control.accept(workflow);
      WorkflowStub stub = WorkflowStub.fromTyped(workflow);
      stub.getResult(30, TimeUnit.SECONDS, SessionOutcome.class);
      Files.writeString(
          Path.of("src/test/resources", DIR + "training-session-" + shape + ".json"),
          client.fetchHistory(stub.getExecution().getWorkflowId()).toJson(true));
    }
  }

  private static void awaitStatus(TrainingSessionWorkflow workflow, SessionStatus wanted) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (workflow.status() != wanted) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("no " + wanted + " within 30 s");
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
    }
  }
}
