package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Runs the Python trainer on the training task queue. */
@ActivityInterface
public interface TrainingActivities {

  /**
   * Launches {@code python -m cotrain_core.train --config <configPath>}, heartbeats {@link
   * TrainingProgress} while it runs and stores each step's metrics in PostgreSQL (which relays them
   * to WebSocket clients). A retry resumes from the newest checkpoint named in the last heartbeat,
   * or else the newest valid one on disk. Trainer exit codes 2 (config) and 3 (data) fail
   * non-retryably with the trainer's message; any other failure is retryable. Needs a heartbeat
   * timeout: a dead worker is noticed by the missing heartbeats. On cancellation the trainer gets
   * SIGTERM, then SIGKILL after a grace period.
   */
  TrainingResult runTraining(RunTrainingInput input);

  record RunTrainingInput(String sessionId, String configPath, String checkpointDir) {}

  record TrainingResult(String finalModelPath, long steps, double finalLoss) {}

  /** Heartbeat details: the newest step and checkpoint, read back by a retry to resume. */
  record TrainingProgress(long step, long totalSteps, double loss, String checkpointPath) {}
}
