package dev.cotrain.api.session;

import java.time.Instant;

/** A DiLoCo outer step of a session: ranks taking part, bytes all-reduced by each, seconds. */
record SyncRow(
    long outerStep, long step, int participants, long bytes, double seconds, Instant recordedAt) {}
