package dev.cotrain.activities.training;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;

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
  record Checkpoint(long step, String path, long bytes) implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Error(String kind, String message, boolean retryable) implements TrainerEvent {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Done(long step, double loss, String finalPath) implements TrainerEvent {}

  /** An event this worker does not act on (eval, sync, system, log, ...), kept for the log. */
  record Other(String event, String json) implements TrainerEvent {}

  /** A stdout line that is not a protocol event. */
  record LogLine(String text) implements TrainerEvent {}
}
