package dev.cotrain.activities.config;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict.Outcome;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import dev.cotrain.workflows.session.SessionSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The create-time check against the trainer's real config rules: its config module needs only the
 * standard library of Python 3.11, so the repository's source and the machine's python3 run it.
 */
class ConfigActivitiesImplTest {

  private static final String ID = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";
  private static final List<String> PYTHON =
      List.of("env", "PYTHONPATH=" + Path.of("../cotrain-core/src").toAbsolutePath(), "python3");

  @TempDir Path root;
  private final List<ConfigChecker> checkers = new ArrayList<>();

  @AfterEach
  void stopCheckers() {
    checkers.forEach(ConfigChecker::close);
  }

  private ConfigActivitiesImpl activities(List<String> python) {
    ConfigChecker checker = new ConfigChecker(python, Duration.ofSeconds(10));
    checkers.add(checker);
    return new ConfigActivitiesImpl(new StorageLayout(root), checker);
  }

  @Test
  void theTrainerRefusesADilocoCheckpointIntervalThatIsNotAMultipleOfInnerSteps() {
    ConfigActivitiesImpl config = activities(PYTHON);

    ConfigVerdict refused =
        config.checkConfig(new GenerateConfigInput(ID, diloco(50, 30, "a \"quoted\" näme")));
    ConfigVerdict accepted = config.checkConfig(new GenerateConfigInput(ID, diloco(50, 100, "ok")));

    assertThat(refused.outcome()).isEqualTo(Outcome.REFUSED);
    assertThat(refused.key()).isEqualTo("checkpoint.interval");
    assertThat(refused.message())
        .startsWith(
            "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (50)")
        .endsWith("got 30");
    assertThat(accepted).isEqualTo(ConfigVerdict.accepted());
    assertThat(root.resolve("configs/generated")).doesNotExist(); // a check writes nothing
  }

  @Test
  void aBatchThatTheWorldSizeDoesNotDivideIsRefusedNamingTheKey() {
    SessionSpec spec = TomlConfigWriterTest.spec("tiny", "");
    SessionSpec threeNodes =
        new SessionSpec(
            spec.name(),
            spec.description(),
            spec.model(),
            spec.training(),
            new SessionSpec.Distributed(3, 1, "ddp", null),
            spec.data(),
            spec.checkpoint(),
            spec.load());

    ConfigVerdict verdict = activities(PYTHON).checkConfig(new GenerateConfigInput(ID, threeNodes));

    assertThat(verdict.key()).isEqualTo("train.batch_size");
    assertThat(verdict.message())
        .startsWith(
            "train.batch_size: 8 is the global batch and must be divisible by the world size 3");
  }

  @Test
  void aDataPathOutOfTheStorageRootIsRefusedBeforeThePythonSideIsAsked() {
    ConfigVerdict verdict =
        activities(List.of("false"))
            .checkConfig(new GenerateConfigInput(ID, TomlConfigWriterTest.spec("x", "../etc")));

    assertThat(verdict.outcome()).isEqualTo(Outcome.REFUSED);
    assertThat(verdict.key()).isEqualTo("data.data_path");
  }

  @Test
  void aCheckerThatCannotRunLeavesTheSpecUncheckedAndIsStartedAgainNextTime() throws Exception {
    Path flag = root.resolve("broken");
    Files.createFile(flag);
    // Exits at once while the flag exists, then runs the real checker.
    List<String> python =
        List.of(
            "sh",
            "-c",
            "[ -e '"
                + flag
                + "' ] && exit 1; exec env PYTHONPATH='"
                + Path.of("../cotrain-core/src").toAbsolutePath()
                + "' python3 \"$@\"",
            "sh");
    ConfigActivitiesImpl config = activities(python);

    ConfigVerdict broken = config.checkConfig(new GenerateConfigInput(ID, diloco(50, 30, "x")));
    Files.delete(flag);
    ConfigVerdict working = config.checkConfig(new GenerateConfigInput(ID, diloco(50, 30, "x")));

    assertThat(broken.outcome()).isEqualTo(Outcome.UNCHECKED);
    assertThat(broken.message()).startsWith("the config checker"); // exited, or closed its input
    assertThat(working.outcome()).isEqualTo(Outcome.REFUSED);
  }

  @Test
  void theWriterWritesOnlyKeysTheTrainerDefines() throws IOException {
    JsonNode rules =
        new ObjectMapper().readTree(Files.readString(Path.of("../docs/schema/config-fields.json")));
    SessionSpec full =
        new SessionSpec(
            "all",
            "",
            new SessionSpec.Model("llama2", "debug", "fp32"),
            new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, 4, 10, "linear", 0.1, 1.0),
            new SessionSpec.Distributed(
                1, 1, "diloco", new SessionSpec.Diloco(50, 0.7, 0.9, true, "fp32")),
            new SessionSpec.Data(128, "", "bpe", 0.1),
            new SessionSpec.Checkpoint(50, 3),
            null);

    for (String key : new TomlConfigWriter(new StorageLayout(root)).values(ID, full).keySet()) {
      assertThat(rules.has(key)).as("%s in docs/schema/config-fields.json", key).isTrue();
    }
  }

  private static SessionSpec diloco(int innerSteps, int interval, String name) {
    return new SessionSpec(
        name,
        "",
        new SessionSpec.Model("llama2", "debug", "fp32"),
        new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, null, null, null, null, null),
        new SessionSpec.Distributed(
            1, 1, "diloco", new SessionSpec.Diloco(innerSteps, null, null, null, null)),
        new SessionSpec.Data(128, "", null, null),
        new SessionSpec.Checkpoint(interval, null),
        null);
  }
}
