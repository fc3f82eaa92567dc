package dev.cotrain.api.session;

import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.springframework.lang.Nullable;

/**
 * {@code GET /api/sessions/{id}/checkpoints}: the checkpoints the trainer reported as written, by
 * step, with the eval loss it measured at each and, for one it deleted since (it keeps the newest
 * {@code keepLast} and the best by eval loss), when; {@code bytesOnDisk} sums those still kept.
 */
record CheckpointsResponse(UUID sessionId, long bytesOnDisk, List<Checkpoint> checkpoints) {

  CheckpointsResponse(UUID sessionId, List<Checkpoint> checkpoints) {
    this(
        sessionId,
        checkpoints.stream().filter(c -> c.deletedAt() == null).mapToLong(Checkpoint::bytes).sum(),
        checkpoints);
  }

  record Checkpoint(
      long step,
      String path,
      long bytes,
      Instant createdAt,
      @Nullable Double evalLoss,
      @Nullable Instant deletedAt) {}
}
