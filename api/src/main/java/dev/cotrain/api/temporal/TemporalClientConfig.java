package dev.cotrain.api.temporal;

import com.uber.m3.tally.RootScopeBuilder;
import com.uber.m3.tally.Scope;
import io.micrometer.core.instrument.MeterRegistry;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.common.reporter.MicrometerClientStatsReporter;
import io.temporal.serviceclient.RpcRetryOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.serviceclient.rpcretry.DefaultStubServiceOperationRpcRetryOptions;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The Temporal client, built from {@link TemporalProperties} rather than by
 * temporal-spring-boot-starter (which would bring the Boot 2.7 BOM and the test server).
 */
@Configuration(proxyBeanMethods = false)
class TemporalClientConfig {

  /**
   * Connects lazily, on the first call: the API starts (and serves reads) while Temporal is still
   * coming up, and a session created meanwhile fails with 503 instead of blocking startup.
   */
  @Bean(destroyMethod = "shutdown")
  WorkflowServiceStubs workflowServiceStubs(TemporalProperties properties, MeterRegistry meters) {
    // The SDK's own metrics (requests, latencies, failures) go to the API's Prometheus endpoint.
    Scope metrics =
        new RootScopeBuilder()
            .reporter(new MicrometerClientStatsReporter(meters))
            .reportEvery(
                com.uber.m3.util.Duration.ofMillis(properties.metricsInterval().toMillis()));
    return WorkflowServiceStubs.newServiceStubs(
        WorkflowServiceStubsOptions.newBuilder()
            .setMetricsScope(metrics)
            .setTarget(properties.target())
            .setRpcTimeout(properties.rpcTimeout())
            .setRpcRetryOptions(
                RpcRetryOptions.newBuilder(DefaultStubServiceOperationRpcRetryOptions.INSTANCE)
                    .setExpiration(properties.startTimeout())
                    .validateBuildWithDefaults())
            .build());
  }

  @Bean
  WorkflowClient workflowClient(WorkflowServiceStubs stubs, TemporalProperties properties) {
    return WorkflowClient.newInstance(
        stubs, WorkflowClientOptions.newBuilder().setNamespace(properties.namespace()).build());
  }
}
