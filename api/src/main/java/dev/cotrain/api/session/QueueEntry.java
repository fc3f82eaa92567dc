package dev.cotrain.api.session;

import java.time.Instant;
import java.util.UUID;

/**
 * A waiting session in {@code GET /api/queue}: its {@code position} (from 1; null until the
 * allocator's first pass over it), and {@code reason}, what it waits for.
 */
record QueueEntry(
    Integer position,
    UUID sessionId,
    String name,
    String owner,
    int priority,
    int gpusPerNode,
    Instant waitingSince,
    String reason) {}
