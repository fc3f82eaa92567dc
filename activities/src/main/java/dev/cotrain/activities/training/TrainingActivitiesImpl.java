package dev.cotrain.activities.training;

import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.session.SessionStore.StepMetrics;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.TrainingActivities;
import dev.cotrain.workflows.session.TrainingSessionWorkflowImpl;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.client.ActivityCompletionException;
import io.temporal.failure.ApplicationFailure;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class TrainingActivitiesImpl implements TrainingActivities {

  private static final Logger log = LoggerFactory.getLogger(TrainingActivitiesImpl.class);

  /** Trainer exit codes (docs/protocol.md). */
  static final int EXIT_CONFIG = 2;

  static final int EXIT_DATA = 3;
  static final int EXIT_STOPPED = 4;

  static final String TRAINER_CRASHED = "TrainerCrashed";
  static final String TRAINER_FAILED = "TrainerFailed";

  private final StorageLayout layout;
  private final SessionStore store;
  private final TrainerLauncher launcher;
  private final Duration heartbeatEvery;
  private final TrainerEventParser parser = new TrainerEventParser();

  public TrainingActivitiesImpl(
      StorageLayout layout, SessionStore store, TrainerLauncher launcher, Duration heartbeatEvery) {
    this.layout = layout;
    this.store = store;
    this.launcher = launcher;
    this.heartbeatEvery = heartbeatEvery;
  }

  @Override
  public TrainingResult runTraining(RunTrainingInput input) {
    ActivityExecutionContext context = Activity.getExecutionContext();
    Path resume = resumePoint(context, Path.of(input.checkpointDir())).orElse(null);
    int attempt = context.getInfo().getAttempt();
    Path stderrLog = layout.trainingLogs(input.sessionId()).resolve("trainer.log");
    log.info(
        "session {} attempt {}: starting trainer{}",
        input.sessionId(),
        attempt,
        resume == null ? "" : " resuming from " + resume);

    Process process;
    try {
      process = launcher.start(Path.of(input.configPath()), resume, stderrLog);
    } catch (IOException e) {
      throw ApplicationFailure.newFailure(
          "could not start the trainer: " + e.getMessage(), TRAINER_CRASHED);
    }
    Run run = new Run(input.sessionId(), resume);
    ScheduledExecutorService ticker =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "heartbeat-" + input.sessionId());
              t.setDaemon(true);
              return t;
            });
    // Heartbeats come from this one thread at a steady pace, so a trainer that is busy or silent
    // (imports, data preparation) still shows as alive, and cancellation still arrives.
    AtomicReference<ActivityCompletionException> stopped = new AtomicReference<>();
    ticker.scheduleAtFixedRate(
        () -> {
          try {
            context.heartbeat(run.progress.get());
          } catch (ActivityCompletionException e) {
            if (stopped.compareAndSet(null, e)) {
              log.info("session {}: activity stopped ({}), stopping trainer", run.sessionId, e);
              launcher.stop(process);
            }
          }
        },
        0,
        heartbeatEvery.toMillis(),
        TimeUnit.MILLISECONDS);
    try {
      readEvents(process, run);
      int exit = process.waitFor();
      if (stopped.get() != null) {
        throw stopped.get();
      }
      return outcome(exit, run, stderrLog);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw ApplicationFailure.newFailure("worker interrupted", TRAINER_CRASHED);
    } finally {
      ticker.shutdownNow();
      if (process.isAlive()) {
        launcher.stop(process);
      }
    }
  }

  /** The checkpoint named by the last heartbeat, if it still exists inside this session's tree. */
  private static Optional<Path> resumePoint(ActivityExecutionContext context, Path checkpointDir) {
    return context
        .getHeartbeatDetails(TrainingProgress.class)
        .map(TrainingProgress::checkpointPath)
        .map(Path::of)
        .map(p -> p.toAbsolutePath().normalize())
        .filter(p -> p.startsWith(checkpointDir.toAbsolutePath().normalize()))
        .filter(Files::isDirectory);
  }

  private void readEvents(Process process, Run run) {
    try (BufferedReader stdout = process.inputReader(StandardCharsets.UTF_8)) {
      for (String line = stdout.readLine(); line != null; line = stdout.readLine()) {
        handle(parser.parse(line), run);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void handle(TrainerEvent event, Run run) {
    if (event instanceof TrainerEvent.Start start) {
      run.participants = Math.max(1, start.worldSize());
    } else if (event instanceof TrainerEvent.Step step) {
      run.progress.updateAndGet(
          p ->
              new TrainingProgress(
                  step.step(), step.totalSteps(), step.loss(), p.checkpointPath()));
      store(
          run,
          () ->
              store.recordStep(
                  run.sessionId,
                  new StepMetrics(
                      step.step(),
                      step.totalSteps(),
                      step.epoch(),
                      step.progress() * 100.0,
                      step.loss(),
                      step.accuracy(),
                      step.lr(),
                      step.gradNorm(),
                      step.batchSize(),
                      step.tokensPerS(),
                      run.participants)));
    } else if (event instanceof TrainerEvent.Checkpoint checkpoint) {
      run.progress.updateAndGet(
          p -> new TrainingProgress(p.step(), p.totalSteps(), p.loss(), checkpoint.path()));
      store(
          run,
          () ->
              store.recordCheckpoint(
                  run.sessionId, checkpoint.step(), checkpoint.path(), checkpoint.bytes()));
    } else if (event instanceof TrainerEvent.Error error) {
      run.error = error;
    } else if (event instanceof TrainerEvent.Done done) {
      run.done = done;
    } else if (event instanceof TrainerEvent.Other other) {
      log.debug("session {}: {}", run.sessionId, other.json());
    } else if (event instanceof TrainerEvent.LogLine line) {
      log.info("session {} trainer: {}", run.sessionId, line.text());
    }
  }

  /**
   * Training outlives a database outage: a failed metrics write is logged and skipped rather than
   * killing hours of training. The trainer's checkpoints, not these rows, are what resume needs.
   */
  private static void store(Run run, Runnable write) {
    try {
      write.run();
    } catch (RuntimeException e) {
      log.warn("session {}: could not store trainer event: {}", run.sessionId, e.getMessage());
    }
  }

  private static TrainingResult outcome(int exit, Run run, Path stderrLog) {
    if (exit == 0 && run.done != null) {
      return new TrainingResult(run.done.finalPath(), run.done.step(), run.done.loss());
    }
    String message = run.error != null ? run.error.message() : describeExit(exit, stderrLog);
    if (exit == EXIT_CONFIG) {
      throw ApplicationFailure.newNonRetryableFailure(
          message, TrainingSessionWorkflowImpl.CONFIG_ERROR);
    }
    if (exit == EXIT_DATA) {
      throw ApplicationFailure.newNonRetryableFailure(
          message, TrainingSessionWorkflowImpl.DATA_ERROR);
    }
    if (run.error != null && !run.error.retryable()) {
      // The trainer knows a rerun would fail the same way (e.g. the loss diverged).
      throw ApplicationFailure.newNonRetryableFailure(message, TRAINER_FAILED);
    }
    throw ApplicationFailure.newFailure(message, TRAINER_CRASHED);
  }

  private static String describeExit(int exit, Path stderrLog) {
    String what =
        switch (exit) {
          case 0 -> "trainer exited without a done event";
          case EXIT_STOPPED -> "trainer stopped after writing a checkpoint";
          default -> "trainer exited with code " + exit;
        };
    return lastLine(stderrLog).map(l -> what + ": " + l).orElse(what);
  }

  /** The last non-blank line of the trainer's stderr log (read from its last 8 KiB). */
  private static Optional<String> lastLine(Path file) {
    try (RandomAccessFile in = new RandomAccessFile(file.toFile(), "r")) {
      long from = Math.max(0, in.length() - 8192);
      byte[] tail = new byte[(int) (in.length() - from)];
      in.seek(from);
      in.readFully(tail);
      return new String(tail, StandardCharsets.UTF_8)
          .lines()
          .filter(l -> !l.isBlank())
          .reduce((a, b) -> b)
          .map(String::strip);
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** What one attempt has seen of its trainer so far. */
  private static final class Run {
    final String sessionId;
    final AtomicReference<TrainingProgress> progress;
    volatile int participants = 1;
    volatile TrainerEvent.Error error;
    volatile TrainerEvent.Done done;

    Run(String sessionId, Path resume) {
      this.sessionId = sessionId;
      this.progress =
          new AtomicReference<>(
              new TrainingProgress(0, 0, 0.0, resume == null ? null : resume.toString()));
    }
  }
}
