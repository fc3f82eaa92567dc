package dev.cotrain.api.openapi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cotrain.api.ApiTestSupport;
import dev.cotrain.workflows.session.SessionStatus;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.test.web.servlet.MockMvc;

/** The OpenAPI document says what the API does (the e2e fuzz run checks it against the API). */
class OpenApiDocumentTest extends ApiTestSupport {

  @Autowired MockMvc mvc;

  private JsonNode document() throws Exception {
    return mapper.readTree(
        mvc.perform(get("/v3/api-docs")).andReturn().getResponse().getContentAsString());
  }

  @Test
  void everyApiOperationNeedsTheTokenAndAnswersErrorsAsProblems() throws Exception {
    JsonNode paths = document().path("paths");
    List<String> checked = new ArrayList<>();
    paths
        .properties()
        .forEach(
            path ->
                path.getValue()
                    .properties()
                    .forEach(
                        operation -> {
                          JsonNode op = operation.getValue();
                          assertThat(op.path("security").toString()).contains("bearer");
                          assertThat(op.path("responses").has("401")).isTrue();
                          assertThat(op.path("responses").has("400")).isTrue();
                          op.path("responses")
                              .properties()
                              .forEach(
                                  r -> {
                                    if (r.getKey().matches("[45]..")) {
                                      assertThat(
                                              r.getValue()
                                                  .path("content")
                                                  .has("application/problem+json"))
                                          .as(
                                              "%s %s %s",
                                              operation.getKey(), path.getKey(), r.getKey())
                                          .isTrue();
                                    }
                                  });
                          if (path.getKey().contains("{")) {
                            assertThat(op.path("responses").has("404")).isTrue();
                          }
                          checked.add(operation.getKey() + " " + path.getKey());
                        }));
    assertThat(checked).contains("post /api/sessions", "get /api/sessions/{id}/logs");
  }

  @Test
  void statusesAreAnsweredAsTheyAre() throws Exception {
    JsonNode paths = document().path("paths");
    JsonNode create = paths.path("/api/sessions").path("post").path("responses");
    assertThat(create.has("201")).isTrue();
    assertThat(create.has("200")).isFalse();
    assertThat(create.has("409")).isTrue();
    assertThat(create.has("503")).isTrue();
    assertThat(paths.path("/api/tokens/{id}").path("delete").path("responses").has("204")).isTrue();
    assertThat(paths.path("/api/sessions/{id}/pause").path("post").path("responses").has("409"))
        .isTrue();
  }

  @Test
  void responseFieldsAreAlwaysPresentAndNullOnlyWhereTheyMayBe() throws Exception {
    JsonNode session = document().path("components").path("schemas").path("SessionResponse");
    assertThat(session.path("required").toString()).contains("\"latestStep\"", "\"queue\"");
    assertThat(session.path("properties").path("latestStep").path("type").toString())
        .isEqualTo("[\"integer\",\"null\"]");
    assertThat(session.path("properties").path("name").path("type").asText()).isEqualTo("string");
    assertThat(session.path("properties").path("queue").path("anyOf").toString())
        .contains("#/components/schemas/Queue", "null");
    List<String> statuses = new ArrayList<>();
    session.path("properties").path("status").path("enum").forEach(s -> statuses.add(s.asText()));
    assertThat(statuses)
        .containsExactlyElementsOf(Arrays.stream(SessionStatus.values()).map(Enum::name).toList());
  }

  @Test
  void requestEnumsAndPatternsMatchWholeValues() throws Exception {
    JsonNode schemas = document().path("components").path("schemas");
    JsonNode type = schemas.path("ModelConfig").path("properties").path("type");
    assertThat(type.path("pattern").asText()).isEqualTo("^(?:llama2|llama3|bert)$");
    assertThat(type.path("enum").toString()).isEqualTo("[\"llama2\",\"llama3\",\"bert\"]");
    JsonNode seed = schemas.path("TrainingConfig").path("properties").path("seed");
    assertThat(seed.path("type").toString()).isEqualTo("[\"integer\",\"null\"]");
    assertThat(
            schemas
                .path("CreateSessionRequest")
                .path("properties")
                .path("name")
                .path("minLength")
                .asInt())
        .isEqualTo(1);
  }

  @Test
  void aQueryParameterWithADefaultTakesItWhenSentEmpty() throws Exception {
    JsonNode limit = null;
    JsonNode sort = null;
    for (JsonNode parameter :
        document().path("paths").path("/api/sessions").path("get").path("parameters")) {
      switch (parameter.path("name").asText()) {
        case "limit" -> limit = parameter.path("schema");
        case "sort" -> sort = parameter.path("schema");
        default -> {}
      }
    }
    assertThat(limit.path("default").asInt()).isEqualTo(50);
    assertThat(limit.path("anyOf").get(0).path("maximum").asInt()).isEqualTo(200);
    assertThat(limit.path("anyOf").get(1).path("maxLength").asInt()).isZero();
    assertThat(sort.path("enum").toString()).contains("\"-createdAt\"", "\"\"");
    assertThat(sort.path("default").asText()).isEqualTo("-createdAt");
    // As the document says: empty is the default, not an error.
    assertThat(mvc.perform(get("/api/sessions?limit=&sort=")).andReturn().getResponse().getStatus())
        .isEqualTo(200);
  }

  @Test
  void theStatusFilterPatternAcceptsExactlyTheLifecycleStates() throws Exception {
    JsonNode status = null;
    for (JsonNode parameter :
        document().path("paths").path("/api/sessions").path("get").path("parameters")) {
      if (parameter.path("name").asText().equals("status")) {
        status = parameter;
      }
    }
    assertThat(status).isNotNull();
    Pattern pattern = Pattern.compile(status.path("schema").path("pattern").asText());
    for (SessionStatus s : SessionStatus.values()) {
      assertThat(pattern.matcher(s.name()).matches()).as(s.name()).isTrue();
    }
    assertThat(pattern.matcher("RUNNING, QUEUED").matches()).isTrue();
    assertThat(pattern.matcher("").matches()).isTrue();
    assertThat(pattern.matcher("RUNNING,").matches()).isFalse();
    assertThat(pattern.matcher("running").matches()).isFalse();
  }
}
