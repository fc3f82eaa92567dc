package dev.cotrain.workflows.session;

import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import io.temporal.activity.LocalActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.workflow.Workflow;
import java.time.Duration;

public class ConfigCheckWorkflowImpl implements ConfigCheckWorkflow {

  // Local: the check runs inside the workflow task, one round trip to the worker instead of three.
  private final ConfigActivities config =
      Workflow.newLocalActivityStub(
          ConfigActivities.class,
          LocalActivityOptions.newBuilder()
              .setStartToCloseTimeout(Duration.ofSeconds(10))
              .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(2).build())
              .build());

  @Override
  public ConfigVerdict check(GenerateConfigInput input) {
    return config.checkConfig(input);
  }
}
