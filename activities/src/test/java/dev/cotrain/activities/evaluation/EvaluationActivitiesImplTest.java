package dev.cotrain.activities.evaluation;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.registry.EvaluationActivities;
import dev.cotrain.workflows.registry.EvaluationActivities.EvaluateInput;
import dev.cotrain.workflows.registry.EvaluationActivities.EvaluationResult;
import dev.cotrain.workflows.session.FailureTypes;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestActivityEnvironment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluation activity around a stand-in evaluator that speaks the trainer's protocol. */
class EvaluationActivitiesImplTest {

  @TempDir Path root;
  private TestActivityEnvironment env;
  private EvaluationActivities activity;
  private StorageLayout layout;

  @BeforeEach
  void setUp() {
    Path fake = Path.of("src/test/resources/fake_trainer").toAbsolutePath();
    layout = new StorageLayout(root).create();
    env = TestActivityEnvironment.newInstance();
    env.registerActivitiesImplementations(
        new EvaluationActivitiesImpl(
            List.of("env", "PYTHONPATH=" + fake, "python3"), Duration.ofMillis(200), layout));
    activity = env.newActivityStub(EvaluationActivities.class);
  }

  @AfterEach
  void tearDown() {
    env.close();
  }

  @Test
  void answersTheEvalEventAndPassesTheDevicesAndTheSetName() throws Exception {
    Path model = Files.createDirectories(root.resolve("ok"));

    EvaluationResult result =
        activity.evaluate(
            new EvaluateInput(model.toString(), "/split", null, "validation", List.of(1, 3)));

    assertThat(result).isEqualTo(new EvaluationResult(2.5, 12.18, 0.4));
    assertThat(Files.readString(model.resolve("evaluated.json")))
        .contains("\"data\": \"/split\"", "\"card\": \"validation\"", "\"devices\": \"1,3\"");
  }

  @Test
  void aSetUnderDatasetsRawIsResolvedThereAndOneOutsideIsRefused() throws Exception {
    Path model = Files.createDirectories(root.resolve("ok"));
    Files.writeString(layout.rawDatasets().resolve("wiki.txt"), "text");
    Path outside = Files.writeString(root.resolve("secret.txt"), "no");
    Files.createSymbolicLink(layout.rawDatasets().resolve("link.txt"), outside);

    activity.evaluate(new EvaluateInput(model.toString(), null, "wiki.txt", "wiki", List.of()));
    assertThat(Files.readString(model.resolve("evaluated.json")))
        .contains(layout.rawDatasets().toRealPath().resolve("wiki.txt").toString());
    assertThatThrownBy(
            () ->
                activity.evaluate(
                    new EvaluateInput(model.toString(), null, "link.txt", "x", List.of())))
        .isInstanceOf(ActivityFailure.class)
        .cause()
        .hasMessageContaining("not a file under datasets/raw");
  }

  @Test
  void aRefusalFailsForGoodWithTheTrainersMessage() throws Exception {
    Path model = Files.createDirectories(root.resolve("refused"));

    assertThatThrownBy(
            () ->
                activity.evaluate(new EvaluateInput(model.toString(), "/x", null, "v", List.of())))
        .isInstanceOf(ActivityFailure.class)
        .cause()
        .isInstanceOfSatisfying(
            ApplicationFailure.class,
            f -> {
              assertThat(f.getType()).isEqualTo(FailureTypes.EVALUATION_FAILED);
              assertThat(f.isNonRetryable()).isTrue();
              assertThat(f.getOriginalMessage()).isEqualTo("--data: too little data");
            });
  }

  @Test
  void anEvaluatorKilledMidWayIsAFailureWorthAnotherTry() throws Exception {
    Path model = Files.createDirectories(root.resolve("hang"));
    Thread killer =
        new Thread(
            () -> {
              try {
                while (!Files.exists(model.resolve("evaluated.json"))) {
                  Thread.sleep(50);
                }
                ProcessHandle.allProcesses()
                    .filter(
                        p -> p.info().commandLine().orElse("").contains("cotrain_core.evaluate"))
                    .filter(p -> p.info().commandLine().orElse("").contains(model.toString()))
                    .forEach(ProcessHandle::destroyForcibly);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    killer.start();

    assertThatThrownBy(
            () ->
                activity.evaluate(new EvaluateInput(model.toString(), "/x", null, "v", List.of())))
        .isInstanceOf(ActivityFailure.class)
        .cause()
        .isInstanceOfSatisfying(
            ApplicationFailure.class,
            f -> {
              assertThat(f.isNonRetryable()).isFalse();
              assertThat(f.getOriginalMessage()).startsWith("evaluation exited with code 137");
            });
    killer.join();
  }
}
