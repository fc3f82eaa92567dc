package dev.cotrain.activities.training;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Starts {@code <python> -m cotrain_core.train --config <file>} with stdout piped (the event
 * stream) and stderr appended to the session's trainer log, and stops it: SIGTERM (the trainer
 * checkpoints and exits 4), then SIGKILL for the whole process tree after a grace period. The
 * trainer resumes by itself from the newest checkpoint whose manifest verifies.
 */
public final class TrainerLauncher {

  private final List<String> python;
  private final Duration stopGrace;

  /**
   * @param python the interpreter command, e.g. {@code [".venv/bin/python"]}; tests may pass any
   *     command that speaks the event protocol.
   */
  public TrainerLauncher(List<String> python, Duration stopGrace) {
    this.python = List.copyOf(python);
    this.stopGrace = stopGrace;
  }

  /** Where a node of a session of several nodes meets the others (node 0's address and port). */
  record Rendezvous(int nodeRank, String masterAddr, int masterPort) {}

  /**
   * {@code devices}: the device ids the attempt holds, passed as {@code CUDA_VISIBLE_DEVICES}
   * (empty: a CPU slot, the variable is left as the worker has it); {@code rendezvous}, for a
   * session of several nodes, is passed as {@code NODE_RANK}, {@code MASTER_ADDR} and {@code
   * MASTER_PORT} (null: one node, the trainer picks a free local port).
   */
  Process start(Path config, Path stderrLog, List<Integer> devices, Rendezvous rendezvous)
      throws IOException {
    List<String> command = new ArrayList<>(python);
    command.addAll(List.of("-m", "cotrain_core.train", "--config", config.toString()));
    Files.createDirectories(stderrLog.getParent());
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .redirectInput(ProcessBuilder.Redirect.PIPE)
            .redirectError(ProcessBuilder.Redirect.appendTo(stderrLog.toFile()));
    builder.environment().put("PYTHONUNBUFFERED", "1");
    if (rendezvous != null) {
      builder.environment().put("NODE_RANK", String.valueOf(rendezvous.nodeRank()));
      builder.environment().put("MASTER_ADDR", rendezvous.masterAddr());
      builder.environment().put("MASTER_PORT", String.valueOf(rendezvous.masterPort()));
    }
    if (devices != null && !devices.isEmpty()) {
      builder
          .environment()
          .put(
              "CUDA_VISIBLE_DEVICES",
              String.join(",", devices.stream().map(String::valueOf).toList()));
    }
    return builder.start();
  }

  /**
   * SIGTERM, then SIGKILL for the trainer and its descendants after the grace period; returns once
   * the trainer has exited. Signals go through {@link ProcessHandle}, not {@link
   * Process#destroy()}, which would also close the pipe that carries the trainer's last events (the
   * checkpoint it writes on the way out).
   */
  void stop(Process process) {
    List<ProcessHandle> children = process.descendants().toList();
    ProcessHandle trainer = process.toHandle();
    trainer.destroy();
    try {
      if (!process.waitFor(stopGrace.toMillis(), TimeUnit.MILLISECONDS)) {
        trainer.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      trainer.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    children.forEach(ProcessHandle::destroyForcibly);
  }
}
