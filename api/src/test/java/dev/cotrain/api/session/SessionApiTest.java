package dev.cotrain.api.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.doThrow;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cotrain.api.ApiTestSupport;
import dev.cotrain.workflows.session.SessionSpec;
import dev.cotrain.workflows.session.SessionStatus;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionInput;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlRequest;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlResult;
import io.grpc.Status;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.WorkflowIdConflictPolicy;
import io.temporal.client.WorkflowExecutionAlreadyStarted;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowServiceException;
import io.temporal.client.WorkflowStub;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.failure.ApplicationFailure;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.mockito.ArgumentCaptor;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.test.web.servlet.MockMvc;

class SessionApiTest extends ApiTestSupport {

  @Autowired MockMvc mvc;

  private WorkflowStub stub;

  @BeforeEach
  void stubTemporal() {
    stub = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub(anyString(), any(WorkflowOptions.class)))
        .thenReturn(stub);
  }

  @Test
  void createStoresTheSessionAndStartsItsWorkflowOnTheControlQueue() throws Exception {
    MockHttpServletResponse response = post(validRequest());

    assertThat(response.getStatus()).isEqualTo(201);
    JsonNode created = mapper.readTree(response.getContentAsString());
    String id = created.path("id").asText();
    assertThat(UUID.fromString(id).toString()).isEqualTo(id);
    assertThat(response.getHeader("Location")).isEqualTo("/api/sessions/" + id);
    assertThat(created.path("workflowId").asText()).isEqualTo("session-" + id);
    assertThat(created.path("status").asText()).isEqualTo("QUEUED");
    assertThat(created.path("latestMetrics").isNull()).isTrue();

    ArgumentCaptor<WorkflowOptions> options = ArgumentCaptor.forClass(WorkflowOptions.class);
    verify(workflowClient).newUntypedWorkflowStub(eq("TrainingSessionWorkflow"), options.capture());
    assertThat(options.getValue().getWorkflowId()).isEqualTo(TaskQueues.workflowId(id));
    assertThat(options.getValue().getTaskQueue()).isEqualTo("cotrain-control");
    assertThat(options.getValue().getStaticSummary()).isEqualTo("Training tiny llama");

    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    assertThat(input.getValue())
        .isEqualTo(
            new TrainingSessionInput(
                id,
                new SessionSpec(
                    "tiny llama",
                    "a smoke run",
                    new SessionSpec.Model("llama2", "debug", "fp32"),
                    new SessionSpec.Training(
                        8, 0.003, 1, "adamw", 0, 1234, null, null, null, null, null),
                    new SessionSpec.Distributed(1, 2, "ddp", null),
                    new SessionSpec.Data(128, "", null, null),
                    new SessionSpec.Checkpoint(50, null),
                    null),
                ((TrainingSessionInput) input.getValue()).request(),
                Duration.ofSeconds(10),
                "tiny-llama"));
    assertThat(mapper.readTree(((TrainingSessionInput) input.getValue()).request()))
        .isEqualTo(created.path("request"));
    assertThat(options.getValue().getWorkflowIdConflictPolicy())
        .isEqualTo(WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING);
    assertThat(jdbc.sql("SELECT status, cause FROM session_events").query().singleRow())
        .containsEntry("status", "QUEUED")
        .containsEntry("cause", "created");

    Map<String, Object> row =
        jdbc.sql("SELECT workflow_id, status, name, request::text AS request FROM sessions")
            .query()
            .singleRow();
    assertThat(row).containsEntry("workflow_id", "session-" + id).containsEntry("status", "QUEUED");
    JsonNode stored = mapper.readTree((String) row.get("request"));
    assertThat(stored.path("trainingConfig").path("maxSteps").asInt()).isZero();
    assertThat(stored.path("trainingConfig").path("seed").asLong()).isEqualTo(1234);
    assertThat(stored.path("dataConfig").path("seqLength").asInt()).isEqualTo(128);
    assertThat(stored.path("dataConfig").path("dataPath").asText()).isEmpty();
    assertThat(stored.path("checkpointConfig").path("interval").asInt()).isEqualTo(50);
    assertThat(created.path("request")).isEqualTo(stored);
  }

  @Test
  void createKeepsOptionalSettingsThatWereGiven() throws Exception {
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("trainingConfig")).put("maxSteps", 200).put("seed", 7);
    body.putObject("dataConfig").put("seqLength", 64).put("dataPath", "tiny/shakespeare.txt");
    body.putObject("checkpointConfig").put("interval", 0);

    assertThat(post(body).getStatus()).isEqualTo(201);

    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    SessionSpec spec = ((TrainingSessionInput) input.getValue()).spec();
    assertThat(spec.training().maxSteps()).isEqualTo(200);
    assertThat(spec.training().seed()).isEqualTo(7);
    assertThat(spec.data()).isEqualTo(new SessionSpec.Data(64, "tiny/shakespeare.txt", null, null));
    assertThat(spec.checkpoint().interval()).isZero();
    assertThat(spec.load()).isNull();
  }

  @Test
  void createPassesTheLoadGeneratingModeToTheWorkflow() throws Exception {
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("trainingConfig")).put("maxSteps", 300);
    body.putObject("loadConfig").put("eventsPerSecond", 10);

    assertThat(post(body).getStatus()).isEqualTo(201);

    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    SessionSpec spec = ((TrainingSessionInput) input.getValue()).spec();
    assertThat(spec.load()).isEqualTo(new SessionSpec.Load(10.0));
    assertThat(spec.training().maxSteps()).isEqualTo(300);
  }

  @Test
  void createPassesTrainerSettingsAndDilocoParametersToTheWorkflow() throws Exception {
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("trainingConfig"))
        .put("microBatchSize", 2)
        .put("warmupSteps", 20)
        .put("schedule", "linear")
        .put("weightDecay", 0.1)
        .put("gradClip", 0.5);
    ((ObjectNode) body.get("distributedConfig"))
        .put("strategy", "diloco")
        .putObject("diloco")
        .put("innerSteps", 25)
        .put("outerLr", 0.7)
        .put("outerMomentum", 0.9)
        .put("nesterov", true)
        .put("pseudoGradDtype", "bf16");
    body.putObject("dataConfig").put("tokenizer", "bpe").put("validationSplit", 0.1);
    body.putObject("checkpointConfig").put("interval", 25).put("keepLast", 2);

    assertThat(post(body).getStatus()).isEqualTo(201);

    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    SessionSpec spec = ((TrainingSessionInput) input.getValue()).spec();
    assertThat(spec.training())
        .isEqualTo(
            new SessionSpec.Training(8, 0.003, 1, "adamw", 0, 1234, 2, 20, "linear", 0.1, 0.5));
    assertThat(spec.distributed().diloco())
        .isEqualTo(new SessionSpec.Diloco(25, 0.7, 0.9, true, "bf16"));
    assertThat(spec.data()).isEqualTo(new SessionSpec.Data(128, "", "bpe", 0.1));
    assertThat(spec.checkpoint()).isEqualTo(new SessionSpec.Checkpoint(25, 2));
  }

  @Test
  void workflowStartFailureAnswers503AndStoresNothing() throws Exception {
    doThrow(
            new WorkflowServiceException(
                WorkflowExecution.newBuilder().setWorkflowId("session-x").build(),
                "TrainingSessionWorkflow",
                Status.UNAVAILABLE.withDescription("io exception").asRuntimeException()))
        .when(stub)
        .start(any());

    MockHttpServletResponse response = post(validRequest());

    assertThat(response.getStatus()).isEqualTo(503);
    JsonNode error = mapper.readTree(response.getContentAsString());
    assertThat(error.path("detail").asText())
        .isEqualTo("could not start the session's workflow: UNAVAILABLE: io exception");
    // A row without its workflow would never move; a retry (same Idempotency-Key) starts afresh.
    assertThat(jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single()).isZero();
  }

  @Test
  void sessionNeedingMoreDevicesThanAnyHostHasIsRefusedNamingTheField() throws Exception {
    jdbc.sql("TRUNCATE hosts CASCADE").update();
    jdbc.sql(
            """
            INSERT INTO hosts (id, cpu_slots, worker_pid, started_at, last_seen)
            VALUES ('gpu-a', 1, 1, now(), now());
            INSERT INTO devices (host_id, device_index, name) VALUES ('gpu-a', 0, 'declared');
            """)
        .update();
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("distributedConfig")).put("gpusPerNode", 2);

    MockHttpServletResponse response = post(body);
    ((ObjectNode) body.get("distributedConfig")).put("gpusPerNode", 1);
    MockHttpServletResponse fits = post(body);
    jdbc.sql("TRUNCATE hosts CASCADE").update();

    assertThat(response.getStatus()).isEqualTo(400);
    JsonNode field = mapper.readTree(response.getContentAsString()).path("fields").get(0);
    assertThat(field.path("field").asText()).isEqualTo("distributedConfig.gpusPerNode");
    assertThat(field.path("message").asText())
        .isEqualTo("no registered host has 2 devices (the largest has 1)");
    assertThat(fits.getStatus()).isEqualTo(201);
  }

  @Test
  void sessionNeedingMoreNodesThanThereAreHostsBigEnoughIsRefusedNamingTheField() throws Exception {
    jdbc.sql("TRUNCATE hosts CASCADE").update();
    jdbc.sql(
            """
            INSERT INTO hosts (id, cpu_slots, worker_pid, started_at, last_seen)
            VALUES ('gpu-a', 1, 1, now(), now()), ('gpu-b', 1, 1, now(), now());
            INSERT INTO devices (host_id, device_index, name)
            VALUES ('gpu-a', 0, 'declared'), ('gpu-a', 1, 'declared'), ('gpu-b', 0, 'declared');
            """)
        .update();
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("distributedConfig")).put("nodes", 2).put("gpusPerNode", 2);

    MockHttpServletResponse response = post(body);
    ((ObjectNode) body.get("distributedConfig")).put("gpusPerNode", 1);
    MockHttpServletResponse fits = post(body);
    jdbc.sql("TRUNCATE hosts CASCADE").update();

    assertThat(response.getStatus()).isEqualTo(400);
    JsonNode field = mapper.readTree(response.getContentAsString()).path("fields").get(0);
    assertThat(field.path("field").asText()).isEqualTo("distributedConfig.nodes");
    assertThat(field.path("message").asText())
        .isEqualTo("only 1 registered hosts have 2 devices, for 2 nodes");
    assertThat(fits.getStatus()).isEqualTo(201);
  }

  @Test
  void retriedCreateWithTheSameIdempotencyKeyReturnsTheFirstSession() throws Exception {
    MockHttpServletResponse first = post(validRequest(), "retry-me-1");
    // The workflow exists by now: Temporal answers a second start with the running one.
    doThrow(
            new WorkflowExecutionAlreadyStarted(
                WorkflowExecution.newBuilder().setWorkflowId("session-x").build(),
                "TrainingSessionWorkflow",
                null))
        .when(stub)
        .start(any());
    MockHttpServletResponse second = post(validRequest(), "retry-me-1");

    assertThat(first.getStatus()).isEqualTo(201);
    assertThat(second.getStatus()).isEqualTo(201);
    assertThat(first.getHeader("Idempotent-Replayed")).isEqualTo("false");
    assertThat(second.getHeader("Idempotent-Replayed")).isEqualTo("true");
    String id = mapper.readTree(first.getContentAsString()).path("id").asText();
    assertThat(mapper.readTree(second.getContentAsString()).path("id").asText()).isEqualTo(id);
    assertThat(jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single()).isOne();
    assertThat(jdbc.sql("SELECT count(*) FROM session_events").query(Long.class).single()).isOne();
  }

  @Test
  void idempotencyKeyReusedForAnotherRequestIsAConflict() throws Exception {
    post(validRequest(), "key-2");
    ObjectNode other = validRequest().put("name", "another run");

    MockHttpServletResponse response = post(other, "key-2");

    assertThat(response.getStatus()).isEqualTo(409);
    assertThat(mapper.readTree(response.getContentAsString()).path("detail").asText())
        .isEqualTo("Idempotency-Key key-2 was used for a different request");
  }

  @Test
  void idempotencyKeyWithSpacesIsRefusedNamingTheHeader() throws Exception {
    MockHttpServletResponse response = post(validRequest(), "not a key");

    assertThat(response.getStatus()).isEqualTo(400);
    assertThat(response.getContentAsString()).contains("\"field\":\"Idempotency-Key\"");
  }

  @Test
  void controlSendsTheUpdateAndAnswersTheNewState() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    WorkflowStub running = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub("session-" + id)).thenReturn(running);
    when(running.update(eq("pause"), eq(ControlResult.class), any()))
        .thenReturn(new ControlResult(SessionStatus.PAUSING));

    MockHttpServletResponse response = postEmpty("/api/sessions/" + id + "/pause");

    assertThat(response.getStatus()).isEqualTo(200);
    JsonNode body = mapper.readTree(response.getContentAsString());
    assertThat(body.path("status").asText()).isEqualTo("PAUSING");
    assertThat(body.path("id").asText()).isEqualTo(id);
    verify(running).update("pause", ControlResult.class, new ControlRequest("api"));
  }

  @Test
  void controlTheWorkflowRefusesIsAConflictThatSaysWhy() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    WorkflowStub running = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub("session-" + id)).thenReturn(running);
    when(running.update(eq("resume"), eq(ControlResult.class), any()))
        .thenThrow(
            new WorkflowUpdateException(
                WorkflowExecution.newBuilder().setWorkflowId("session-" + id).build(),
                "u1",
                "resume",
                ApplicationFailure.newFailure(
                    "cannot resume the session: it is RUNNING, not PAUSED",
                    "java.lang.IllegalStateException")));

    MockHttpServletResponse response = postEmpty("/api/sessions/" + id + "/resume");

    assertThat(response.getStatus()).isEqualTo(409);
    assertThat(mapper.readTree(response.getContentAsString()).path("detail").asText())
        .isEqualTo("cannot resume the session: it is RUNNING, not PAUSED");
  }

  @Test
  void controlOfAFinishedSessionIsAConflictWithoutAskingTemporal() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    jdbc.sql("UPDATE sessions SET status = 'COMPLETED' WHERE id = ?::uuid").param(id).update();

    MockHttpServletResponse response = postEmpty("/api/sessions/" + id + "/pause");

    assertThat(response.getStatus()).isEqualTo(409);
    assertThat(mapper.readTree(response.getContentAsString()).path("detail").asText())
        .isEqualTo("cannot pause the session: it is COMPLETED");
    verify(workflowClient, never()).newUntypedWorkflowStub("session-" + id);
  }

  @Test
  void priorityOwnerAndPlacementAreStoredAndShown() throws Exception {
    ObjectNode body =
        validRequest().put("priority", 7).put("owner", "alice").put("placement", "pack");

    JsonNode created = mapper.readTree(post(body).getContentAsString());
    JsonNode defaults = mapper.readTree(post(validRequest()).getContentAsString());

    assertThat(created.path("priority").asInt()).isEqualTo(7);
    assertThat(created.path("owner").asText()).isEqualTo("alice");
    assertThat(created.path("request").path("placement").asText()).isEqualTo("pack");
    assertThat(
            jdbc.sql("SELECT pack FROM sessions WHERE id = ?::uuid")
                .param(created.path("id").asText())
                .query(Boolean.class)
                .single())
        .isTrue();
    assertThat(defaults.path("priority").asInt()).isZero();
    assertThat(defaults.path("owner").asText()).isEqualTo("admin"); // the token's owner
    assertThat(defaults.path("request").path("placement").asText()).isEqualTo("spread");
  }

  @Test
  void priorityOfALiveSessionCanBeChangedAndItsWorkflowIsWoken() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    WorkflowStub running = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub("session-" + id)).thenReturn(running);

    MockHttpServletResponse response =
        put("/api/sessions/" + id + "/priority", "{\"priority\": -5}");

    assertThat(response.getStatus()).isEqualTo(200);
    assertThat(mapper.readTree(response.getContentAsString()).path("priority").asInt())
        .isEqualTo(-5);
    verify(running).signal("wake");
  }

  @Test
  void priorityOfAnEndedSessionIsAConflictAndABadOneNamesTheField() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    jdbc.sql("UPDATE sessions SET status = 'COMPLETED' WHERE id = ?::uuid").param(id).update();

    MockHttpServletResponse ended = put("/api/sessions/" + id + "/priority", "{\"priority\": 1}");
    MockHttpServletResponse tooHigh =
        put("/api/sessions/" + id + "/priority", "{\"priority\": 5000}");
    MockHttpServletResponse unknown =
        put("/api/sessions/" + UUID.randomUUID() + "/priority", "{\"priority\": 1}");

    assertThat(ended.getStatus()).isEqualTo(409);
    assertThat(mapper.readTree(ended.getContentAsString()).path("detail").asText())
        .isEqualTo("cannot change the priority of the session: it is COMPLETED");
    assertThat(tooHigh.getStatus()).isEqualTo(400);
    assertThat(tooHigh.getContentAsString()).contains("\"field\":\"priority\"");
    assertThat(unknown.getStatus()).isEqualTo(404);
  }

  @Test
  void theQueueListsWaitingSessionsByPositionWithTheirReasons() throws Exception {
    String first = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    String second =
        mapper
            .readTree(post(validRequest().put("owner", "bob")).getContentAsString())
            .path("id")
            .asText();
    jdbc.sql(
            """
            INSERT INTO queue (session_id, attempt, gpus_per_node, position, reason)
            VALUES (?::uuid, 1, 2, 2, 'queued behind position 1'),
                   (?::uuid, 1, 2, 1, 'waiting for 2 free devices on one host (most free now: 1)')
            """)
        .params(first, second)
        .update();

    JsonNode queue =
        mapper.readTree(
            mvc.perform(get("/api/queue")).andReturn().getResponse().getContentAsString());
    JsonNode session =
        mapper.readTree(
            mvc.perform(get("/api/sessions/" + first))
                .andReturn()
                .getResponse()
                .getContentAsString());

    assertThat(queue.path("waiting")).hasSize(2);
    assertThat(queue.path("waiting").get(0).path("sessionId").asText()).isEqualTo(second);
    assertThat(queue.path("waiting").get(0).path("owner").asText()).isEqualTo("bob");
    assertThat(queue.path("waiting").get(0).path("gpusPerNode").asInt()).isEqualTo(2);
    assertThat(queue.path("waiting").get(1).path("position").asInt()).isEqualTo(2);
    assertThat(session.path("queue").path("position").asInt()).isEqualTo(2);
    assertThat(session.path("queue").path("reason").asText()).isEqualTo("queued behind position 1");
  }

  @Test
  void withoutAValidTokenEveryApiRequestIs401ButHealthStaysOpen() throws Exception {
    java.net.http.HttpClient http = java.net.http.HttpClient.newHttpClient();
    java.net.http.HttpResponse<String> none =
        http.send(
            java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create("http://localhost:" + port + "/api/sessions"))
                .build(),
            java.net.http.HttpResponse.BodyHandlers.ofString());
    java.net.http.HttpResponse<String> wrong =
        http.send(
            java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create("http://localhost:" + port + "/api/sessions"))
                .header("Authorization", "Bearer cotrain_revoked-or-made-up")
                .build(),
            java.net.http.HttpResponse.BodyHandlers.ofString());
    java.net.http.HttpResponse<String> health =
        http.send(
            java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create("http://localhost:" + port + "/actuator/health"))
                .build(),
            java.net.http.HttpResponse.BodyHandlers.ofString());

    assertThat(none.statusCode()).isEqualTo(401);
    assertThat(none.headers().firstValue("WWW-Authenticate")).contains("Bearer");
    assertThat(mapper.readTree(none.body()).path("detail").asText())
        .isEqualTo("an API token is required: Authorization: Bearer <token>");
    assertThat(wrong.statusCode()).isEqualTo(401);
    assertThat(health.statusCode()).isEqualTo(200);
  }

  @Test
  void anOwnerSeesAndControlsOnlyTheirOwnSessions() throws Exception {
    String alices =
        mapper
            .readTree(as(ALICE_TOKEN, postTo("/api/sessions", validRequest())).getContentAsString())
            .path("id")
            .asText();
    String bobs =
        mapper
            .readTree(as(BOB_TOKEN, postTo("/api/sessions", validRequest())).getContentAsString())
            .path("id")
            .asText();

    JsonNode alicesList =
        mapper.readTree(as(ALICE_TOKEN, get("/api/sessions")).getContentAsString());
    JsonNode adminsList =
        mapper.readTree(as(ADMIN_TOKEN, get("/api/sessions")).getContentAsString());

    assertThat(alicesList.path("sessions"))
        .extracting(n -> n.path("id").asText())
        .containsExactly(alices);
    assertThat(adminsList.path("sessions")).hasSize(2);
    assertThat(as(ALICE_TOKEN, get("/api/sessions/" + alices)).getStatus()).isEqualTo(200);
    for (String path : List.of("", "/metrics", "/events", "/system", "/syncs")) {
      assertThat(as(ALICE_TOKEN, get("/api/sessions/" + bobs + path)).getStatus())
          .as("GET %s of another owner's session", path)
          .isEqualTo(404);
    }
    assertThat(as(ALICE_TOKEN, postTo("/api/sessions/" + bobs + "/cancel", null)).getStatus())
        .isEqualTo(404);
    assertThat(
            as(ALICE_TOKEN, putTo("/api/sessions/" + bobs + "/priority", "{\"priority\": 5}"))
                .getStatus())
        .isEqualTo(404);
    MockHttpServletResponse forBob =
        as(ALICE_TOKEN, postTo("/api/sessions", validRequest().put("owner", "bob")));
    assertThat(forBob.getStatus()).isEqualTo(400);
    assertThat(forBob.getContentAsString()).contains("\"field\":\"owner\"");
  }

  @Test
  void theSameIdempotencyKeyFromTwoOwnersMakesTwoSessions() throws Exception {
    MockHttpServletResponse alices =
        as(ALICE_TOKEN, postTo("/api/sessions", validRequest()).header("Idempotency-Key", "k-1"));
    MockHttpServletResponse bobs =
        as(BOB_TOKEN, postTo("/api/sessions", validRequest()).header("Idempotency-Key", "k-1"));

    assertThat(alices.getStatus()).isEqualTo(201);
    assertThat(bobs.getStatus()).isEqualTo(201);
    assertThat(mapper.readTree(bobs.getContentAsString()).path("id"))
        .isNotEqualTo(mapper.readTree(alices.getContentAsString()).path("id"));
  }

  @Test
  void aModelNameIsItsFirstOwnersAndADefaultOneStepsAsideForAnother() throws Exception {
    JsonNode alices =
        mapper.readTree(
            as(ALICE_TOKEN, postTo("/api/sessions", validRequest().put("name", "tiny llama!")))
                .getContentAsString());
    JsonNode bobs =
        mapper.readTree(
            as(BOB_TOKEN, postTo("/api/sessions", validRequest().put("name", "tiny llama!")))
                .getContentAsString());
    MockHttpServletResponse taken =
        as(BOB_TOKEN, postTo("/api/sessions", validRequest().put("modelName", "tiny-llama")));

    assertThat(alices.path("request").path("modelName").asText()).isEqualTo("tiny-llama");
    assertThat(bobs.path("request").path("modelName").asText()).isEqualTo("tiny-llama-bob");
    assertThat(taken.getStatus()).isEqualTo(400);
    assertThat(taken.getContentAsString())
        .contains("{\"field\":\"modelName\",\"message\":\"is the name of another owner's model\"}");
    assertThat(CreateSessionRequest.modelNameOf("  Ünïcode // run #3.  "))
        .isEqualTo("n-code-run-3");
    assertThat(CreateSessionRequest.modelNameOf("???")).isEqualTo("model");
  }

  @Test
  void anAdminCreatesTokensThatWorkUntilRevoked() throws Exception {
    MockHttpServletResponse created =
        as(
            ADMIN_TOKEN,
            postTo(
                "/api/tokens",
                mapper.createObjectNode().put("name", "carol's laptop").put("owner", "carol")));
    JsonNode token = mapper.readTree(created.getContentAsString());
    String plain = token.path("token").asText();

    assertThat(created.getStatus()).isEqualTo(201);
    assertThat(plain).startsWith("cotrain_");
    assertThat(as(plain, get("/api/sessions")).getStatus()).isEqualTo(200);
    assertThat(
            jdbc.sql("SELECT count(*) FROM api_tokens WHERE token_hash = :plain")
                .param("plain", plain)
                .query(Long.class)
                .single())
        .as("the token itself is not stored")
        .isZero();
    JsonNode carols = mapper.readTree(as(plain, get("/api/tokens")).getContentAsString());
    assertThat(carols.path("tokens")).hasSize(1);
    assertThat(carols.path("tokens").get(0).path("token").isNull()).isTrue();
    assertThat(
            as(
                    ALICE_TOKEN,
                    postTo(
                        "/api/tokens",
                        mapper.createObjectNode().put("name", "x").put("owner", "alice")))
                .getStatus())
        .isEqualTo(403);
    assertThat(as(ALICE_TOKEN, deleteAt("/api/tokens/" + token.path("id").asText())).getStatus())
        .isEqualTo(404);
    assertThat(as(plain, deleteAt("/api/tokens/" + token.path("id").asText())).getStatus())
        .isEqualTo(204);
    assertThat(as(plain, get("/api/sessions")).getStatus()).isEqualTo(401);
  }

  @Test
  void controlOfAnUnknownSessionIs404() throws Exception {
    assertThat(postEmpty("/api/sessions/" + UUID.randomUUID() + "/cancel").getStatus())
        .isEqualTo(404);
  }

  @Test
  void machineSamplesAndDilocoOuterStepsAreListedInOrder() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    jdbc.sql(
            """
            INSERT INTO system_metrics (session_id, attempt, sample, step, cpu_percent, rss_bytes,
                                        gpus)
            VALUES (?::uuid, 1, 1, 0, 12.5, 1000, '[]'),
                   (?::uuid, 1, 2, 40, 190.0, 2000,
                    '[{"index": 0, "utilization": 97.0, "memoryUsedBytes": 5,
                       "memoryTotalBytes": 6}]')
            """)
        .params(id, id)
        .update();
    jdbc.sql(
            """
            INSERT INTO sync_events (session_id, outer_step, step, participants, bytes, seconds)
            VALUES (?::uuid, 1, 5, 2, 100, 0.5), (?::uuid, 2, 10, 2, 100, 0.25)
            """)
        .params(id, id)
        .update();

    JsonNode samples = getJson("/api/sessions/" + id + "/system", 200).path("samples");
    JsonNode syncs = getJson("/api/sessions/" + id + "/syncs?afterOuterStep=1", 200).path("syncs");

    assertThat(samples).hasSize(2);
    assertThat(samples.get(1).path("step").asLong()).isEqualTo(40);
    assertThat(samples.get(1).path("gpus").get(0).path("utilization").asDouble()).isEqualTo(97.0);
    assertThat(syncs).hasSize(1);
    assertThat(syncs.get(0).path("outerStep").asLong()).isEqualTo(2);
    assertThat(syncs.get(0).path("seconds").asDouble()).isEqualTo(0.25);
    assertThat(getJson("/api/sessions/" + UUID.randomUUID() + "/syncs", 404)).isNotNull();
  }

  @Test
  void eventsListTheSessionsTransitionsInOrder() throws Exception {
    String id = mapper.readTree(post(validRequest()).getContentAsString()).path("id").asText();
    jdbc.sql(
            """
            INSERT INTO session_events (event_id, session_id, status, previous_status, cause,
                                        attempt, message)
            VALUES (gen_random_uuid(), ?::uuid, 'STARTING', 'QUEUED', 'trainer_launched', 1,
                    'attempt 1')
            """)
        .param(id)
        .update();

    JsonNode events = getJson("/api/sessions/" + id + "/events", 200).path("events");

    assertThat(events).hasSize(2);
    assertThat(events.get(0).path("status").asText()).isEqualTo("QUEUED");
    assertThat(events.get(0).path("cause").asText()).isEqualTo("created");
    assertThat(events.get(1).path("status").asText()).isEqualTo("STARTING");
    assertThat(events.get(1).path("previousStatus").asText()).isEqualTo("QUEUED");
    assertThat(events.get(1).path("attempt").asInt()).isEqualTo(1);
    assertThat(events.get(1).path("id").asLong()).isGreaterThan(events.get(0).path("id").asLong());
    long after = events.get(0).path("id").asLong();
    assertThat(getJson("/api/sessions/" + id + "/events?afterId=" + after, 200).path("events"))
        .hasSize(1);
  }

  @Test
  void getReturnsTheStoredSession() throws Exception {
    String id = create("first");

    JsonNode session = getJson("/api/sessions/" + id, 200);

    assertThat(session.path("id").asText()).isEqualTo(id);
    assertThat(session.path("name").asText()).isEqualTo("first");
    assertThat(session.path("progress").asDouble()).isZero();
    assertThat(session.path("request").path("modelConfig").path("size").asText())
        .isEqualTo("debug");
    assertThat(session.path("createdAt").asText()).isNotEmpty();
  }

  @Test
  void getShowsTheLatestMetricsOnceTheTrainerReportedAStep() throws Exception {
    String id = create("running");
    jdbc.sql(
            """
            UPDATE sessions SET status = 'RUNNING', progress = 25, latest_step = 5,
                   total_steps = 20, latest_loss = 2.5, latest_accuracy = 0.4, learning_rate = 0.003
             WHERE id = CAST(:id AS uuid)
            """)
        .param("id", id)
        .update();

    JsonNode session = getJson("/api/sessions/" + id, 200);

    assertThat(session.path("status").asText()).isEqualTo("RUNNING");
    assertThat(session.path("progress").asDouble()).isEqualTo(25.0);
    assertThat(session.path("latestStep").asLong()).isEqualTo(5);
    assertThat(session.path("totalSteps").asLong()).isEqualTo(20);
    assertThat(session.path("latestMetrics").path("loss").asDouble()).isEqualTo(2.5);
    assertThat(session.path("latestMetrics").path("accuracy").asDouble()).isEqualTo(0.4);
    assertThat(session.path("latestMetrics").path("learningRate").asDouble()).isEqualTo(0.003);
  }

  @Test
  void getAnswers404ForAnUnknownSession() throws Exception {
    JsonNode error = getJson("/api/sessions/" + UUID.randomUUID(), 404);

    assertThat(error.path("detail").asText()).endsWith("not found");
  }

  @Test
  void getAnswers400NamingIdWhenItIsNotAUuid() throws Exception {
    JsonNode error = getJson("/api/sessions/not-a-uuid", 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("id");
    assertThat(error.path("fields").get(0).path("message").asText()).isEqualTo("must be a UUID");
  }

  @Test
  void listReturnsNewestFirstAPageAtATimeWithTheTotal() throws Exception {
    create("oldest");
    create("middle");
    create("newest");

    JsonNode first = getJson("/api/sessions?limit=2", 200);
    JsonNode second =
        getJson("/api/sessions?limit=2&cursor=" + first.path("nextCursor").asText(), 200);

    assertThat(names(getJson("/api/sessions", 200))).containsExactly("newest", "middle", "oldest");
    assertThat(names(first)).containsExactly("newest", "middle");
    assertThat(first.path("total").asLong()).isEqualTo(3);
    assertThat(names(second)).containsExactly("oldest");
    assertThat(second.path("nextCursor").isNull()).isTrue();
    assertThat(names(getJson("/api/sessions?sort=name", 200)))
        .containsExactly("middle", "newest", "oldest");
    JsonNode byName = getJson("/api/sessions?sort=-name&limit=1", 200);
    assertThat(names(byName)).containsExactly("oldest");
    assertThat(
            names(
                getJson(
                    "/api/sessions?sort=-name&limit=5&cursor=" + byName.path("nextCursor").asText(),
                    200)))
        .containsExactly("newest", "middle");
  }

  @Test
  void listFiltersByStatusOwnerModelStrategyAndName() throws Exception {
    String tiny = create("Tiny Llama");
    create("big bert");
    jdbc.sql("UPDATE sessions SET status = 'RUNNING' WHERE id = ?::uuid").param(tiny).update();
    ObjectNode diloco = validRequest().put("name", "islands").put("owner", "bob");
    ((ObjectNode) diloco.get("distributedConfig")).put("strategy", "diloco");
    ((ObjectNode) diloco.get("modelConfig")).put("type", "llama3");
    assertThat(post(diloco).getStatus()).isEqualTo(201);

    assertThat(names(getJson("/api/sessions?status=RUNNING", 200))).containsExactly("Tiny Llama");
    assertThat(names(getJson("/api/sessions?status=QUEUED,RUNNING&q=LLAMA", 200)))
        .containsExactly("Tiny Llama");
    assertThat(names(getJson("/api/sessions?owner=bob", 200))).containsExactly("islands");
    assertThat(names(getJson("/api/sessions?strategy=diloco", 200))).containsExactly("islands");
    JsonNode llama3 = getJson("/api/sessions?modelType=llama3", 200);
    assertThat(names(llama3)).containsExactly("islands");
    assertThat(llama3.path("total").asLong()).isEqualTo(1);
    assertThat(names(getJson("/api/sessions?q=%25", 200))).isEmpty(); // no LIKE wildcards
  }

  @Test
  void listRefusesBadParametersNamingThem() throws Exception {
    for (String limit : List.of("0", "201", "x")) {
      JsonNode error = getJson("/api/sessions?limit=" + limit, 400);
      assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("limit");
    }
    for (String parameter :
        List.of(
            "status=DONE",
            "modelType=gpt2",
            "strategy=zero3",
            "sort=size",
            "cursor=not-a-cursor",
            "q=" + "x".repeat(201))) {
      String name = parameter.substring(0, parameter.indexOf('='));
      assertThat(
              getJson("/api/sessions?" + parameter, 400)
                  .path("fields")
                  .get(0)
                  .path("field")
                  .asText())
          .as(parameter)
          .isEqualTo(name);
    }
  }

  @Test
  void nameWithQuotesNewlinesAndTomlSyntaxRoundTripsIntact() throws Exception {
    String name =
        "say \"hi\"\nthen 'bye'\r\n[section]\nkey = \"\"\"x\"\"\" # not a comment \\ \u00e9";
    ObjectNode body = validRequest();
    body.put("name", name);

    String id = mapper.readTree(post(body).getContentAsString()).path("id").asText();

    assertThat(getJson("/api/sessions/" + id, 200).path("name").asText()).isEqualTo(name);
    assertThat(getJson("/api/sessions/" + id, 200).path("request").path("name").asText())
        .isEqualTo(name);
    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(stub).start(input.capture());
    assertThat(((TrainingSessionInput) input.getValue()).spec().name()).isEqualTo(name);
  }

  @Test
  void downsampledMetricsKeepEveryBucketsMinimumMaximumAndLastLoss() throws Exception {
    String id = create("a long run");
    for (long step = 1; step <= 1000; step++) {
      double loss = step == 437 ? 99.0 : 5.0 - step / 1000.0; // one spike
      jdbc.sql(
              """
              INSERT INTO metrics (session_id, step, total_steps, epoch, loss, learning_rate)
              VALUES (CAST(:id AS uuid), :step, 1000, 1, :loss, :step * 0.001)
              """)
          .param("id", id)
          .param("step", step)
          .param("loss", loss)
          .update();
    }

    JsonNode all = getJson("/api/sessions/" + id + "/metrics/downsampled?points=10", 200);
    JsonNode range =
        getJson(
            "/api/sessions/" + id + "/metrics/downsampled?points=4&fromStep=101&toStep=200", 200);

    JsonNode buckets = all.path("buckets");
    assertThat(buckets).hasSize(10);
    assertThat(buckets.get(0).path("fromStep").asLong()).isEqualTo(1);
    assertThat(buckets.get(9).path("toStep").asLong()).isEqualTo(1000);
    assertThat(buckets).extracting(b -> b.path("steps").asInt()).allMatch(n -> n == 100);
    JsonNode spiky = buckets.get(4); // steps 401..500
    assertThat(spiky.path("maxLoss").asDouble()).isEqualTo(99.0);
    assertThat(spiky.path("lastLoss").asDouble()).isEqualTo(4.5);
    assertThat(spiky.path("minLoss").asDouble()).isEqualTo(4.5);
    assertThat(spiky.path("lastLearningRate").asDouble()).isEqualTo(0.5);
    assertThat(range.path("buckets")).hasSize(4);
    assertThat(range.path("buckets").get(0).path("fromStep").asLong()).isEqualTo(101);
    assertThat(range.path("buckets").get(3).path("toStep").asLong()).isEqualTo(200);
    assertThat(
            getJson("/api/sessions/" + id + "/metrics/downsampled?points=0", 400)
                .path("fields")
                .get(0)
                .path("field")
                .asText())
        .isEqualTo("points");
  }

  @Test
  void checkpointsAreListedInStepOrder() throws Exception {
    String id = create("with checkpoints");
    for (long step : List.of(20L, 10L)) {
      jdbc.sql(
              "INSERT INTO checkpoints (session_id, step, path, bytes)"
                  + " VALUES (CAST(:id AS uuid), :step, :path, 1234)")
          .param("id", id)
          .param("step", step)
          .param("path", "/s/models/checkpoints/" + id + "/step-" + step)
          .update();
    }

    JsonNode checkpoints = getJson("/api/sessions/" + id + "/checkpoints", 200).path("checkpoints");

    assertThat(checkpoints.findValuesAsText("step")).containsExactly("10", "20");
    assertThat(checkpoints.get(1).path("path").asText()).endsWith("/step-20");
    assertThat(checkpoints.get(1).path("bytes").asLong()).isEqualTo(1234);
    assertThat(getJson("/api/sessions/" + UUID.randomUUID() + "/checkpoints", 404)).isNotNull();
  }

  @Test
  void theLogTailIsTheEndOfTheNodesTrainerLogCutToWholeLines() throws Exception {
    String id = create("with a log");
    Path dir = Path.of(System.getProperty("java.io.tmpdir"), "cotrain-api-test/logs/training", id);
    Files.createDirectories(dir);
    StringBuilder log = new StringBuilder();
    for (int i = 1; i <= 300; i++) {
      log.append("[info] line ").append(i).append('\n');
    }
    log.append("x".repeat(TrainerLogs.MAX_LINE + 10)).append('\n');
    Files.writeString(dir.resolve("trainer.log"), log);
    Files.writeString(dir.resolve("trainer-node1.log"), "[error] node one\n");

    JsonNode tail = getJson("/api/sessions/" + id + "/logs?lines=3", 200);
    assertThat(tail.path("node").asInt()).isZero();
    assertThat(tail.path("lines")).hasSize(3);
    assertThat(tail.path("lines").get(0).asText()).isEqualTo("[info] line 299");
    assertThat(tail.path("lines").get(2).asText()).hasSize(TrainerLogs.MAX_LINE + 1).endsWith("…");
    assertThat(getJson("/api/sessions/" + id + "/logs", 200).path("lines")).hasSize(200);
    assertThat(getJson("/api/sessions/" + id + "/logs?node=1", 200).path("lines").get(0).asText())
        .isEqualTo("[error] node one");
    assertThat(getJson("/api/sessions/" + id + "/logs?node=2", 200).path("lines")).isEmpty();
    assertThat(getJson("/api/sessions/" + id + "/logs?lines=0", 400).path("fields").get(0))
        .hasToString("{\"field\":\"lines\",\"message\":\"must be between 1 and 5000\"}");
    assertThat(getJson("/api/sessions/" + id + "/logs?node=64", 400)).isNotNull();
    assertThat(as(ALICE_TOKEN, get("/api/sessions/" + id + "/logs")).getStatus()).isEqualTo(404);
  }

  @Test
  void infoNamesTheTokensOwnerAndWhereTheTemporalUiListsWorkflows() throws Exception {
    JsonNode admin = getJson("/api/info", 200);
    assertThat(admin.path("owner").asText()).isEqualTo("admin");
    assertThat(admin.path("admin").asBoolean()).isTrue();
    assertThat(admin.path("temporalWorkflows").asText())
        .isEqualTo("http://localhost:8233/namespaces/default/workflows");
    JsonNode alice = mapper.readTree(as(ALICE_TOKEN, get("/api/info")).getContentAsString());
    assertThat(alice.path("owner").asText()).isEqualTo("alice");
    assertThat(alice.path("admin").asBoolean()).isFalse();
  }

  @Test
  void metricsAreListedInStepOrder() throws Exception {
    String id = create("with metrics");
    for (long step : List.of(3L, 1L, 2L)) {
      jdbc.sql(
              """
              INSERT INTO metrics (session_id, step, total_steps, epoch, loss, accuracy,
                                   learning_rate, grad_norm, tokens_per_s)
              VALUES (CAST(:id AS uuid), :step, 10, 1, :loss, 0.5, 0.003, 1.25, 5000)
              """)
          .param("id", id)
          .param("step", step)
          .param("loss", 4.0 - step)
          .update();
    }

    JsonNode metrics = getJson("/api/sessions/" + id + "/metrics", 200);

    assertThat(metrics.path("sessionId").asText()).isEqualTo(id);
    assertThat(metrics.path("metrics").findValuesAsText("step")).containsExactly("1", "2", "3");
    JsonNode first = metrics.path("metrics").get(0);
    assertThat(first.path("totalSteps").asLong()).isEqualTo(10);
    assertThat(first.path("epoch").asInt()).isEqualTo(1);
    assertThat(first.path("loss").asDouble()).isEqualTo(3.0);
    assertThat(first.path("accuracy").asDouble()).isEqualTo(0.5);
    assertThat(first.path("learningRate").asDouble()).isEqualTo(0.003);
    assertThat(first.path("gradNorm").asDouble()).isEqualTo(1.25);
    assertThat(first.path("tokensPerSecond").asDouble()).isEqualTo(5000.0);
    assertThat(first.path("recordedAt").asText()).isNotEmpty();
    assertThat(
            getJson("/api/sessions/" + id + "/metrics?afterStep=1&limit=1", 200)
                .path("metrics")
                .findValuesAsText("step"))
        .containsExactly("2");
  }

  @Test
  void metricsAnswer404ForAnUnknownSession() throws Exception {
    getJson("/api/sessions/" + UUID.randomUUID() + "/metrics", 404);
  }

  @Test
  void summaryIsCutToFitTemporalsLimitWithoutSplittingACharacter() {
    String name = "\u00e9".repeat(150); // 2 bytes each in UTF-8

    String summary = SessionService.summary(name);

    assertThat(summary.getBytes(StandardCharsets.UTF_8).length).isLessThanOrEqualTo(200);
    assertThat(summary).startsWith("Training \u00e9");
    assertThat(("Training " + name)).startsWith(summary);
    assertThat(summary.length()).isEqualTo(9 + (200 - 9) / 2);
  }

  private String create(String name) throws Exception {
    ObjectNode body = validRequest();
    body.put("name", name);
    MockHttpServletResponse response = post(body);
    assertThat(response.getStatus()).isEqualTo(201);
    return mapper.readTree(response.getContentAsString()).path("id").asText();
  }

  /** Performs {@code request} with {@code token} instead of the admin's. */
  private MockHttpServletResponse as(
      String token,
      org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder request)
      throws Exception {
    return mvc.perform(request.header("Authorization", "Bearer " + token))
        .andReturn()
        .getResponse();
  }

  private static org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder postTo(
      String path, ObjectNode body) {
    org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder request =
        org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post(path);
    return body == null
        ? request
        : request.contentType(MediaType.APPLICATION_JSON).content(body.toString());
  }

  private static org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder putTo(
      String path, String json) {
    return org.springframework.test.web.servlet.request.MockMvcRequestBuilders.put(path)
        .contentType(MediaType.APPLICATION_JSON)
        .content(json);
  }

  private static org.springframework.test.web.servlet.request.MockHttpServletRequestBuilder
      deleteAt(String path) {
    return org.springframework.test.web.servlet.request.MockMvcRequestBuilders.delete(path);
  }

  private MockHttpServletResponse put(String path, String json) throws Exception {
    return mvc.perform(
            org.springframework.test.web.servlet.request.MockMvcRequestBuilders.put(path)
                .contentType(MediaType.APPLICATION_JSON)
                .content(json))
        .andReturn()
        .getResponse();
  }

  private MockHttpServletResponse post(ObjectNode body, String idempotencyKey) throws Exception {
    return mvc.perform(
            org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post(
                    "/api/sessions")
                .contentType(MediaType.APPLICATION_JSON)
                .header("Idempotency-Key", idempotencyKey)
                .content(mapper.writeValueAsString(body)))
        .andReturn()
        .getResponse();
  }

  private MockHttpServletResponse postEmpty(String path) throws Exception {
    return mvc.perform(
            org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post(path))
        .andReturn()
        .getResponse();
  }

  private MockHttpServletResponse post(ObjectNode body) throws Exception {
    return mvc.perform(
            org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post(
                    "/api/sessions")
                .contentType(MediaType.APPLICATION_JSON)
                .content(mapper.writeValueAsString(body)))
        .andReturn()
        .getResponse();
  }

  private JsonNode getJson(String path, int status) throws Exception {
    MockHttpServletResponse response = mvc.perform(get(path)).andReturn().getResponse();
    assertThat(response.getStatus()).as(response.getContentAsString()).isEqualTo(status);
    return mapper.readTree(response.getContentAsString());
  }

  private static List<String> names(JsonNode list) {
    List<String> names = new ArrayList<>();
    list.path("sessions").forEach(session -> names.add(session.path("name").asText()));
    return names;
  }
}
