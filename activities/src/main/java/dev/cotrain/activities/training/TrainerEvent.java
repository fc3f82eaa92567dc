package dev.cotrain.activities.training;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import java.util.List;

/**
 * The trainer's JSON-lines events (docs/protocol.md) that the worker acts on. Lines that are not
 * protocol JSON become {@link LogLine}s; they are kept, never dropped.
 */
sealed interface TrainerEvent {

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Start(long totalSteps, int worldSize, Long resumedFrom) implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Step(
      long step,
      long totalSteps,
      int epoch,
      double progress,
      double loss,
      Double accuracy,
      Double lr,
      Double gradNorm,
      Integer batchSize,
      Double tokensPerS)
      implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Checkpoint(long step, String path, long bytes, Double evalLoss) implements TrainerEvent {}

  /** The trainer deleted a checkpoint it no longer keeps (retention, docs/config.md). */
  @JsonIgnoreProperties(ignoreUnknown = true)
  record CheckpointDeleted(long step, String path) implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Error(String kind, String message, boolean retryable) implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Done(
      long step,
      double loss,
      String finalPath,
      Long parameters,
      String dataFingerprint,
      String validationPath)
      implements TrainerEvent {}

  /** The trainer's machine sample ({@code system}); counters are machine totals since boot. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  record SystemSample(
      Double cpuPercent,
      Long rssBytes,
      Long diskReadBytes,
      Long diskWriteBytes,
      Long netSentBytes,
      Long netRecvBytes,
      List<Gpu> gpus)
      implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Gpu(int index, Double utilization, long memoryUsedBytes, long memoryTotalBytes) {}

  /** A DiLoCo outer step ({@code sync}). */
  @JsonIgnoreProperties(ignoreUnknown = true)
  record Sync(long outerStep, long step, int participants, long bytes, double seconds)
      implements TrainerEvent {}

  /** An event this worker does not act on (eval, log, ...), kept for the log. */
  record Other(String event, String json) implements TrainerEvent {}

  /** A stdout line that is not a protocol event. */
  record LogLine(String text) implements TrainerEvent {}
}
