package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/** {@code GET /api/sessions/{id}/metrics}: the trainer's steps in step order. */
record MetricsResponse(UUID sessionId, List<MetricRow> metrics) {}
