package dev.cotrain.api.session;

import java.time.Instant;

/** One trainer step as stored in the metrics table. */
public record MetricRow(
    long step,
    long totalSteps,
    int epoch,
    double loss,
    Double accuracy,
    Double learningRate,
    Double gradNorm,
    Double tokensPerSecond,
    Instant recordedAt) {}
