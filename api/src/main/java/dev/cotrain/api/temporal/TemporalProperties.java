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
 */
@ConfigurationProperties("cotrain.temporal")
record TemporalProperties(
    @DefaultValue("127.0.0.1:7233") String target,
    @DefaultValue("default") String namespace,
    @DefaultValue("10s") Duration rpcTimeout,
    @DefaultValue("15s") Duration startTimeout) {}
