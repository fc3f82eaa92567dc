package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Turns a session spec into the trainer's TOML config file. */
@ActivityInterface
public interface ConfigActivities {

  /**
   * Writes {@code <root>/configs/generated/<sessionId>.toml}. Idempotent: the same input writes the
   * same file. Fails non-retryably ({@code InvalidConfig}) when the spec cannot be written safely.
   * Short: a start-to-close timeout of seconds is enough.
   */
  GeneratedConfig generateConfig(GenerateConfigInput input);

  record GenerateConfigInput(String sessionId, SessionSpec spec) {}

  record GeneratedConfig(String configPath, String checkpointDir) {}
}
