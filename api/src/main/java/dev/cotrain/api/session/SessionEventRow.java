package dev.cotrain.api.session;

import java.time.Instant;
import org.springframework.lang.Nullable;

/**
 * One lifecycle transition of a session (docs/lifecycle.md): {@code id} increases with each; {@code
 * cause} is a keyword, {@code message} the human-readable detail, {@code attempt} the trainer
 * attempt it belongs to (0 before the first).
 */
public record SessionEventRow(
    long id,
    Instant at,
    String status,
    @Nullable String previousStatus,
    String cause,
    int attempt,
    @Nullable String message) {}
