package dev.cotrain.api.metrics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

import dev.cotrain.api.ApiTestSupport;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.actuate.observability.AutoConfigureObservability;
import org.springframework.http.MediaType;
import org.springframework.test.web.servlet.MockMvc;
import org.springframework.test.web.servlet.request.MockMvcRequestBuilders;

/**
 * Prometheus scrapes without a token, and learns nothing about sessions. (Spring Boot's tests turn
 * metrics export off unless asked, hence the annotation.)
 */
@AutoConfigureObservability(tracing = false)
class PrometheusTest extends ApiTestSupport {

  @Autowired MockMvc mvc;

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

    HttpResponse<String> scrape =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create("http://localhost:" + port + "/actuator/prometheus"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());

    assertThat(scrape.statusCode()).isEqualTo(200);
    assertThat(scrape.body()).contains("jvm_memory_used_bytes").contains("hikaricp_connections");
    assertThat(scrape.body()).doesNotContain(id).doesNotContain(name);
  }
}
