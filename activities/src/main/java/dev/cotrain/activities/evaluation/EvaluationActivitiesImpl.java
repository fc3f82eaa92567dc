package dev.cotrain.activities.evaluation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.registry.EvaluationActivities;
import dev.cotrain.workflows.session.FailureTypes;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.client.ActivityCompletionException;
import io.temporal.failure.ApplicationFailure;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs {@code python -m cotrain_core.evaluate} on this worker and answers its {@code eval} event.
 * Exit 2 or 3 (the model or the data is unusable) fails for good; anything else may be retried.
 */
public final class EvaluationActivitiesImpl implements EvaluationActivities {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int EXIT_ARGS = 2;
  private static final int EXIT_DATA = 3;

  private final List<String> python;
  private final Duration heartbeatEvery;
  private final StorageLayout layout;

  public EvaluationActivitiesImpl(
      List<String> python, Duration heartbeatEvery, StorageLayout layout) {
    this.python = List.copyOf(python);
    this.heartbeatEvery = heartbeatEvery;
    this.layout = layout;
  }

  @Override
  public EvaluationResult evaluate(EvaluateInput input) {
    ActivityExecutionContext context = Activity.getExecutionContext();
    String data = input.data() != null ? input.data() : dataset(input.dataset()).toString();
    List<String> command = new ArrayList<>(python);
    command.addAll(
        List.of(
            "-m",
            "cotrain_core.evaluate",
            "--model",
            input.modelPath(),
            "--data",
            data,
            "--card",
            input.setName()));
    Path stderr;
    Process process;
    try {
      stderr = Files.createTempFile("cotrain-evaluate", ".log");
      ProcessBuilder builder =
          new ProcessBuilder(command)
              .redirectInput(ProcessBuilder.Redirect.PIPE)
              .redirectError(stderr.toFile());
      builder.environment().put("PYTHONUNBUFFERED", "1");
      if (input.devices() != null && !input.devices().isEmpty()) {
        builder
            .environment()
            .put(
                "CUDA_VISIBLE_DEVICES",
                String.join(",", input.devices().stream().map(String::valueOf).toList()));
      }
      process = builder.start();
    } catch (IOException e) {
      throw ApplicationFailure.newFailure(
          "could not start the evaluation: " + e.getMessage(), "EvaluationCrashed");
    }
    AtomicReference<JsonNode> result = new AtomicReference<>();
    AtomicReference<String> error = new AtomicReference<>();
    Thread reader = new Thread(() -> read(process, result, error), "evaluate-" + process.pid());
    reader.setDaemon(true);
    reader.start();
    try {
      // Heartbeats while it runs: a dead worker is noticed, and a cancel stops the process.
      while (!process.waitFor(heartbeatEvery.toMillis(), TimeUnit.MILLISECONDS)) {
        context.heartbeat(null);
      }
      reader.join(Duration.ofSeconds(10).toMillis());
      int exit = process.exitValue();
      JsonNode eval = result.get();
      if (exit == 0 && eval != null) {
        return new EvaluationResult(
            eval.path("loss").asDouble(),
            eval.path("perplexity").asDouble(),
            eval.path("accuracy").isNumber() ? eval.path("accuracy").asDouble() : null);
      }
      String message =
          error.get() != null ? error.get() : "evaluation exited with code " + exit + tail(stderr);
      if (exit == EXIT_ARGS || exit == EXIT_DATA) {
        throw ApplicationFailure.newNonRetryableFailure(message, FailureTypes.EVALUATION_FAILED);
      }
      throw ApplicationFailure.newFailure(message, "EvaluationCrashed");
    } catch (ActivityCompletionException e) {
      throw e; // cancelled, or the workflow is gone: the finally stops the process
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw ApplicationFailure.newFailure("worker interrupted", "EvaluationCrashed");
    } finally {
      if (process.isAlive()) {
        process.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
      }
      try {
        Files.deleteIfExists(stderr);
      } catch (IOException e) {
        // a temp file left behind
      }
    }
  }

  /**
   * A file under datasets/raw, after links are followed: a set registered through the API cannot
   * name a file elsewhere, even through a link made after it was registered.
   */
  private Path dataset(String relative) {
    Path raw = layout.rawDatasets();
    try {
      Path real = raw.resolve(relative).toRealPath();
      if (!real.startsWith(raw.toRealPath()) || !Files.isRegularFile(real)) {
        throw ApplicationFailure.newNonRetryableFailure(
            "the evaluation set's file is not a file under datasets/raw: " + relative,
            FailureTypes.EVALUATION_FAILED);
      }
      return real;
    } catch (IOException e) {
      throw ApplicationFailure.newNonRetryableFailure(
          "the evaluation set's file is missing: datasets/raw/" + relative,
          FailureTypes.EVALUATION_FAILED);
    }
  }

  /** The {@code eval} event, or the {@code error} event's message, from the process's stdout. */
  private static void read(
      Process process, AtomicReference<JsonNode> result, AtomicReference<String> error) {
    try (BufferedReader stdout = process.inputReader(StandardCharsets.UTF_8)) {
      for (String line = stdout.readLine(); line != null; line = stdout.readLine()) {
        try {
          JsonNode event = JSON.readTree(line);
          if ("eval".equals(event.path("event").asText())) {
            result.set(event);
          } else if ("error".equals(event.path("event").asText())) {
            error.set(event.path("message").asText());
          }
        } catch (IOException e) {
          // not an event: ignored, as the trainer's other output is
        }
      }
    } catch (IOException e) {
      // the process is gone; its exit code says how
    }
  }

  private static String tail(Path stderr) {
    try {
      List<String> lines = Files.readAllLines(stderr, StandardCharsets.UTF_8);
      for (int i = lines.size() - 1; i >= 0; i--) {
        if (!lines.get(i).isBlank()) {
          String line = lines.get(i).strip();
          return ": " + (line.length() > 2000 ? line.substring(0, 2000) + "…" : line);
        }
      }
    } catch (IOException e) {
      // nothing to add
    }
    return "";
  }
}
