package dev.cotrain.api.session;

import java.time.Instant;
import org.springframework.lang.Nullable;

/** One trainer step as stored in the metrics table. */
public record MetricRow(
    long step,
    long totalSteps,
    int epoch,
    double loss,
    @Nullable Double accuracy,
    @Nullable Double learningRate,
    @Nullable Double gradNorm,
    @Nullable Double tokensPerSecond,
    Instant recordedAt) {}
