package dev.cotrain.api.session;

import java.util.List;
import java.util.UUID;

/** {@code GET /api/sessions/{id}/metrics/downsampled}: at most the asked number of buckets. */
record DownsampledMetricsResponse(UUID sessionId, List<MetricBucket> buckets) {}
