package dev.cotrain.api.live;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The LISTEN connection and the WebSocket sends.
 *
 * @param pollTimeout how long one wait for notifications blocks; bounds how long shutdown waits
 * @param reconnectMinBackoff first wait before reconnecting a dropped LISTEN connection
 * @param reconnectMaxBackoff the wait doubles up to this
 * @param sendTimeLimit a subscriber whose send blocks longer than this is disconnected
 * @param sendBufferBytes a subscriber with more than this many bytes queued is disconnected
 */
@ConfigurationProperties("cotrain.live")
record LiveProperties(
    @DefaultValue("1s") Duration pollTimeout,
    @DefaultValue("500ms") Duration reconnectMinBackoff,
    @DefaultValue("30s") Duration reconnectMaxBackoff,
    @DefaultValue("10s") Duration sendTimeLimit,
    @DefaultValue("1048576") int sendBufferBytes) {}
