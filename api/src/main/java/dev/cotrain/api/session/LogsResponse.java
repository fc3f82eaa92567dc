package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/**
 * {@code GET /api/sessions/{id}/logs}: the last lines of one node's trainer log, oldest first
 * (empty until the trainer has written any).
 */
record LogsResponse(UUID sessionId, int node, List<String> lines) {}
