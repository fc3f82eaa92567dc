package dev.cotrain.api.temporal;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Where the Temporal frontend is.
 *
 * @param target host:port of the Temporal frontend
 * @param namespace the Temporal namespace sessions run in
 * @param rpcTimeout how long one call to Temporal may take
 * @param startTimeout how long starting a workflow may keep retrying before the API answers 503
 * @param updateTimeout how long a pause, resume or cancel may wait for a worker to take it
 * @param configCheckTimeout how long a create waits for a worker to judge the session's config by
 *     the trainer's rules before it accepts the session unchecked
 * @param heartbeatTimeout how long a session's trainer activity may go without a heartbeat before
 *     it counts as lost and is retried (its worker heartbeats every 2 s)
 * @param metricsInterval how often the Temporal client's metrics reach the Prometheus endpoint
 * @param uiUrl where browsers reach the Temporal Web UI, for the dashboard's links to workflows
 */
@ConfigurationProperties("cotrain.temporal")
public record TemporalProperties(
    @DefaultValue("127.0.0.1:7233") String target,
    @DefaultValue("default") String namespace,
    @DefaultValue("10s") Duration rpcTimeout,
    @DefaultValue("15s") Duration startTimeout,
    @DefaultValue("15s") Duration updateTimeout,
    @DefaultValue("3s") Duration configCheckTimeout,
    @DefaultValue("10s") Duration heartbeatTimeout,
    @DefaultValue("10s") Duration metricsInterval,
    @DefaultValue("http://localhost:8233") String uiUrl) {}
