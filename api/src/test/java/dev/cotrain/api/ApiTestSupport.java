package dev.cotrain.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.temporal.client.WorkflowClient;
import org.junit.jupiter.api.BeforeEach;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.web.servlet.AutoConfigureMockMvc;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.bean.override.mockito.MockitoBean;

/**
 * The whole application on a random port against the real PostgreSQL named by {@code
 * COTRAIN_TEST_JDBC_URL}, with Temporal's client replaced by a mock. Subclasses share one context;
 * every test starts from empty tables.
 */
@SpringBootTest(
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "spring.datasource.url=${COTRAIN_TEST_JDBC_URL:jdbc:postgresql://127.0.0.1:55432/cotrain}",
      "spring.datasource.username=cotrain",
      "spring.datasource.password=cotrain",
      "cotrain.live.poll-timeout=200ms",
      // It would talk to the mocked Temporal client behind the tests' backs.
      "cotrain.reconcile.enabled=false"
    })
@AutoConfigureMockMvc
public abstract class ApiTestSupport {

  @MockitoBean protected WorkflowClient workflowClient;

  @Autowired protected JdbcClient jdbc;
  @Autowired protected ObjectMapper mapper;

  @LocalServerPort protected int port;

  @BeforeEach
  void emptyTables() {
    jdbc.sql("TRUNCATE sessions CASCADE").update();
  }

  /** A valid TrainingSessionConfig with only the required parts. */
  protected ObjectNode validRequest() {
    ObjectNode body = mapper.createObjectNode();
    body.put("name", "tiny llama");
    body.put("description", "a smoke run");
    body.putObject("modelConfig")
        .put("type", "llama2")
        .put("size", "debug")
        .put("precision", "fp32");
    body.putObject("trainingConfig")
        .put("batchSize", 8)
        .put("learningRate", 0.003)
        .put("epochs", 1)
        .put("optimizer", "adamw");
    body.putObject("distributedConfig")
        .put("nodes", 1)
        .put("gpusPerNode", 2)
        .put("strategy", "ddp");
    return body;
  }
}
