package dev.cotrain.activities.training;

import dev.cotrain.activities.session.OrderedWriter;
import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.session.SessionStore.StepMetrics;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.schema.SessionEvent;
import dev.cotrain.workflows.session.FailureTypes;
import dev.cotrain.workflows.session.SessionStatus;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingActivities;
import dev.cotrain.workflows.session.TrainingSessionWorkflow;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.TrainerReport;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.client.ActivityCompletionException;
import io.temporal.failure.ApplicationFailure;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class TrainingActivitiesImpl implements TrainingActivities {

  private static final Logger log = LoggerFactory.getLogger(TrainingActivitiesImpl.class);

  /** Trainer exit codes (docs/protocol.md). */
  static final int EXIT_CONFIG = 2;

  static final int EXIT_DATA = 3;
  static final int EXIT_STOPPED = 4;

  /** Metrics that may wait in memory for the database, per attempt (about 200 bytes each). */
  static final int WRITE_CAPACITY = 200_000;

  /** How long an ending attempt waits for its metrics to reach a database that is down. */
  static final Duration FLUSH_LIMIT = Duration.ofMinutes(10);

  /** Trainer messages carried in failures are cut to this many chars; the log keeps them whole. */
  static final int MAX_MESSAGE_CHARS = 8 * 1024;

  private final StorageLayout layout;
  private final SessionStore store;
  private final TrainerLauncher launcher;
  private final Duration heartbeatEvery;
  private final TrainerEventParser parser = new TrainerEventParser();

  /** Trainers of the attempts running on this worker, for {@link #drain()}. */
  private final Set<Process> trainers = ConcurrentHashMap.newKeySet();

  private volatile boolean draining;

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
    Path stderrLog =
        layout
            .trainingLogs(input.sessionId())
            .resolve(
                input.nodeRank() == 0 ? "trainer.log" : "trainer-node" + input.nodeRank() + ".log");
    log.info(
        "session {} attempt {}: starting trainer on devices {}",
        input.sessionId(),
        input.attempt(),
        input.devices());
    if (draining) {
      throw preempted("the worker is stopping", new Run(input));
    }
    Process process;
    try {
      process =
          launcher.start(
              Path.of(input.configPath()),
              stderrLog,
              input.devices(),
              input.nodes() > 1
                  ? new TrainerLauncher.Rendezvous(
                      input.nodeRank(), input.masterAddr(), input.masterPort())
                  : null);
    } catch (IOException e) {
      throw ApplicationFailure.newFailure(
          "could not start the trainer: " + e.getMessage(), FailureTypes.TRAINER_CRASHED);
    }
    trainers.add(process);
    if (draining) {
      launcher.stop(process); // drain() ran between the check above and the add
    }
    Run run = new Run(input);
    if (run.node == 0) {
      report(context, run, SessionStatus.STARTING, null);
    }
    OrderedWriter writer = new OrderedWriter("session-" + input.sessionId(), WRITE_CAPACITY);
    ScheduledExecutorService ticker =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "heartbeat-" + input.sessionId());
              t.setDaemon(true);
              return t;
            });
    // Heartbeats come from this one thread at a steady pace, so a trainer that is busy or silent
    // (imports, data preparation) still shows as alive, and cancellation still arrives. They go
    // on while a stopping trainer writes its checkpoint, which may take longer than the timeout.
    AtomicReference<ActivityCompletionException> stopped = new AtomicReference<>();
    // Whether the trainer had already exited when the stop came: its own failure is then the news
    // (a gang stops its other nodes when one fails; the one that died first tells why).
    AtomicBoolean exitedFirst = new AtomicBoolean();
    ticker.scheduleAtFixedRate(
        () -> {
          try {
            context.heartbeat(run.progress.get());
          } catch (ActivityCompletionException e) {
            if (stopped.compareAndSet(null, e)) {
              exitedFirst.set(!process.isAlive());
              log.info("session {}: activity stopped ({}), stopping trainer", run.sessionId, e);
              Thread stopper = new Thread(() -> launcher.stop(process), "stop-" + run.sessionId);
              stopper.setDaemon(true);
              stopper.start();
            }
          } catch (RuntimeException e) {
            log.warn("session {}: heartbeat failed: {}", run.sessionId, e.toString());
          }
        },
        0,
        heartbeatEvery.toMillis(),
        TimeUnit.MILLISECONDS);
    try {
      readEvents(process, run, writer, context);
      int exit = process.waitFor();
      if (!writer.flush(FLUSH_LIMIT)) {
        log.warn(
            "session {}: {} metrics could not be stored within {}",
            run.sessionId,
            writer.pending(),
            FLUSH_LIMIT);
      }
      if (stopped.get() != null && !(exitedFirst.get() && exit != 0)) {
        throw stopped.get();
      }
      return outcome(exit, run, stderrLog);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw ApplicationFailure.newFailureWithCause(
          "worker interrupted", FailureTypes.TRAINER_CRASHED, null, run.progress.get());
    } finally {
      ticker.shutdownNow();
      if (process.isAlive()) {
        launcher.stop(process);
      }
      trainers.remove(process);
      writer.close();
    }
  }

  /**
   * Stops every trainer of this worker for a shutdown: each gets SIGTERM, checkpoints and exits,
   * and its attempt fails as preempted, which sends the session back to the queue at once. Returns
   * when they have all exited (or were killed after the grace period).
   */
  public void drain() {
    draining = true;
    List<Thread> stoppers =
        trainers.stream()
            .map(
                p -> {
                  Thread t = new Thread(() -> launcher.stop(p), "drain-" + p.pid());
                  t.start();
                  return t;
                })
            .toList();
    for (Thread t : stoppers) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private void readEvents(
      Process process, Run run, OrderedWriter writer, ActivityExecutionContext context) {
    try (BufferedReader stdout = process.inputReader(StandardCharsets.UTF_8)) {
      for (String line = stdout.readLine(); line != null; line = stdout.readLine()) {
        handle(parser.parse(line), run, writer, context);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void handle(
      TrainerEvent event, Run run, OrderedWriter writer, ActivityExecutionContext context) {
    if (event instanceof TrainerEvent.Start start) {
      run.participants = Math.max(1, start.worldSize());
      long resumed = start.resumedFrom() == null ? -1 : start.resumedFrom();
      run.progress.updateAndGet(
          p -> new TrainingProgress(p.step(), start.totalSteps(), p.loss(), resumed, null));
      if (run.node == 0) {
        report(context, run, SessionStatus.RUNNING, start);
      }
    } else if (event instanceof TrainerEvent.Step step) {
      run.progress.updateAndGet(
          p ->
              new TrainingProgress(
                  step.step(),
                  step.totalSteps(),
                  step.loss(),
                  p.checkpointStep(),
                  p.checkpointPath()));
      StepMetrics metrics =
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
              run.participants);
      writer.submit(() -> store.recordStep(run.sessionId, metrics));
    } else if (event instanceof TrainerEvent.Checkpoint checkpoint) {
      run.progress.updateAndGet(
          p ->
              new TrainingProgress(
                  p.step(), p.totalSteps(), p.loss(), checkpoint.step(), checkpoint.path()));
      writer.submit(
          () ->
              store.recordCheckpoint(
                  run.sessionId,
                  checkpoint.step(),
                  checkpoint.path(),
                  checkpoint.bytes(),
                  checkpoint.evalLoss()));
    } else if (event instanceof TrainerEvent.CheckpointDeleted deleted) {
      writer.submit(() -> store.checkpointDeleted(run.sessionId, deleted.step()));
    } else if (event instanceof TrainerEvent.SystemSample sample) {
      SessionEvent.SystemSample stored =
          new SessionEvent.SystemSample(
              run.sessionId,
              run.attempt,
              run.node,
              ++run.systemSamples,
              run.progress.get().step(),
              sample.cpuPercent(),
              sample.rssBytes(),
              sample.diskReadBytes(),
              sample.diskWriteBytes(),
              sample.netSentBytes(),
              sample.netRecvBytes(),
              sample.gpus() == null
                  ? List.of()
                  : sample.gpus().stream()
                      .map(
                          g ->
                              new SessionEvent.Gpu(
                                  g.index(),
                                  g.utilization(),
                                  g.memoryUsedBytes(),
                                  g.memoryTotalBytes()))
                      .toList());
      writer.submit(() -> store.recordSystem(stored));
    } else if (event instanceof TrainerEvent.Sync sync) {
      SessionEvent.Sync stored =
          new SessionEvent.Sync(
              run.sessionId,
              sync.outerStep(),
              sync.step(),
              sync.participants(),
              sync.bytes(),
              sync.seconds());
      writer.submit(() -> store.recordSync(stored));
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
   * Tells the workflow that the trainer was launched (STARTING) or started training (RUNNING). A
   * lost report only delays the status the row shows, so a failure is logged, not fatal.
   */
  private static void report(
      ActivityExecutionContext context, Run run, SessionStatus phase, TrainerEvent.Start start) {
    try {
      context
          .getWorkflowClient()
          .newWorkflowStub(TrainingSessionWorkflow.class, TaskQueues.workflowId(run.sessionId))
          .trainerReport(
              new TrainerReport(
                  run.attempt,
                  phase,
                  start == null ? null : start.resumedFrom(),
                  start == null ? 0 : start.totalSteps()));
    } catch (RuntimeException e) {
      log.warn("session {}: could not report {}: {}", run.sessionId, phase, e.getMessage());
    }
  }

  private static TrainingResult outcome(int exit, Run run, Path stderrLog) {
    if (exit == 0 && run.done != null) {
      return new TrainingResult(
          run.done.finalPath(),
          run.done.step(),
          run.done.loss(),
          run.done.parameters(),
          run.done.dataFingerprint(),
          run.done.validationPath());
    }
    if (exit == 0 && run.node > 0) {
      return new TrainingResult(null, 0, 0.0); // node 0 reports the session's result
    }
    String message =
        bounded(run.error != null ? run.error.message() : describeExit(exit, stderrLog));
    TrainingProgress progress = run.progress.get();
    if (exit == EXIT_CONFIG) {
      throw ApplicationFailure.newNonRetryableFailureWithCause(
          message, FailureTypes.CONFIG_ERROR, null, progress);
    }
    if (exit == EXIT_DATA) {
      throw ApplicationFailure.newNonRetryableFailureWithCause(
          message, FailureTypes.DATA_ERROR, null, progress);
    }
    if (run.error != null && !run.error.retryable()) {
      // The trainer knows a rerun would fail the same way (e.g. the loss diverged).
      throw ApplicationFailure.newNonRetryableFailureWithCause(
          message, FailureTypes.TRAINER_FAILED, null, progress);
    }
    if (exit == EXIT_STOPPED) {
      throw preempted(message, run);
    }
    boolean peer = run.error != null && "peer".equals(run.error.kind());
    throw ApplicationFailure.newFailureWithCause(
        message, peer ? FailureTypes.PEER_LOST : FailureTypes.TRAINER_CRASHED, null, progress);
  }

  private static ApplicationFailure preempted(String message, Run run) {
    return ApplicationFailure.newFailureWithCause(
        message, FailureTypes.TRAINER_PREEMPTED, null, run.progress.get());
  }

  private static String describeExit(int exit, Path stderrLog) {
    String what =
        switch (exit) {
          case 0 -> "trainer exited without a done event";
          case EXIT_STOPPED -> "trainer stopped by a signal after writing a checkpoint";
          default -> "trainer exited with code " + exit;
        };
    return lastLine(stderrLog).map(l -> what + ": " + l).orElse(what);
  }

  private static String bounded(String message) {
    return message.length() <= MAX_MESSAGE_CHARS
        ? message
        : message.substring(0, MAX_MESSAGE_CHARS) + " … (cut; see the trainer log)";
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
    final int attempt;
    final int node;
    final AtomicReference<TrainingProgress> progress =
        new AtomicReference<>(new TrainingProgress(0, 0, 0.0, -1, null));
    volatile int participants = 1;
    int systemSamples; // only touched by the thread reading the trainer's events
    volatile TrainerEvent.Error error;
    volatile TrainerEvent.Done done;

    Run(RunTrainingInput input) {
      this.sessionId = input.sessionId();
      this.attempt = input.attempt();
      this.node = input.nodeRank();
    }
  }
}
