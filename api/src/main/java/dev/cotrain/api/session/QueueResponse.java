package dev.cotrain.api.session;

import java.util.List;

/** {@code GET /api/queue}: every waiting session, next to be placed first. */
record QueueResponse(List<QueueEntry> waiting) {}
