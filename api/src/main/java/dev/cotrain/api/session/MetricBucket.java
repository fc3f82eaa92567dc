package dev.cotrain.api.session;

import org.springframework.lang.Nullable;

/**
 * The steps {@code fromStep}..{@code toStep} of a downsampled curve: the loss's minimum, maximum
 * and last value in the bucket (so that a spike stays visible however few points are drawn), and
 * the last value of the other series.
 */
public record MetricBucket(
    long fromStep,
    long toStep,
    int steps,
    double minLoss,
    double maxLoss,
    double lastLoss,
    @Nullable Double lastAccuracy,
    @Nullable Double lastLearningRate,
    @Nullable Double lastTokensPerSecond) {}
