package dev.cotrain.workflows.session;

import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import dev.cotrain.workflows.session.ConfigActivities.GeneratedConfig;
import dev.cotrain.workflows.session.TrainingActivities.TrainingResult;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.common.WorkflowExecutionHistory;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.WorkflowReplayer;
import io.temporal.worker.Worker;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Replays a checked-in history of a completed session against today's workflow code: a change that
 * would break running sessions fails here and belongs behind {@code Workflow.getVersion}.
 */
class TrainingSessionWorkflowReplayTest {

  private static final String HISTORY = "histories/training-session-completed.json";

  @Test
  void replaysTheRecordedHistoryOfACompletedSession() throws Exception {
    WorkflowReplayer.replayWorkflowExecutionFromResource(
        HISTORY, TrainingSessionWorkflowImpl.class);
  }

  /**
   * Re-records the history (only for a deliberate, versioned change): {@code mvn -pl workflows test
   * -Dtest=TrainingSessionWorkflowReplayTest -Dcotrain.recordHistory=true}.
   */
  @Test
  @EnabledIfSystemProperty(named = "cotrain.recordHistory", matches = "true")
  void recordHistory() throws Exception {
    String id = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";
    try (TestWorkflowEnvironment env = TestWorkflowEnvironment.newInstance()) {
      ConfigActivities config = mock(ConfigActivities.class, withSettings().withoutAnnotations());
      TrainingActivities training =
          mock(TrainingActivities.class, withSettings().withoutAnnotations());
      SessionActivities sessions =
          mock(SessionActivities.class, withSettings().withoutAnnotations());
      when(config.generateConfig(any()))
          .thenReturn(new GeneratedConfig("/s/configs/generated/" + id + ".toml", "/s/ckpt/" + id));
      when(training.runTraining(any())).thenReturn(new TrainingResult("/s/final/" + id, 200, 1.0));
      Worker control = env.newWorker(TaskQueues.CONTROL);
      control.registerWorkflowImplementationTypes(TrainingSessionWorkflowImpl.class);
      control.registerActivitiesImplementations(config, sessions);
      env.newWorker(TaskQueues.TRAINING).registerActivitiesImplementations(training);
      env.start();
      WorkflowClient client = env.getWorkflowClient();
      TrainingSessionWorkflow workflow =
          client.newWorkflowStub(
              TrainingSessionWorkflow.class,
              WorkflowOptions.newBuilder()
                  .setWorkflowId(TaskQueues.workflowId(id))
                  .setTaskQueue(TaskQueues.CONTROL)
                  .build());
      workflow.run(new TrainingSessionInput(id, TrainingSessionWorkflowTest.spec()));
      String execution = WorkflowStub.fromTyped(workflow).getExecution().getWorkflowId();
      WorkflowExecutionHistory history = client.fetchHistory(execution);
      Files.writeString(Path.of("src/test/resources", HISTORY), history.toJson(true));
    }
  }
}
