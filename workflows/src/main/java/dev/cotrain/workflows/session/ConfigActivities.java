package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Turns a session spec into the trainer's TOML config file, and judges one by its rules. */
@ActivityInterface
public interface ConfigActivities {

  /**
   * Writes {@code <root>/configs/generated/<sessionId>.toml}. Idempotent: the same input writes the
   * same file. Fails non-retryably ({@code InvalidConfig}) when the spec cannot be written safely.
   * Short: a start-to-close timeout of seconds is enough.
   */
  GeneratedConfig generateConfig(GenerateConfigInput input);

  /**
   * Renders the config that {@link #generateConfig} would write and judges it by the trainer's own
   * config rules (those of its {@code --dry-run}, without the machine and data checks, which depend
   * on the host a session is placed on). Writes nothing, so it is idempotent. Never fails for a bad
   * spec: that is a {@link ConfigVerdict.Outcome#REFUSED} verdict; when the rules cannot be run (no
   * Python, a stuck checker) the verdict is {@link ConfigVerdict.Outcome#UNCHECKED}. Runs as a
   * local activity of {@link ConfigCheckWorkflow}; it answers in milliseconds, a start-to-close
   * timeout of seconds covers the first start of the checker.
   */
  ConfigVerdict checkConfig(GenerateConfigInput input);

  record GenerateConfigInput(String sessionId, SessionSpec spec) {}

  /**
   * The trainer's judgement of a config: accepted; refused with the trainer's {@code message} and
   * the dotted TOML {@code key} it starts with ({@code checkpoint.interval}); or unchecked, with
   * the reason in {@code message}.
   */
  record ConfigVerdict(Outcome outcome, String key, String message) {

    public enum Outcome {
      ACCEPTED,
      REFUSED,
      UNCHECKED
    }

    public static ConfigVerdict accepted() {
      return new ConfigVerdict(Outcome.ACCEPTED, null, null);
    }

    /** Refused with the trainer's message, whose first word before ": " is the dotted key. */
    public static ConfigVerdict refused(String message) {
      int colon = message.indexOf(": ");
      return new ConfigVerdict(
          Outcome.REFUSED, colon < 0 ? "" : message.substring(0, colon), message);
    }

    public static ConfigVerdict unchecked(String why) {
      return new ConfigVerdict(Outcome.UNCHECKED, null, why);
    }
  }

  record GeneratedConfig(String configPath, String checkpointDir) {}
}
