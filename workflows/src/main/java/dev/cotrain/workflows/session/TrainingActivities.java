package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;

/** Runs the Python trainer on the training task queue. */
@ActivityInterface
public interface TrainingActivities {

  /**
   * One attempt: launches {@code python -m cotrain_core.train --config <configPath>}, which resumes
   * from the newest checkpoint on disk whose manifest verifies; signals the workflow when the
   * trainer is launched (STARTING) and when it starts training (RUNNING); heartbeats {@link
   * TrainingProgress} every couple of seconds and stores each step's metrics in PostgreSQL (which
   * relays them to WebSocket clients).
   *
   * <p>Not retried by the server: the workflow decides about retries, because only it can tell
   * whether an attempt got further than the one before. Failures: {@link FailureTypes#CONFIG_ERROR}
   * and {@link FailureTypes#DATA_ERROR} (trainer exit 2 and 3) and {@link
   * FailureTypes#TRAINER_FAILED} are the user's to fix; {@link FailureTypes#TRAINER_CRASHED} and
   * {@link FailureTypes#TRAINER_PREEMPTED} are worth another attempt. Every failure carries the
   * attempt's {@link TrainingProgress} as its details. Needs a heartbeat timeout: a dead worker is
   * noticed by the missing heartbeats. On cancellation (pause, cancel) the trainer gets SIGTERM,
   * checkpoints and exits, or is killed after a grace period; the activity reports the cancellation
   * only once no process of the attempt is left.
   */
  TrainingResult runTraining(RunTrainingInput input);

  /**
   * {@code attempt} is the workflow's attempt number, 1-based; {@code devices} the device ids the
   * attempt holds on its host, passed to the trainer as {@code CUDA_VISIBLE_DEVICES} (empty: a CPU
   * slot, the variable is left alone). A session of several {@code nodes} runs one activity per
   * node: this one is node {@code nodeRank}, and all meet at {@code masterAddr}:{@code masterPort}
   * (passed as NODE_RANK, MASTER_ADDR, MASTER_PORT). Node 0 reports progress, metrics and
   * checkpoints; every node reports its machine samples.
   */
  record RunTrainingInput(
      String sessionId,
      int attempt,
      String configPath,
      String checkpointDir,
      java.util.List<Integer> devices,
      int nodeRank,
      int nodes,
      String masterAddr,
      Integer masterPort) {

    /** A session of one node. */
    public RunTrainingInput(
        String sessionId,
        int attempt,
        String configPath,
        String checkpointDir,
        java.util.List<Integer> devices) {
      this(sessionId, attempt, configPath, checkpointDir, devices, 0, 1, null, null);
    }
  }

  /**
   * What a completed attempt left: the exported model, and for the registry its parameter count,
   * the fingerprint of the data it trained on and the held-out split to evaluate it on (null where
   * the trainer did not report them).
   */
  record TrainingResult(
      String finalModelPath,
      long steps,
      double finalLoss,
      Long parameters,
      String dataFingerprint,
      String validationPath) {

    public TrainingResult(String finalModelPath, long steps, double finalLoss) {
      this(finalModelPath, steps, finalLoss, null, null, null);
    }
  }

  /**
   * Heartbeat details and failure details: the newest step, and the newest checkpoint the trainer
   * reported ({@code checkpointStep} -1 when none, neither written nor resumed from).
   */
  record TrainingProgress(
      long step, long totalSteps, double loss, long checkpointStep, String checkpointPath) {}
}
