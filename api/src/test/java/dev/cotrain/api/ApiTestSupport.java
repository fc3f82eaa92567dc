package dev.cotrain.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cotrain.api.auth.Tokens;
import io.temporal.client.WorkflowClient;
import org.junit.jupiter.api.BeforeEach;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.web.servlet.AutoConfigureMockMvc;
import org.springframework.boot.test.autoconfigure.web.servlet.MockMvcBuilderCustomizer;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.context.TestConfiguration;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.http.HttpHeaders;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.bean.override.mockito.MockitoBean;
import org.springframework.test.web.servlet.request.MockMvcRequestBuilders;

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
      "cotrain.reconcile.enabled=false",
      "cotrain.storage-root=${java.io.tmpdir}/cotrain-api-test"
    })
@AutoConfigureMockMvc
@Import(ApiTestSupport.AdminByDefault.class)
public abstract class ApiTestSupport {

  @MockitoBean protected WorkflowClient workflowClient;

  @Autowired protected JdbcClient jdbc;
  @Autowired protected ObjectMapper mapper;

  @LocalServerPort protected int port;

  /** Tokens of the tests: an admin's (sent by default by {@code mvc}), Alice's and Bob's. */
  protected static final String ADMIN_TOKEN = "cotrain_test-admin-0000000000000000000000000000000";

  protected static final String ALICE_TOKEN = "cotrain_test-alice-0000000000000000000000000000000";
  protected static final String BOB_TOKEN = "cotrain_test-bob-000000000000000000000000000000000";

  @BeforeEach
  void emptyTables() {
    jdbc.sql("TRUNCATE sessions, api_tokens, models, eval_sets CASCADE").update();
    token(ADMIN_TOKEN, "admin", true);
    token(ALICE_TOKEN, "alice", false);
    token(BOB_TOKEN, "bob", false);
  }

  private void token(String token, String owner, boolean admin) {
    jdbc.sql(
            "INSERT INTO api_tokens (id, name, owner, admin, token_hash)"
                + " VALUES (gen_random_uuid(), 'test', :owner, :admin, :hash)")
        .param("owner", owner)
        .param("admin", admin)
        .param("hash", Tokens.hash(token))
        .update();
  }

  /** MockMvc requests carry the admin token unless they set their own Authorization header. */
  @TestConfiguration
  static class AdminByDefault {
    @Bean
    MockMvcBuilderCustomizer adminTokenByDefault() {
      return builder ->
          builder.defaultRequest(
              MockMvcRequestBuilders.get("/")
                  .header(HttpHeaders.AUTHORIZATION, "Bearer " + ADMIN_TOKEN));
    }
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
