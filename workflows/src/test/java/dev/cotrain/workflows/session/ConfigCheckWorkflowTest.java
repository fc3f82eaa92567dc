package dev.cotrain.workflows.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import io.temporal.client.WorkflowOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.WorkflowReplayer;
import io.temporal.worker.Worker;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

class ConfigCheckWorkflowTest {

  private static final String HISTORY = "histories/config-check-refused.json";
  private static final String WORKFLOW_ID = TaskQueues.CONFIG_CHECK_ID_PREFIX + "test";

  private static final ConfigVerdict REFUSED =
      ConfigVerdict.refused(
          "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (50) under"
              + " diloco (checkpoints are written after an outer step), got 30");

  @Test
  void answersTheVerdictOfTheCheckOnTheWorkerThatTookIt() {
    try (TestWorkflowEnvironment env = TestWorkflowEnvironment.newInstance()) {
      ConfigCheckWorkflow workflow = start(env);

      ConfigVerdict verdict =
          workflow.check(new GenerateConfigInput(TrainingSessionWorkflowTest.ID, spec()));

      assertThat(verdict).isEqualTo(REFUSED);
      assertThat(verdict.key()).isEqualTo("checkpoint.interval");
    }
  }

  @Test
  void replaysTheRecordedHistory() throws Exception {
    WorkflowReplayer.replayWorkflowExecutionFromResource(HISTORY, ConfigCheckWorkflowImpl.class);
  }

  /**
   * Re-records the history (only for a deliberate, versioned change): {@code mvn -pl workflows test
   * -Dtest=ConfigCheckWorkflowTest -Dcotrain.recordHistory=true}.
   */
  @Test
  @EnabledIfSystemProperty(named = "cotrain.recordHistory", matches = "true")
  void recordHistory() throws Exception {
    try (TestWorkflowEnvironment env = TestWorkflowEnvironment.newInstance()) {
      start(env).check(new GenerateConfigInput(TrainingSessionWorkflowTest.ID, spec()));
      Files.writeString(
          Path.of("src/test/resources", HISTORY),
          env.getWorkflowClient().fetchHistory(WORKFLOW_ID).toJson(true));
    }
  }

  private static ConfigCheckWorkflow start(TestWorkflowEnvironment env) {
    ConfigActivities config = mock(ConfigActivities.class, withSettings().withoutAnnotations());
    when(config.checkConfig(any())).thenReturn(REFUSED);
    Worker worker = env.newWorker(TaskQueues.CONTROL);
    worker.registerWorkflowImplementationTypes(ConfigCheckWorkflowImpl.class);
    worker.registerActivitiesImplementations(config);
    env.start();
    return env.getWorkflowClient()
        .newWorkflowStub(
            ConfigCheckWorkflow.class,
            WorkflowOptions.newBuilder()
                .setWorkflowId(WORKFLOW_ID)
                .setTaskQueue(TaskQueues.CONTROL)
                .build());
  }

  private static SessionSpec spec() {
    SessionSpec spec = TrainingSessionWorkflowTest.spec();
    return new SessionSpec(
        spec.name(),
        spec.description(),
        spec.model(),
        spec.training(),
        new SessionSpec.Distributed(
            1, 1, "diloco", new SessionSpec.Diloco(50, null, null, null, null)),
        spec.data(),
        new SessionSpec.Checkpoint(30, null),
        null);
  }
}
