package dev.cotrain.api.session;

import java.time.Instant;
import java.util.UUID;
import org.springframework.lang.Nullable;

/**
 * A waiting session in {@code GET /api/queue}: its {@code position} (from 1; null until the
 * allocator's first pass over it), and {@code reason}, what it waits for.
 */
record QueueEntry(
    @Nullable Integer position,
    UUID sessionId,
    String name,
    String owner,
    int priority,
    int gpusPerNode,
    Instant waitingSince,
    @Nullable String reason) {}
