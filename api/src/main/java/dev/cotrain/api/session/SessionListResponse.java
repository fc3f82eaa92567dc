package dev.cotrain.api.session;

import java.util.List;
import org.springframework.lang.Nullable;

/**
 * {@code GET /api/sessions}: one page in the asked order; {@code total} counts every matching
 * session; {@code nextCursor}, when more follow, fetches the next page.
 */
record SessionListResponse(
    List<SessionResponse> sessions, long total, @Nullable String nextCursor) {}
