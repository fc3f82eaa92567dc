package dev.cotrain.api.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

import dev.cotrain.api.ApiTestSupport;
import io.temporal.api.workflowservice.v1.GetSystemInfoRequest;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.serviceclient.WorkflowServiceStubs;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.actuate.observability.AutoConfigureObservability;
import org.springframework.http.MediaType;
import org.springframework.test.context.TestPropertySource;
import org.springframework.test.web.servlet.MockMvc;
import org.springframework.test.web.servlet.request.MockMvcRequestBuilders;

/**
 * Prometheus scrapes without a token, and learns nothing about sessions. (Spring Boot's tests turn
 * metrics export off unless asked, hence the annotation.)
 */
@AutoConfigureObservability(tracing = false)
@TestPropertySource(properties = "cotrain.temporal.metrics-interval=200ms")
class PrometheusTest extends ApiTestSupport {

  @Autowired MockMvc mvc;
  @Autowired WorkflowServiceStubs temporalStubs;

  @Test
  void theTemporalClientsRequestsAreCounted() throws Exception {
    try {
      // Nothing listens at the test's Temporal target: the call fails, and is counted.
      temporalStubs
          .blockingStub()
          .withDeadlineAfter(1, TimeUnit.SECONDS)
          .getSystemInfo(GetSystemInfoRequest.getDefaultInstance());
    } catch (RuntimeException expected) {
      // counted all the same
    }

    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    String body = scrape().body();
    while (!body.contains("operation=\"GetSystemInfo\"") && System.nanoTime() < deadline) {
      Thread.sleep(100);
      body = scrape().body();
    }
    assertThat(body).contains("temporal_request").contains("operation=\"GetSystemInfo\"");
  }

  private HttpResponse<String> scrape() throws Exception {
    return HttpClient.newHttpClient()
        .send(
            HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/actuator/prometheus"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void metricsAreOpenToScrapeAndNameNoSession() throws Exception {
    when(workflowClient.newUntypedWorkflowStub(anyString(), any(WorkflowOptions.class)))
        .thenReturn(mock(WorkflowStub.class));
    String name = "secret-project-falcon";
    String created =
        mvc.perform(
                MockMvcRequestBuilders.post("/api/sessions")
                    .contentType(MediaType.APPLICATION_JSON)
                    .content(validRequest().put("name", name).toString()))
            .andReturn()
            .getResponse()
            .getContentAsString();
    String id = mapper.readTree(created).path("id").asText();
    mvc.perform(MockMvcRequestBuilders.get("/api/sessions/" + id)).andReturn();

    HttpResponse<String> scrape = scrape();

    assertThat(scrape.statusCode()).isEqualTo(200);
    assertThat(scrape.body()).contains("jvm_memory_used_bytes").contains("hikaricp_connections");
    assertThat(scrape.body()).doesNotContain(id).doesNotContain(name);
  }
}
