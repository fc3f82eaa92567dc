package dev.cotrain.api.session;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * {@code GET /api/sessions/{id}/checkpoints}: the checkpoints the trainer reported as written, by
 * step; a checkpoint the trainer has pruned since (it keeps the newest {@code keepLast}) is still
 * listed.
 */
record CheckpointsResponse(UUID sessionId, List<Checkpoint> checkpoints) {

  record Checkpoint(long step, String path, long bytes, Instant createdAt) {}
}
