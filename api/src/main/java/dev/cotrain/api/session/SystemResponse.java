package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/** {@code GET /api/sessions/{id}/system}: machine samples, oldest first. */
record SystemResponse(UUID sessionId, List<SystemSampleRow> samples) {}
