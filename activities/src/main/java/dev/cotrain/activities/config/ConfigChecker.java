package dev.cotrain.activities.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The trainer's config rules, asked of one long-lived {@code <python> -m cotrain_core.check}
 * process: one JSON line per config in, one verdict per line out (its module docstring). The
 * process is started on first use (or {@link #warmUp}) and again after it died or stopped
 * answering, so a check costs a pipe round trip, not a Python start. Checks take turns.
 */
public final class ConfigChecker implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(ConfigChecker.class);

  private final List<String> command;
  private final Duration answerTimeout;
  private final ObjectMapper json = new ObjectMapper();

  private Process process;
  private BufferedWriter requests;
  private BlockingQueue<Answer> answers;

  /** One line of the checker's output; {@code line} null when its output ended. */
  private record Answer(String line) {}

  /**
   * @param python the interpreter command, as for the trainer (e.g. {@code [".venv/bin/python"]})
   * @param answerTimeout how long one answer may take before the checker is restarted
   */
  public ConfigChecker(List<String> python, Duration answerTimeout) {
    this.command = new ArrayList<>(python);
    this.command.addAll(List.of("-m", "cotrain_core.check"));
    this.answerTimeout = answerTimeout;
  }

  /** Starts the checker now, so that the first create does not wait for it; logs a failure. */
  public synchronized void warmUp() {
    try {
      ensureStarted();
    } catch (IOException e) {
      log.warn("Could not start the config checker {}: {}", command, e.getMessage());
    }
  }

  /** The trainer's verdict on a config text; UNCHECKED when the checker cannot answer. */
  public synchronized ConfigVerdict check(String toml) {
    try {
      ensureStarted();
      requests.write(json.writeValueAsString(Map.of("toml", toml)));
      requests.newLine();
      requests.flush();
      Answer answer = answers.poll(answerTimeout.toMillis(), TimeUnit.MILLISECONDS);
      if (answer == null || answer.line() == null) {
        stop();
        return ConfigVerdict.unchecked(
            answer == null
                ? "the config checker gave no answer within " + answerTimeout
                : "the config checker exited");
      }
      JsonNode verdict = json.readTree(answer.line());
      return verdict.path("ok").asBoolean()
          ? ConfigVerdict.accepted()
          : ConfigVerdict.refused(verdict.path("message").asText());
    } catch (JsonProcessingException e) {
      stop();
      return ConfigVerdict.unchecked("the config checker answered nonsense: " + e.getMessage());
    } catch (IOException e) {
      stop();
      return ConfigVerdict.unchecked("the config checker failed: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return ConfigVerdict.unchecked("interrupted");
    }
  }

  private void ensureStarted() throws IOException {
    if (process != null && process.isAlive()) {
      return;
    }
    ProcessBuilder builder =
        new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT);
    builder.environment().put("PYTHONIOENCODING", "utf-8");
    Process started = builder.start();
    BlockingQueue<Answer> queue = new LinkedBlockingQueue<>();
    Thread reader =
        new Thread(
            () -> {
              try (BufferedReader out =
                  new BufferedReader(
                      new InputStreamReader(started.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = out.readLine()) != null; ) {
                  queue.add(new Answer(line));
                }
              } catch (IOException e) {
                // the process was stopped; the end of its output says so below
              }
              queue.add(new Answer(null));
            },
            "cotrain-config-checker");
    reader.setDaemon(true);
    reader.start();
    process = started;
    answers = queue;
    requests =
        new BufferedWriter(
            new OutputStreamWriter(started.getOutputStream(), StandardCharsets.UTF_8));
    log.info("Config checker started: {} (pid {})", command, started.pid());
  }

  private void stop() {
    if (process != null) {
      process.destroyForcibly();
      process = null;
    }
  }

  @Override
  public synchronized void close() {
    stop();
  }
}
