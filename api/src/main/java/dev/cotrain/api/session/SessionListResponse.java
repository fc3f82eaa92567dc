package dev.cotrain.api.session;

import java.util.List;

/** {@code GET /api/sessions}: newest first. */
record SessionListResponse(List<SessionResponse> sessions) {}
