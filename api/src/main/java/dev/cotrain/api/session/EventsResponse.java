package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/** {@code GET /api/sessions/{id}/events}: the session's transitions, oldest first. */
record EventsResponse(UUID sessionId, List<SessionEventRow> events) {}
