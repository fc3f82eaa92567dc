package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/** {@code GET /api/sessions/{id}/syncs}: DiLoCo outer steps in order. */
record SyncsResponse(UUID sessionId, List<SyncRow> syncs) {}
