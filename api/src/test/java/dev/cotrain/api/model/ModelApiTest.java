package dev.cotrain.api.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.delete;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.put;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cotrain.api.ApiTestSupport;
import dev.cotrain.workflows.registry.ModelEvaluationWorkflow.EvaluationRequest;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.mockito.ArgumentCaptor;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.test.web.servlet.MockMvc;
import org.springframework.test.web.servlet.RequestBuilder;
import org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder;

/** The registry's endpoints over rows and files made as the worker's registration makes them. */
class ModelApiTest extends ApiTestSupport {

  private static final Path ROOT =
      Path.of(System.getProperty("java.io.tmpdir"), "cotrain-api-test");

  @Autowired MockMvc mvc;

  @Test
  void aModelListsItsVersionsWithEvaluationsFilesAndAliases() throws Exception {
    UUID first = session("tiny", 0.003);
    UUID second = session("tiny", 0.001);
    version("tiny", 1, first);
    version("tiny", 2, second);
    evaluation("tiny", 1, "validation", 2.5);
    alias("tiny", "production", 1);

    JsonNode model = json(get("/api/models/tiny"), 200);

    assertThat(model.path("owner").asText()).isEqualTo("admin");
    assertThat(model.path("versions")).hasSize(2);
    JsonNode v1 = model.path("versions").get(0);
    assertThat(v1.path("evaluation").asText()).isEqualTo("EVALUATED");
    assertThat(v1.path("evaluations").get(0).path("loss").asDouble()).isEqualTo(2.5);
    assertThat(v1.path("aliases").toString()).isEqualTo("[\"production\"]");
    assertThat(v1.path("files").get(0).path("name").asText()).isEqualTo("config.json");
    assertThat(model.path("bytes").asLong()).isEqualTo(v1.path("bytes").asLong() * 2);
    assertThat(json(get("/api/models/tiny/versions/latest"), 200).path("version").asInt())
        .isEqualTo(2);
    assertThat(json(get("/api/models/tiny/versions/production"), 200).path("version").asInt())
        .isEqualTo(1);
    assertThat(json(get("/api/models/tiny/versions/7"), 404).path("detail").asText())
        .isEqualTo("model tiny has no version 7");
    assertThat(json(get("/api/models"), 200).path("models").get(0).path("versions").asInt())
        .isEqualTo(2);
  }

  @Test
  void anotherOwnersModelIsNotFound() throws Exception {
    version("tiny", 1, session("tiny", 0.003));

    assertThat(as(ALICE_TOKEN, get("/api/models/tiny")).getStatus()).isEqualTo(404);
    assertThat(as(ALICE_TOKEN, get("/api/models/tiny/versions/1/download")).getStatus())
        .isEqualTo(404);
    assertThat(
            mapper
                .readTree(as(ALICE_TOKEN, get("/api/models")).getContentAsString())
                .path("models"))
        .isEmpty();
  }

  @Test
  void aVersionDownloadsAsOneTarOfItsDirectory() throws Exception {
    version("tiny", 1, session("tiny", 0.003));

    // Streamed: the body is written after the handler returns, in an async dispatch.
    MockHttpServletResponse response =
        mvc.perform(
                org.springframework.test.web.servlet.request.MockMvcRequestBuilders.asyncDispatch(
                    mvc.perform(get("/api/models/tiny/versions/latest/download")).andReturn()))
            .andReturn()
            .getResponse();

    assertThat(response.getStatus()).isEqualTo(200);
    assertThat(response.getHeader(HttpHeaders.CONTENT_DISPOSITION)).contains("tiny-v1.tar");
    List<String> names = new ArrayList<>();
    String config = null;
    try (TarArchiveInputStream tar =
        new TarArchiveInputStream(new ByteArrayInputStream(response.getContentAsByteArray()))) {
      for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
        names.add(e.getName());
        if (e.getName().endsWith("config.json")) {
          config = new String(tar.readAllBytes(), StandardCharsets.UTF_8);
        }
      }
    }
    assertThat(names).containsExactly("tiny-v1/config.json", "tiny-v1/model.safetensors");
    assertThat(config).isEqualTo("{\"model_type\": \"llama\"}");
  }

  @Test
  void anAliasedVersionCannotBeDeletedAndAnUnaliasedOneLeavesWithItsFiles() throws Exception {
    version("tiny", 1, session("tiny", 0.003));
    version("tiny", 2, session("tiny", 0.001));
    alias("tiny", "production", 1);

    JsonNode refused = json(delete("/api/models/tiny/versions/1"), 409);
    assertThat(refused.path("detail").asText())
        .isEqualTo("cannot delete tiny v1: aliased as production");
    assertThat(Files.exists(dir("tiny", 1))).isTrue();

    assertThat(
            mvc.perform(delete("/api/models/tiny/versions/2"))
                .andReturn()
                .getResponse()
                .getStatus())
        .isEqualTo(204);
    assertThat(Files.exists(dir("tiny", 2))).isFalse();
    assertThat(json(get("/api/models/tiny"), 200).path("versions")).hasSize(1);
  }

  @Test
  void anAliasMovedByTwoClientsAtOnceEndsOnOneOfTheirVersions() throws Exception {
    version("tiny", 1, session("tiny", 0.003));
    version("tiny", 2, session("tiny", 0.001));
    for (int round = 0; round < 10; round++) {
      CyclicBarrier together = new CyclicBarrier(2);
      List<CompletableFuture<Integer>> moves = new ArrayList<>();
      for (int version : new int[] {1, 2}) {
        moves.add(
            CompletableFuture.supplyAsync(
                () -> {
                  try {
                    together.await();
                    return mvc.perform(
                            put("/api/models/tiny/aliases/production")
                                .contentType(MediaType.APPLICATION_JSON)
                                .content("{\"version\": " + version + "}"))
                        .andReturn()
                        .getResponse()
                        .getStatus();
                  } catch (Exception e) {
                    throw new IllegalStateException(e);
                  }
                }));
      }
      assertThat(moves).allSatisfy(m -> assertThat(m.join()).isEqualTo(200));
      JsonNode model = json(get("/api/models/tiny"), 200);
      int named = model.path("aliases").path("production").asInt();
      assertThat(named).isIn(1, 2);
      // One answer everywhere: exactly the version the alias names lists it.
      for (JsonNode v : model.path("versions")) {
        assertThat(v.path("aliases").toString().contains("production"))
            .isEqualTo(v.path("version").asInt() == named);
      }
    }
    assertThat(jdbc.sql("SELECT count(*) FROM model_aliases").query(Long.class).single())
        .isEqualTo(1);
  }

  @Test
  void twoVersionsCompareWithTheirConfigDifferencesEvaluationsAndCurves() throws Exception {
    UUID first = session("tiny", 0.003);
    UUID second = session("tiny", 0.001);
    version("tiny", 1, first);
    version("tiny", 2, second);
    evaluation("tiny", 1, "wiki", 3.0);
    evaluation("tiny", 2, "wiki", 2.0);
    for (UUID s : List.of(first, second)) {
      for (int step = 1; step <= 5; step++) {
        jdbc.sql(
                "INSERT INTO metrics (session_id, step, total_steps, epoch, loss)"
                    + " VALUES (:id, :step, 5, 1, :loss)")
            .param("id", s)
            .param("step", step)
            .param("loss", 5.0 - step)
            .update();
      }
    }

    JsonNode comparison = json(get("/api/models/compare?versions=tiny/1,tiny/latest"), 200);

    assertThat(comparison.path("configDifferences")).hasSize(1);
    JsonNode difference = comparison.path("configDifferences").get(0);
    assertThat(difference.path("field").asText()).isEqualTo("trainingConfig.learningRate");
    assertThat(difference.path("values").toString()).isEqualTo("[0.003,0.001]");
    assertThat(comparison.path("evalLoss").path("wiki").path("tiny/2").asDouble()).isEqualTo(2.0);
    assertThat(comparison.path("curves")).hasSize(2);
    assertThat(comparison.path("curves").get(1).path("buckets")).hasSize(5);
    assertThat(
            json(get("/api/models/compare?versions=tiny/1"), 400)
                .path("fields")
                .get(0)
                .path("field")
                .asText())
        .isEqualTo("versions");
  }

  @Test
  void anEvaluationSetIsAFileUnderDatasetsRawAndItsEvaluationRunsAsAWorkflow() throws Exception {
    version("tiny", 1, session("tiny", 0.003));
    Path raw = Files.createDirectories(ROOT.resolve("datasets/raw"));
    Files.writeString(raw.resolve("wiki.txt"), "some shared text\n");
    Path outside = Files.writeString(ROOT.resolve("secret.txt"), "not a data set");
    Files.deleteIfExists(raw.resolve("escape.txt"));
    Files.createSymbolicLink(raw.resolve("escape.txt"), outside);

    JsonNode set =
        json(postJson("/api/eval-sets", "{\"name\": \"wiki\", \"path\": \"wiki.txt\"}"), 201);
    assertThat(set.path("bytes").asLong()).isEqualTo(17);
    assertThat(set.path("sha256").asText()).hasSize(64);
    assertThat(
            json(postJson("/api/eval-sets", "{\"name\": \"wiki\", \"path\": \"wiki.txt\"}"), 409))
        .isNotNull();
    assertThat(
            json(postJson("/api/eval-sets", "{\"name\": \"x\", \"path\": \"escape.txt\"}"), 400)
                .path("fields")
                .get(0)
                .path("message")
                .asText())
        .isEqualTo("must name a file under datasets/raw");
    assertThat(
            json(postJson("/api/eval-sets", "{\"name\": \"y\", \"path\": \"../secret.txt\"}"), 400)
                .path("fields")
                .get(0)
                .path("field")
                .asText())
        .isEqualTo("path");

    WorkflowStub stub = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub(anyString(), any(WorkflowOptions.class)))
        .thenReturn(stub);
    JsonNode started =
        json(postJson("/api/models/tiny/versions/1/evaluations", "{\"evalSet\": \"wiki\"}"), 202);

    assertThat(started.path("workflowId").asText()).isEqualTo("evaluate-tiny-v1-wiki");
    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    EvaluationRequest request = (EvaluationRequest) input.getValue();
    assertThat(request.dataset()).isEqualTo("wiki.txt");
    assertThat(request.modelPath()).isEqualTo(dir("tiny", 1).toString());
    assertThat(
            json(
                    postJson("/api/models/tiny/versions/1/evaluations", "{\"evalSet\": \"nope\"}"),
                    400)
                .path("fields")
                .get(0)
                .path("field")
                .asText())
        .isEqualTo("evalSet");
  }

  private UUID session(String model, double learningRate) {
    UUID id = UUID.randomUUID();
    String request =
        """
        {"name":"%s","modelName":"%s","modelConfig":{"type":"llama2","size":"debug","precision":"fp32"},
         "trainingConfig":{"batchSize":8,"learningRate":%s,"epochs":1,"optimizer":"adamw"},
         "distributedConfig":{"nodes":1,"gpusPerNode":1,"strategy":"ddp"}}
        """
            .formatted(model, model, learningRate);
    jdbc.sql(
            """
            INSERT INTO sessions (id, workflow_id, name, request, status, owner)
            VALUES (:id, :wf, :name, CAST(:request AS jsonb), 'COMPLETED', 'admin')
            """)
        .param("id", id)
        .param("wf", "session-" + id)
        .param("name", model)
        .param("request", request)
        .update();
    jdbc.sql("INSERT INTO models (name, owner) VALUES (:name, 'admin') ON CONFLICT DO NOTHING")
        .param("name", model)
        .update();
    return id;
  }

  private void version(String model, int version, UUID session) throws Exception {
    Path dir = Files.createDirectories(dir(model, version));
    Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\"}");
    Files.write(dir.resolve("model.safetensors"), new byte[100]);
    jdbc.sql(
            """
            INSERT INTO model_versions (model, version, session_id, path, config_hash, files, bytes)
            VALUES (:model, :version, :session, :path, 'hash',
                    CAST('[{"name":"config.json","bytes":23},{"name":"model.safetensors","bytes":100}]' AS jsonb),
                    123)
            """)
        .param("model", model)
        .param("version", version)
        .param("session", session)
        .param("path", dir.toString())
        .update();
  }

  private void evaluation(String model, int version, String set, double loss) {
    jdbc.sql(
            "INSERT INTO evaluations (model, version, eval_set, loss, perplexity)"
                + " VALUES (:model, :version, :set, :loss, exp(:loss))")
        .param("model", model)
        .param("version", version)
        .param("set", set)
        .param("loss", loss)
        .update();
    if (set.equals("validation")) {
      jdbc.sql(
              "UPDATE model_versions SET evaluation = 'EVALUATED' WHERE model = :m AND version = :v")
          .param("m", model)
          .param("v", version)
          .update();
    }
  }

  private void alias(String model, String alias, int version) {
    jdbc.sql("INSERT INTO model_aliases (model, alias, version) VALUES (:m, :a, :v)")
        .param("m", model)
        .param("a", alias)
        .param("v", version)
        .update();
  }

  private static Path dir(String model, int version) {
    return ROOT.resolve("models/final").resolve(model).resolve("v" + version);
  }

  private MockHttpServletRequestBuilder postJson(String path, String body) {
    return post(path).contentType(MediaType.APPLICATION_JSON).content(body);
  }

  private JsonNode json(RequestBuilder request, int status) throws Exception {
    MockHttpServletResponse response = mvc.perform(request).andReturn().getResponse();
    assertThat(response.getStatus()).as(response.getContentAsString()).isEqualTo(status);
    return response.getContentAsString().isEmpty()
        ? mapper.createObjectNode()
        : mapper.readTree(response.getContentAsString());
  }

  private MockHttpServletResponse as(String token, MockHttpServletRequestBuilder request)
      throws Exception {
    return mvc.perform(request.header(HttpHeaders.AUTHORIZATION, "Bearer " + token))
        .andReturn()
        .getResponse();
  }
}
