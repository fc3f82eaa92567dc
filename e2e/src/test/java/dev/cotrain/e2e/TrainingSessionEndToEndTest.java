package dev.cotrain.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.CotrainApiApplication;
import dev.cotrain.api.auth.Tokens;
import dev.cotrain.workflows.session.TrainingActivities.TrainingProgress;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.common.converter.DefaultDataConverter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.boot.web.servlet.context.ServletWebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * Sessions through every real part: the API (this JVM, random port), a worker JVM, a Temporal dev
 * server persisted to a file, the PostgreSQL that {@code ./cotrain test} starts, and the real
 * trainer ({@code COTRAIN_PYTHON}) on a debug-size model. One stack serves every test; the tests
 * that crash a part bring it back.
 */
@SpringBootTest(
    classes = CotrainApiApplication.class,
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "spring.datasource.url=${COTRAIN_TEST_JDBC_URL:jdbc:postgresql://127.0.0.1:55432/cotrain}",
      "cotrain.reconcile.interval=1s"
    })
class TrainingSessionEndToEndTest {

  private static final int STEPS = 30;

  /** How long the browser may take to show what the API already has. */
  private static final Duration WAIT = Duration.ofSeconds(20);

  private static final List<String> FINAL = List.of("COMPLETED", "FAILED", "CANCELLED");

  @TempDir static Path storage;
  @TempDir static Path services;
  private static Stack stack;

  @LocalServerPort int port;
  @Autowired WorkflowClient temporal;
  @Autowired JdbcClient jdbc;

  /** The tests' admin token, stored (hashed) before each test. */
  private static final String ADMIN_TOKEN = "cotrain_e2e-admin-000000000000000000000000000000000";

  @BeforeEach
  void adminToken() {
    jdbc.sql(
            """
            INSERT INTO api_tokens (id, name, owner, admin, token_hash)
            VALUES (gen_random_uuid(), 'e2e', 'admin', true, :hash)
            ON CONFLICT (token_hash) DO NOTHING
            """)
        .param("hash", Tokens.hash(ADMIN_TOKEN))
        .update();
  }

  private final ObjectMapper json = new ObjectMapper();
  private final HttpClient http = HttpClient.newHttpClient();

  /**
   * WebSockets get a client of their own: an upgrade sent on a kept-alive connection that has
   * served Tomcat's 100 requests is answered {@code Connection: upgrade, close}, which the JDK's
   * WebSocket client refuses.
   */
  private final HttpClient webSockets = HttpClient.newHttpClient();

  private final List<WebSocket> sockets = new ArrayList<>();

  /** Read when the application context starts, after {@link #startStack()}. */
  @DynamicPropertySource
  static void temporalTarget(DynamicPropertyRegistry registry) {
    registry.add("cotrain.temporal.target", () -> stack.temporalTarget());
    registry.add("cotrain.storage-root", () -> storage.toString()); // the workers' logs
  }

  @BeforeAll
  static void startStack() throws Exception {
    stack = new Stack(services);
    stack.startTemporal();
    stack.startWorker(storage);
  }

  /**
   * The API the fuzz run drives, started by its test: a database of its own (what the fuzzer
   * creates stays out of the stack's) and a Temporal namespace no worker serves (its sessions are
   * stored but never run).
   */
  private static ConfigurableApplicationContext fuzzedApi;

  /** A second API on the stack's database, for the relay test, started by it. */
  private static ConfigurableApplicationContext secondApi;

  private static int port(ConfigurableApplicationContext api) {
    return ((ServletWebServerApplicationContext) api).getWebServer().getPort();
  }

  private static ConfigurableApplicationContext api(String jdbcUrl, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                // arguments: they override application.properties
                "--server.port=0",
                "--spring.datasource.url=" + jdbcUrl,
                "--cotrain.temporal.target=" + stack.temporalTarget(),
                "--cotrain.storage-root=" + storage,
                // The stack's API settles the rows; this one would find none of its workflows.
                "--cotrain.reconcile.enabled=false"));
    args.addAll(List.of(more));
    return new SpringApplicationBuilder(CotrainApiApplication.class)
        .run(args.toArray(String[]::new));
  }

  private int fuzzedApiPort() {
    if (fuzzedApi == null) {
      String database = "cotrain_fuzz";
      if (jdbc.sql("SELECT count(*) FROM pg_database WHERE datname = :name")
              .param("name", database)
              .query(Long.class)
              .single()
          == 0) {
        jdbc.sql("CREATE DATABASE " + database).update();
      }
      fuzzedApi =
          api(
              Stack.JDBC_URL.replaceAll("/[^/]+$", "/" + database),
              "--cotrain.temporal.namespace=" + Stack.FUZZ_NAMESPACE,
              // No worker answers a pause or a config check there: the API stops waiting soon.
              "--cotrain.temporal.update-timeout=2s",
              "--cotrain.temporal.config-check-timeout=200ms");
      fuzzedApi
          .getBean(JdbcClient.class)
          .sql(
              "INSERT INTO api_tokens (id, name, owner, admin, token_hash)"
                  + " VALUES (gen_random_uuid(), 'e2e', 'admin', true, :hash)"
                  + " ON CONFLICT (token_hash) DO NOTHING")
          .param("hash", Tokens.hash(ADMIN_TOKEN))
          .update();
    }
    return port(fuzzedApi);
  }

  private static int secondApiPort() {
    if (secondApi == null) {
      secondApi = api(Stack.JDBC_URL);
    }
    return port(secondApi);
  }

  @AfterAll
  static void stopStack() throws Exception {
    for (ConfigurableApplicationContext api :
        new ConfigurableApplicationContext[] {fuzzedApi, secondApi}) {
      if (api != null) {
        api.close();
      }
    }
    if (stack != null) {
      stack.close();
    }
  }

  @AfterEach
  void closeSockets() {
    sockets.forEach(s -> s.sendClose(WebSocket.NORMAL_CLOSURE, "done"));
  }

  @Test
  void sessionTrainsToCompletionWithLiveProgressInOrder() throws Exception {
    JsonNode created = create(request(STEPS, 10));
    String id = created.get("id").asText();
    assertThat(created.get("workflowId").asText()).isEqualTo("session-" + id);

    List<JsonNode> messages = followUntilFinished(id);

    JsonNode last = messages.get(messages.size() - 1);
    assertThat(last.get("type").asText()).isEqualTo("session.status");
    assertThat(last.get("error").isNull()).as("error: %s", last.get("error")).isTrue();
    assertThat(last.get("status").asText()).isEqualTo("COMPLETED");
    List<JsonNode> progress = ofType(messages, "training.progress");
    assertThat(progress).hasSizeGreaterThan(STEPS / 2);
    assertThat(progress).extracting(m -> m.get("step").asLong()).isSorted().contains((long) STEPS);
    JsonNode first = progress.get(0);
    assertThat(first.get("sessionId").asText()).isEqualTo(id);
    assertThat(first.get("participants").asInt()).isEqualTo(1);
    assertThat(first.get("metrics").get("batchSize").asInt()).isEqualTo(4);
    assertThat(first.get("metrics").get("learningRate").asDouble()).isPositive();
    assertThat(first.get("metrics").get("accuracy").isNumber()).isTrue();
    // A session waiting for its slot is QUEUED, a launched trainer STARTING, then RUNNING.
    // ... and EVALUATING while its export, registered, is evaluated on the held-out split.
    assertThat(eventStatuses(id))
        .containsExactly("QUEUED", "STARTING", "RUNNING", "EVALUATING", "COMPLETED");
    assertThat(ofType(messages, "session.status"))
        .extracting(m -> m.get("status").asText())
        .containsSubsequence("STARTING", "RUNNING", "COMPLETED");

    // The export is the next version of the session's model, evaluated, loadable by transformers.
    String model = created.get("request").get("modelName").asText();
    JsonNode version = get("/api/models/" + model + "/versions/latest");
    Path finalModel = Path.of(last.get("finalModelPath").asText());
    assertThat(finalModel)
        .isEqualTo(
            storage
                .toRealPath()
                .resolve("models/final")
                .resolve(model)
                .resolve("v" + version.get("version").asInt()));
    assertThat(version.get("sessionId").asText()).isEqualTo(id);
    assertThat(version.get("evaluation").asText())
        .as("evaluation error: %s", version.get("evaluationError"))
        .isEqualTo("EVALUATED");
    assertThat(version.get("parameters").asLong()).isPositive();
    assertThat(version.get("dataFingerprint").asText()).isNotBlank();
    assertThat(version.get("configHash").asText()).hasSize(64);
    assertThat(version.get("files").findValuesAsText("name"))
        .contains("config.json", "model.safetensors", "tokenizer.json", "README.md");
    double evalLoss = version.get("evaluations").get(0).get("loss").asDouble();
    String loaded =
        python(
            "import sys, json, transformers as t\n"
                + "d = sys.argv[1]\n"
                + "m = t.AutoModelForCausalLM.from_pretrained(d)\n"
                + "tok = t.AutoTokenizer.from_pretrained(d)\n"
                + "text = 'Cotrain trains models, and never loses them.'\n"
                + "ids = tok(text)['input_ids']\n"
                + "print(json.dumps({'params': sum(p.numel() for p in m.parameters()),"
                + " 'roundtrip': tok.decode(ids, skip_special_tokens=True) == text}))\n",
            finalModel.toString());
    JsonNode check = json.readTree(loaded.strip().lines().reduce((a, b) -> b).orElseThrow());
    assertThat(check.get("roundtrip").asBoolean()).isTrue();
    assertThat(check.get("params").asLong()).isEqualTo(version.get("parameters").asLong());
    // Evaluating it again, as the API's evaluations do, gives the stored eval loss.
    String again =
        python(
            "import runpy, sys\n"
                + "sys.argv = ['evaluate', '--model', sys.argv[1], '--data', sys.argv[2]]\n"
                + "runpy.run_module('cotrain_core.evaluate', run_name='__main__')\n",
            finalModel.toString(),
            validationSplit(id));
    JsonNode reevaluated = json.readTree(again.strip().lines().reduce((a, b) -> b).orElseThrow());
    assertThat(reevaluated.get("loss").asDouble()).isCloseTo(evalLoss, within(1e-6));

    assertThat(metricRows(id)).isEqualTo(STEPS);
    assertThat(checkpointSteps(id)).containsExactly(10L, 20L, 30L);
    JsonNode stored = get("/api/sessions/" + id);
    assertThat(stored.get("status").asText()).isEqualTo("COMPLETED");
    assertThat(stored.get("progress").asDouble()).isEqualTo(100.0);
    awaitWorkflow(id, WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
    // The Temporal UI and CLI find sessions by their typed search attributes.
    assertThat(
            stack.temporalCli(
                "workflow",
                "list",
                "--query",
                "CotrainStatus='COMPLETED' AND CotrainModel='llama2-debug'"))
        .contains("session-" + id);
  }

  @Test
  void theWorkerRegistersItsHostAndDevices() throws Exception {
    JsonNode host = null;
    for (JsonNode worker : get("/api/workers").get("workers")) {
      if (worker.get("id").asText().equals(Stack.HOST_ID)) {
        host = worker;
      }
    }

    assertThat(host).as("host %s in /api/workers", Stack.HOST_ID).isNotNull();
    assertThat(host.get("alive").asBoolean()).isTrue();
    assertThat(host.get("cpuSlots").asInt()).isEqualTo(2);
    assertThat(host.get("devices")).extracting(d -> d.get("index").asInt()).containsExactly(0, 1);
    // What no registered host could ever hold is refused at once, naming the field.
    HttpResponse<String> refused =
        createWithKey(request(STEPS, 10).replace("\"gpusPerNode\": 1", "\"gpusPerNode\": 3"), null);
    assertThat(refused.statusCode()).isEqualTo(400);
    assertThat(refused.body())
        .contains("distributedConfig.gpusPerNode")
        .contains("no registered host has 3 devices (the largest has 2)");
  }

  @Test
  void sessionsHoldDistinctDevicesAndOneWaitsUntilADeviceIsFree() throws Exception {
    // The e2e host offers two declared devices: two sessions hold one each, a third waits.
    String a = create(request(5000, 1000)).get("id").asText();
    String b = create(request(5000, 1000)).get("id").asText();
    try {
      awaitStep(subscribe(a), 2);
      awaitStep(subscribe(b), 2);
      String c = create(request(STEPS, 10)).get("id").asText();
      Stack.await(
          Duration.ofSeconds(60),
          "the third session waiting for a device",
          () -> causes(c).contains("waiting"));
      assertThat(get("/api/sessions/" + c).get("status").asText()).isEqualTo("QUEUED");
      assertThat(events(c).get(events(c).size() - 1).get("message").asText())
          .isEqualTo("waiting for 1 free devices on one host (most free now: 0)");

      // Each trainer sees only the device its session holds.
      String deviceOfA = cudaVisibleDevices(a);
      assertThat(List.of(deviceOfA, cudaVisibleDevices(b))).containsExactlyInAnyOrder("0", "1");

      post("/api/sessions/" + a + "/cancel", 200);
      assertThat(finalStatus(c)).isEqualTo("COMPLETED");
      assertThat(events(c))
          .anyMatch(
              e ->
                  e.get("cause").asText().equals("trainer_launched")
                      && e.get("message").asText().endsWith("devices " + deviceOfA));
    } finally {
      post("/api/sessions/" + a + "/cancel", 409, 200);
      post("/api/sessions/" + b + "/cancel", 409, 200);
    }
  }

  @Test
  void aHigherPrioritySessionPreemptsTheNewestLowerOneWhichResumesFromItsCheckpointLater()
      throws Exception {
    // Both devices busy with priority 0; a priority 10 session takes the most recently placed
    // one's device, and that session queues again and resumes from the checkpoint it wrote once
    // a device is free.
    String older = create(request(5000, 1000)).get("id").asText();
    awaitStep(subscribe(older), 2);
    String newer = create(request(100, 1000)).get("id").asText();
    try {
      awaitStep(subscribe(newer), 2);
      String urgent = create(withPriority(request(STEPS, 10), 10)).get("id").asText();
      awaitStatus(urgent, "RUNNING");
      assertThat(causes(newer)).contains("preempted", "requeued");
      assertThat(get("/api/sessions/" + newer).get("status").asText()).isEqualTo("QUEUED");
      // The older one gives its device back: the preempted session resumes there.
      post("/api/sessions/" + older + "/cancel", 200);

      assertThat(finalStatus(urgent)).isEqualTo("COMPLETED");
      assertThat(finalStatus(newer)).isEqualTo("COMPLETED");

      assertThat(events(urgent))
          .anyMatch(
              e ->
                  e.get("cause").asText().equals("waiting")
                      && e.get("message")
                          .asText()
                          .equals(
                              "preempting lower-priority session "
                                  + newer
                                  + " (they checkpoint first)"));
      List<JsonNode> events = events(newer);
      assertThat(events.stream().map(e -> e.get("cause").asText()).toList())
          .containsSubsequence(
              "trainer_started", "preempted", "requeued", "trainer_started", "completed");
      assertThat(events)
          .anyMatch(
              e ->
                  e.get("cause").asText().equals("preempted")
                      && e.get("message").asText().contains(urgent));
      assertThat(events)
          .filteredOn(e -> e.get("cause").asText().equals("trainer_started"))
          .last()
          .satisfies(e -> assertThat(e.get("message").asText()).startsWith("resumed from step"));
      assertThat(metricRows(newer)).isEqualTo(100);
    } finally {
      post("/api/sessions/" + older + "/cancel", 409, 200);
      post("/api/sessions/" + newer + "/cancel", 409, 200);
    }
  }

  @Test
  void gangsOfTwoNodesRunOnTwoHostsAndRestartTogetherFromTheirCommonCheckpoint() throws Exception {
    stack.startSecondWorker(storage);
    try {
      String body = gang("ddp", 60, "");
      String clean = create(body).get("id").asText();
      assertThat(finalStatus(clean)).isEqualTo("COMPLETED");
      assertThat(events(clean))
          .anyMatch(
              e ->
                  e.get("message")
                      .asText()
                      .equals(
                          "attempt 1 on 2 nodes: "
                              + Stack.HOST_ID
                              + ", devices 0; "
                              + Stack.HOST_ID
                              + "-b, devices 0"));
      // Progress comes from global rank 0; every node's machine samples are kept, by node.
      assertThat(get("/api/sessions/" + clean + "/system").get("samples"))
          .extracting(sample -> sample.get("node").asInt())
          .contains(0, 1);

      // SIGKILL of node 1's rank: both nodes stop and restart from the newest checkpoint, and
      // the run ends exactly as the clean one.
      String killed = create(body).get("id").asText();
      awaitStep(subscribe(killed), 25);
      awaitCheckpoint(killed);
      ProcessHandle rank1 =
          Stack.processesOf(killed).stream()
              .filter(p -> environment(p).contains("RANK=1"))
              .findFirst()
              .orElseThrow();
      rank1.destroyForcibly();
      assertThat(finalStatus(killed)).isEqualTo("COMPLETED");
      assertThat(events(killed))
          .anyMatch(
              e ->
                  e.get("cause").asText().equals("retry")
                      && e.get("message").asText().contains("rank 1"));
      assertThat(events(killed))
          .filteredOn(e -> e.get("cause").asText().equals("trainer_started"))
          .last()
          .satisfies(
              e -> assertThat(e.get("message").asText()).matches("resumed from step [1-5]0"));
      assertThat(losses(killed)).hasSize(60).isEqualTo(losses(clean));

      String diloco =
          create(gang("diloco", 20, ", \"diloco\": {\"innerSteps\": 5}")).get("id").asText();
      assertThat(finalStatus(diloco)).isEqualTo("COMPLETED");
      assertThat(get("/api/sessions/" + diloco + "/syncs").get("syncs"))
          .isNotEmpty()
          .allMatch(sync -> sync.get("participants").asInt() == 2);
    } finally {
      stack.stopSecondWorker();
    }
  }

  @Test
  void theQueuePlacesByPriorityThenByFairShareBetweenOwners() throws Exception {
    // Alice's two priority-10 sessions hold both devices (nothing below can preempt them).
    String held1 =
        create(withOwner(withPriority(request(5000, 1000), 10), "alice")).get("id").asText();
    String held2 =
        create(withOwner(withPriority(request(5000, 1000), 10), "alice")).get("id").asText();
    List<String> queued = new ArrayList<>();
    try {
      awaitStep(subscribe(held1), 2);
      awaitStep(subscribe(held2), 2);
      String alice1 = create(withOwner(request(STEPS, 10), "alice")).get("id").asText();
      String alice2 = create(withOwner(request(STEPS, 10), "alice")).get("id").asText();
      String bob = create(withOwner(request(STEPS, 10), "bob")).get("id").asText();
      String urgent =
          create(withOwner(withPriority(request(STEPS, 10), 5), "alice")).get("id").asText();
      queued.addAll(List.of(alice1, alice2, bob, urgent));
      BlockingQueue<String> bobsInbox = subscribe(bob);

      // Priority first; then Bob, who holds nothing, before Alice, who holds two devices.
      List<String> expected = List.of(urgent, bob, alice1, alice2);
      Stack.await(
          Duration.ofSeconds(60),
          "the queue in priority and fair-share order",
          () -> queueOrder().equals(expected));
      JsonNode first = get("/api/queue").get("waiting").get(0);
      assertThat(first.get("position").asInt()).isEqualTo(1);
      assertThat(first.get("reason").asText())
          .isEqualTo("waiting for 1 free devices on one host (most free now: 0)");
      assertThat(get("/api/sessions/" + bob).get("queue").get("reason").asText())
          .isEqualTo("queued behind position 1");
      Stack.await(
          Duration.ofSeconds(10),
          "Bob's position 2 pushed over the WebSocket",
          () ->
              bobsInbox.stream()
                  .anyMatch(m -> m.matches(".*\"type\":\"session.queue\".*\"position\":2,.*")));

      // One device at a time: the first goes to the urgent session, the second to Bob.
      post("/api/sessions/" + held1 + "/cancel", 200);
      awaitPlaced(urgent);
      assertThat(status(bob)).isEqualTo("QUEUED");
      post("/api/sessions/" + held2 + "/cancel", 200);
      awaitPlaced(bob);
      assertThat(status(alice1)).isEqualTo("QUEUED");
      assertThat(finalStatus(urgent)).isEqualTo("COMPLETED");
      assertThat(finalStatus(bob)).isEqualTo("COMPLETED");
    } finally {
      post("/api/sessions/" + held1 + "/cancel", 409, 200);
      post("/api/sessions/" + held2 + "/cancel", 409, 200);
      for (String id : queued) {
        post("/api/sessions/" + id + "/cancel", 409, 200);
      }
    }
  }

  @Test
  void killedTrainerIsRetriedAndResumesFromItsNewestCheckpoint() throws Exception {
    int steps = 60; // room after the first checkpoint's commit, which may come steps late
    String id = create(request(steps, 10)).get("id").asText();
    BlockingQueue<String> inbox = subscribe(id);
    awaitCheckpoint(id); // committed in the background, possibly steps after its own
    List<ProcessHandle> trainers = Stack.processesOf(id);
    assertThat(trainers).hasSize(1);
    trainers.get(0).destroyForcibly();

    JsonNode last = followUntilFinished(inbox).get(0);

    assertThat(last.get("status").asText()).isEqualTo("COMPLETED");
    assertThat(trainerLog(id)).containsPattern("resumed from .*/" + id + "/step-[1-6]0");
    assertThat(metricRows(id)).isEqualTo(steps);
    assertThat(events(id))
        .anyMatch(
            e ->
                e.get("status").asText().equals("QUEUED")
                    && e.get("cause").asText().equals("retry"));
  }

  @Test
  void dilocoSessionWithTwoWorkersSyncsAndCompletes() throws Exception {
    String id =
        create(
                """
                {"name": "e2e diloco", "description": "two CPU workers",
                 "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
                 "trainingConfig": {"batchSize": 4, "learningRate": 0.003, "epochs": 1,
                                    "optimizer": "adamw", "maxSteps": 20},
                 "distributedConfig": {"nodes": 1, "gpusPerNode": 2, "strategy": "diloco",
                                       "diloco": {"innerSteps": 5, "pseudoGradDtype": "bf16",
                                                  "islandSize": 1}},
                 "dataConfig": {"seqLength": 64},
                 "checkpointConfig": {"interval": 10}}
                """)
            .get("id")
            .asText();

    List<JsonNode> messages = followUntilFinished(id);

    JsonNode last = messages.get(messages.size() - 1);
    assertThat(last.get("status").asText())
        .as("error: %s", last.get("error"))
        .isEqualTo("COMPLETED");
    List<JsonNode> progress = ofType(messages, "training.progress");
    assertThat(progress).isNotEmpty().allMatch(m -> m.get("participants").asInt() == 2);
    assertThat(progress).extracting(m -> m.get("step").asLong()).isSorted().contains(20L);
    assertThat(metricRows(id)).isEqualTo(20);
    // islandSize 1: each worker is its own replica, so every outer step averages two of them
    assertThat(get("/api/sessions/" + id + "/syncs").get("syncs"))
        .hasSize(4)
        .allMatch(sync -> sync.get("participants").asInt() == 2);
  }

  @Test
  void sessionTheTrainerRejectsIsRefusedAtCreateAndOneTheMachineCannotHoldEndsFailed()
      throws Exception {
    long sessions = jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single();
    // The worker judges the request by the trainer's own rules before anything is stored: BERT
    // has no published 7B dimensions, and a DiLoCo checkpoint must fall on an outer step.
    HttpResponse<String> bert =
        createWithKey(
            request(STEPS, 10)
                .replace("\"llama2\", \"size\": \"debug\"", "\"bert\", \"size\": \"7B\""),
            null);
    HttpResponse<String> diloco =
        createWithKey(
            request(STEPS, 15)
                .replace(
                    "\"strategy\": \"ddp\"",
                    "\"strategy\": \"diloco\", \"diloco\": {\"innerSteps\": 10}"),
            null);

    assertThat(bert.statusCode()).as(bert.body()).isEqualTo(400);
    JsonNode size = json.readTree(bert.body()).get("fields").get(0);
    assertThat(size.get("field").asText()).isEqualTo("modelConfig.size");
    assertThat(size.get("message").asText()).startsWith("model.size: bert has no 7B preset");
    assertThat(diloco.statusCode()).as(diloco.body()).isEqualTo(400);
    JsonNode interval = json.readTree(diloco.body()).get("fields").get(0);
    assertThat(interval.get("field").asText()).isEqualTo("checkpointConfig.interval");
    assertThat(interval.get("message").asText())
        .startsWith(
            "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (10)")
        .endsWith("got 15");
    assertThat(jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single())
        .isEqualTo(sessions);

    // What only the host can judge is still refused by the trainer at launch: a 70B model does
    // not fit this machine's memory. The session ends FAILED with the trainer's message.
    String id =
        create(request(STEPS, 10).replace("\"size\": \"debug\"", "\"size\": \"70B\""))
            .get("id")
            .asText();

    List<JsonNode> messages = followUntilFinished(id);

    JsonNode last = messages.get(messages.size() - 1);
    assertThat(last.get("status").asText()).isEqualTo("FAILED");
    assertThat(last.get("error").asText()).startsWith("model.size: 70B needs about");
    assertThat(get("/api/sessions/" + id).get("error").asText()).startsWith("model.size: 70B");
    awaitWorkflow(id, WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED);
  }

  @Test
  void pausedSessionResumesFromItsCheckpointAndTrainsExactlyAsAnUninterruptedRun()
      throws Exception {
    // Long enough that the pause, sent at step 20, lands mid-run even on a faster machine.
    String body = request(600, 100);
    String paused = create(body).get("id").asText();
    awaitStep(subscribe(paused), 20);

    JsonNode pausing = post("/api/sessions/" + paused + "/pause", 200);
    assertThat(pausing.get("status").asText()).isEqualTo("PAUSING");
    awaitStatus(paused, "PAUSED");

    long pausedAt = get("/api/sessions/" + paused).get("latestStep").asLong();
    assertThat(pausedAt).isBetween(20L, 599L);
    assertThat(checkpointSteps(paused)).contains(pausedAt); // written on the way out
    assertThat(Stack.processesOf(paused)).isEmpty();
    assertThat(post("/api/sessions/" + paused + "/resume", 200).get("status").asText())
        .isEqualTo("QUEUED");
    assertThat(finalStatus(paused)).isEqualTo("COMPLETED");
    // The reference runs alone: two trainers on the 2-core test machine slow each other down.
    String clean = create(body).get("id").asText();
    assertThat(finalStatus(clean)).isEqualTo("COMPLETED");

    assertThat(trainerLog(paused)).contains("step-" + pausedAt);
    assertThat(losses(paused)).hasSize(600).isEqualTo(losses(clean));
    assertThat(eventStatuses(paused))
        .containsSubsequence(
            "RUNNING", "PAUSING", "PAUSED", "QUEUED", "STARTING", "RUNNING", "COMPLETED");
  }

  @Test
  void impossibleControlRequestsAreConflictsThatSayWhy() throws Exception {
    String id = create(request(STEPS, 10)).get("id").asText();
    followUntilFinished(id);

    JsonNode refused = post("/api/sessions/" + id + "/pause", 409);

    assertThat(refused.get("detail").asText())
        .isEqualTo("cannot pause the session: it is COMPLETED");
  }

  @Test
  void cancelThroughTheApiEndsCancelledWithNoProcessLeft() throws Exception {
    String id = create(request(5000, 1000)).get("id").asText();
    awaitStep(subscribe(id), 5);

    assertThat(post("/api/sessions/" + id + "/cancel", 200).get("status").asText())
        .isEqualTo("CANCELLING");
    awaitStatus(id, "CANCELLED");

    assertThat(Stack.processesOf(id)).isEmpty();
    assertThat(eventStatuses(id)).endsWith("CANCELLING", "CANCELLED");
    assertThat(post("/api/sessions/" + id + "/resume", 409).get("detail").asText())
        .isEqualTo("cannot resume the session: it is CANCELLED");
  }

  @Test
  void cancelAndTerminateFromTheTemporalCliLeaveTruthfulRowsAndNoProcess() throws Exception {
    String cancelled = create(request(5000, 1000)).get("id").asText();
    String terminated = create(request(5000, 1000)).get("id").asText();
    awaitStep(subscribe(cancelled), 5);
    awaitStep(subscribe(terminated), 5);

    stack.temporalCli("workflow", "cancel", "--workflow-id", "session-" + cancelled);
    stack.temporalCli(
        "workflow", "terminate", "--workflow-id", "session-" + terminated, "--reason", "e2e");

    awaitStatus(cancelled, "CANCELLED");
    assertThat(Stack.processesOf(cancelled)).isEmpty();
    Stack.await(
        Duration.ofSeconds(30),
        "the workflow canceled",
        () ->
            workflowStatus(cancelled)
                == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED);
    awaitStatus(terminated, "CANCELLED"); // settled by the reconciler
    assertThat(events(terminated).get(events(terminated).size() - 1).get("message").asText())
        .isEqualTo("terminated in Temporal: e2e");
    // The trainer learns at its next heartbeat that its workflow is gone, and stops.
    Stack.await(
        Duration.ofSeconds(60),
        "no process of the terminated session",
        () -> Stack.processesOf(terminated).isEmpty());
  }

  @Test
  void killedWorkerIsReplacedAndTheSessionResumesFromItsNewestCheckpoint() throws Exception {
    String id = create(request(400, 50)).get("id").asText();
    BlockingQueue<String> inbox = subscribe(id);
    awaitStep(inbox, 60);
    awaitCheckpoint(id);
    List<ProcessHandle> orphans = Stack.processesOf(id);

    stack.killWorker();
    stack.startWorker(storage);

    assertThat(followUntilFinished(inbox).get(0).get("status").asText()).isEqualTo("COMPLETED");
    assertThat(trainerLog(id)).containsPattern("resumed from .*/" + id + "/step-\\d+");
    assertThat(metricRows(id)).isEqualTo(400);
    assertThat(orphans).noneMatch(ProcessHandle::isAlive);
  }

  @Test
  void theSessionOfAKilledWorkersHostIsPlacedOnAnotherHostAndCompletes() throws Exception {
    stack.startSecondWorker(storage);
    try {
      String id = create(request(400, 50)).get("id").asText();
      BlockingQueue<String> inbox = subscribe(id);
      awaitStep(inbox, 60);
      String first = launches(id).get(0);
      boolean onFirstHost = first.equals("attempt 1 on " + Stack.HOST_ID + ", devices 0");
      String other = onFirstHost ? Stack.HOST_ID + "-b" : Stack.HOST_ID;

      if (onFirstHost) {
        stack.killWorker();
      } else {
        stack.killSecondWorker();
      }

      assertThat(followUntilFinished(inbox).get(0).get("status").asText()).isEqualTo("COMPLETED");
      List<String> launches = launches(id);
      assertThat(launches).hasSize(2);
      assertThat(launches.get(1)).startsWith("attempt 2 on " + other + ", devices ");
      assertThat(metricRows(id)).isEqualTo(400);
    } finally {
      stack.stopSecondWorker();
      if (!stack.workerAlive()) {
        stack.startWorker(storage);
      }
    }
  }

  @Test
  void stoppedWorkerCheckpointsItsTrainerAndTheSessionIsQueuedAgainAtOnce() throws Exception {
    // Checkpoints are far apart: the only one before the end is the one written on the way out.
    String id = create(request(600, 1000)).get("id").asText();
    BlockingQueue<String> inbox = subscribe(id);
    awaitStep(inbox, 30);

    stack.stopWorker();
    stack.startWorker(storage);

    assertThat(followUntilFinished(inbox).get(0).get("status").asText()).isEqualTo("COMPLETED");
    JsonNode retry =
        events(id).stream()
            .filter(e -> e.get("cause").asText().equals("retry"))
            .findFirst()
            .orElseThrow();
    // Preempted, not lost: no heartbeat timeout was waited for.
    assertThat(retry.get("message").asText())
        .startsWith("attempt 1 failed: trainer stopped by a signal after writing a checkpoint");
    List<Long> checkpoints = checkpointSteps(id);
    assertThat(checkpoints).hasSize(1);
    long stoppedAt = checkpoints.get(0);
    assertThat(stoppedAt).isGreaterThanOrEqualTo(30);
    assertThat(events(id))
        .anyMatch(
            e ->
                e.get("cause").asText().equals("trainer_started")
                    && e.get("attempt").asInt() == 2
                    && e.get("message").asText().equals("resumed from step " + stoppedAt));
    assertThat(metricRows(id)).isEqualTo(600);
  }

  @Test
  void temporalServerRestartMidRunLosesNothing() throws Exception {
    String id = create(request(600, 100)).get("id").asText();
    awaitStep(subscribe(id), 20);

    stack.restartTemporal();

    assertThat(finalStatus(id)).isEqualTo("COMPLETED");
    assertThat(metricRows(id)).isEqualTo(600);
  }

  @Test
  void postgresStoppedMidRunStoresEveryStepExactlyOnceOnceItIsBack() throws Exception {
    String id = create(request(800, 200)).get("id").asText();
    BlockingQueue<String> inbox = subscribe(id);
    awaitStep(inbox, 20);

    Stack.postgres("stop");
    try {
      // Training goes on without the database: the steps in the trainer's heartbeats, which go
      // to Temporal, keep rising.
      long atStop = heartbeatStep(id);
      Stack.await(
          Duration.ofSeconds(30),
          "100 more steps while PostgreSQL is down",
          () -> heartbeatStep(id) >= Math.min(atStop + 100, 800));
      Thread.sleep(5_000); // and keep it down a while longer
    } finally {
      Stack.postgres("start");
    }

    awaitStatus(id, "COMPLETED");
    List<Long> steps =
        jdbc.sql("SELECT step FROM metrics WHERE session_id = ?::uuid ORDER BY step")
            .param(id)
            .query(Long.class)
            .list();
    assertThat(steps).hasSize(800).startsWith(1L).endsWith(800L);
  }

  @Test
  void retriedCreateWithTheSameIdempotencyKeyMakesOneSessionAndOneWorkflow() throws Exception {
    String body = request(5000, 1000);
    String key = "e2e-" + System.nanoTime();

    HttpResponse<String> first = createWithKey(body, key);
    HttpResponse<String> second = createWithKey(body, key);

    assertThat(first.statusCode()).isEqualTo(201);
    assertThat(second.statusCode()).isEqualTo(201);
    String id = json.readTree(first.body()).get("id").asText();
    assertThat(json.readTree(second.body()).get("id").asText()).isEqualTo(id);
    assertThat(second.headers().firstValue("Idempotent-Replayed")).hasValue("true");
    assertThat(
            jdbc.sql("SELECT count(*) FROM sessions WHERE id = ?::uuid")
                .param(id)
                .query(Long.class)
                .single())
        .isOne();
    assertThat(
            stack
                .temporalCli("workflow", "list", "--query", "WorkflowId='session-" + id + "'")
                .lines()
                .filter(l -> l.contains("session-" + id))
                .count())
        .isOne();
    post("/api/sessions/" + id + "/cancel", 200);
    awaitStatus(id, "CANCELLED");
  }

  // --- requests and helpers ------------------------------------------------------------------

  /** A debug-size Llama 2 on the built-in corpus: about 50 steps a second on 2 cores. */
  /**
   * Schemathesis (from PyPI) fuzzes the second API from its own OpenAPI document: no 5xx, no
   * invalid request accepted, every answer as the document says (status, content type, schema).
   * Revoking tokens is left out: the run would revoke its own.
   */
  @Test
  void aFuzzRunOfTheOpenApiDocumentFindsNothing() throws Exception {
    int apiPort = fuzzedApiPort();
    Path report = Files.createTempFile(storage, "schemathesis", ".log");
    Process fuzz =
        new ProcessBuilder(
                Path.of(Stack.PYTHON).resolveSibling("schemathesis").toString(),
                "run",
                "http://127.0.0.1:" + apiPort + "/v3/api-docs",
                "--header",
                "Authorization: Bearer " + ADMIN_TOKEN,
                "--checks",
                "not_a_server_error,negative_data_rejection,response_schema_conformance,"
                    + "status_code_conformance,content_type_conformance,"
                    + "response_headers_conformance",
                "--exclude-method",
                "DELETE",
                "--max-examples",
                "30",
                "--seed",
                "20261201",
                "--no-color")
            .redirectErrorStream(true)
            .redirectOutput(report.toFile())
            .start();
    assertThat(fuzz.waitFor(5, TimeUnit.MINUTES)).as("schemathesis ends").isTrue();
    assertThat(fuzz.exitValue()).as(Files.readString(report)).isZero();
  }

  /** Both API instances on one database relay every step and transition of a session. */
  @Test
  void twoApiInstancesBothRelayEveryEventOfASession() throws Exception {
    int second = secondApiPort();
    String id = create(request(STEPS, 10)).get("id").asText();
    BlockingQueue<String> first = subscribe(id, port, 0);
    BlockingQueue<String> other = subscribe(id, second, 0);

    List<JsonNode> fromFirst = allUntilFinished(first);
    List<JsonNode> fromSecond = allUntilFinished(other);

    // Every transition reaches both (progress may be coalesced for a client that lags, so steps
    // are checked as a whole: in order, to the last one).
    List<Long> stored = events(id).stream().map(e -> e.get("id").asLong()).toList();
    for (List<JsonNode> messages : List.of(fromFirst, fromSecond)) {
      assertThat(messages.get(messages.size() - 1).get("status").asText()).isEqualTo("COMPLETED");
      List<Long> seen = statusEvents(messages); // the first is the snapshot's
      assertThat(seen).containsAll(stored.stream().filter(e -> e > seen.get(0)).toList());
      assertThat(ofType(messages, "training.progress"))
          .extracting(m -> m.get("step").asLong())
          .hasSizeGreaterThan(STEPS / 2)
          .isSorted()
          .contains((long) STEPS);
    }
  }

  /** The ids of the transitions among {@code messages}, in order, without repeats. */
  private static List<Long> statusEvents(List<JsonNode> messages) {
    return ofType(messages, "session.status").stream()
        .map(m -> m.get("eventId").asLong())
        .distinct()
        .toList();
  }

  /**
   * The dashboard in a real browser: sign in, see a field error, create a session through the form,
   * watch it to 100 % with the loss chart drawing, then compare it with another session.
   */
  @Test
  void theDashboardSignsInCreatesASessionWatchesItLiveAndComparesTwo() throws Exception {
    String other = create(request(STEPS, 10).replace("0.003", "0.001")).get("id").asText();
    try (Browser browser = new Browser()) {
      browser.driver.get("http://localhost:" + port + "/");
      browser.find("#token").sendKeys("cotrain_wrong");
      browser.find("#signin-form button").click();
      browser.await(
          WAIT,
          "a wrong token is refused",
          d -> browser.find("#signin-error").getText().contains("unknown or revoked"));
      browser.find("#token").clear();
      browser.find("#token").sendKeys(ADMIN_TOKEN);
      browser.find("#signin-form button").click();
      browser.await(
          WAIT, "the sessions table", d -> browser.find("#who").getText().contains("admin"));

      // An invalid form: the API's messages appear next to the fields they name.
      browser.driver.get("http://localhost:" + port + "/#/new");
      browser.await(
          WAIT,
          "the API's defaults as placeholders",
          d ->
              browser
                  .find("[data-field='trainingConfig.seed'] input")
                  .getDomAttribute("placeholder")
                  .equals("default: 1234"));
      setField(browser, "trainingConfig.learningRate", "-1");
      setField(browser, "trainingConfig.batchSize", "0");
      browser.find("#create").click();
      browser.await(
          WAIT,
          "field errors",
          d -> !browser.find("#f-trainingConfig-learningRate-error").getText().isEmpty());
      assertThat(browser.find("#f-trainingConfig-learningRate-error").getText())
          .isEqualTo("must be greater than 0");
      assertThat(browser.find("#f-trainingConfig-batchSize-error").getText())
          .isEqualTo("must be between 1 and 4096");
      assertThat(browser.find("#f-trainingConfig-epochs-error").getText()).isEmpty();
      browser.screenshot("new-session-invalid");

      // A valid one: created, then followed live to the end on its own page.
      setField(browser, "name", "from the browser");
      setField(browser, "trainingConfig.learningRate", "0.003");
      setField(browser, "trainingConfig.batchSize", "4");
      setField(browser, "trainingConfig.maxSteps", String.valueOf(STEPS));
      setField(browser, "dataConfig.seqLength", "64");
      setField(browser, "checkpointConfig.interval", "10");
      browser.find("#create").click();
      browser.await(
          WAIT, "the session's page", d -> d.getCurrentUrl().matches(".*#/sessions/[0-9a-f-]{36}"));
      String id = browser.driver.getCurrentUrl().replaceAll(".*#/sessions/", "");
      assertThat(get("/api/sessions/" + id).get("name").asText()).isEqualTo("from the browser");
      browser.await(
          Duration.ofMinutes(3),
          "the progress bar at 100 %",
          d ->
              "100.0"
                  .equals(
                      browser
                          .find("#summary [role=progressbar]")
                          .getDomAttribute("aria-valuenow")));
      browser.await(WAIT, "COMPLETED", d -> browser.find("#status").getText().equals("COMPLETED"));
      browser.await(
          WAIT,
          "a loss point per step",
          d ->
              Integer.parseInt(browser.find("#chart-loss").getDomAttribute("data-points"))
                  >= STEPS);
      assertThat(browser.find("#chart-loss canvas").isDisplayed()).isTrue();
      // After a reload the whole curve comes from the history.
      browser.driver.navigate().refresh();
      browser.await(
          WAIT,
          "the whole curve after a reload",
          d ->
              Integer.toString(STEPS)
                  .equals(browser.find("#chart-loss").getDomAttribute("data-points")));
      browser.await(
          WAIT, "the log tail", d -> browser.find("#log").getText().contains("[info] device"));
      assertThat(browser.find("#checkpoints").getText()).contains("30");
      assertThat(browser.find("#pause").isEnabled()).isFalse();
      browser.screenshot("session");

      // Its model: the version the session registered, evaluated.
      String model = get("/api/sessions/" + id).get("request").get("modelName").asText();
      browser.driver.get("http://localhost:" + port + "/#/models/" + model);
      browser.await(
          WAIT,
          "the model's evaluated version",
          d ->
              browser.find("#versions tbody tr").getText().contains("EVALUATED")
                  && !browser.find("#versions tbody tr .eval-loss").getText().isEmpty());
      browser.screenshot("model");

      // The list shows both; picking them opens the comparison.
      awaitStatus(other, "COMPLETED");
      browser.driver.get("http://localhost:" + port + "/#/sessions");
      for (String picked : List.of(id, other)) {
        browser.await(
            WAIT, "the row of " + picked, d -> !d.findElements(rowPick(picked)).isEmpty());
        browser.driver.findElement(rowPick(picked)).click();
      }
      browser.screenshot("sessions");
      browser.find("#compare").click();
      browser.await(
          WAIT,
          "the overlaid loss curves",
          d -> Integer.parseInt(browser.find("#chart-compare").getDomAttribute("data-points")) > 0);
      assertThat(browser.driver.findElements(By.cssSelector("#compare-config thead th")))
          .hasSize(3);
      assertThat(
              browser
                  .find("#compare-config tr[data-key='trainingConfig.learningRate']")
                  .getDomAttribute("class"))
          .isEqualTo("diff");
      assertThat(
              browser
                  .find("#compare-config tr[data-key='modelConfig.type']")
                  .getDomAttribute("class"))
          .isEmpty();
      assertThat(browser.find("#compare-metrics").getText()).contains("COMPLETED");
      browser.screenshot("compare");
    }
  }

  private static By rowPick(String sessionId) {
    return By.cssSelector("tr[data-id='" + sessionId + "'] input.pick");
  }

  private static void setField(Browser browser, String field, String value) {
    org.openqa.selenium.WebElement input = browser.find("[data-field='" + field + "'] input");
    input.clear();
    input.sendKeys(value);
  }

  private static String request(int steps, int checkpointInterval) {
    return """
        {"name": "e2e \\"tiny\\" [run]", "description": "end-to-end test",
         "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
         "trainingConfig": {"batchSize": 4, "learningRate": 0.003, "epochs": 1,
                            "optimizer": "adamw", "maxSteps": %d},
         "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
         "dataConfig": {"seqLength": 64},
         "checkpointConfig": {"interval": %d}}
        """
        .formatted(steps, checkpointInterval);
  }

  /** Two nodes of one device each, checkpoints every 10 steps. */
  private static String gang(String strategy, int steps, String diloco) {
    return request(steps, 10)
        .replace(
            "\"nodes\": 1, \"gpusPerNode\": 1, \"strategy\": \"ddp\"",
            "\"nodes\": 2, \"gpusPerNode\": 1, \"strategy\": \"" + strategy + "\"" + diloco);
  }

  /** Runs {@code code} with the trainer's Python and {@code args}; answers its stdout. */
  private static String python(String code, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(Stack.PYTHON, "-c", code));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectErrorStream(false).start();
    String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String err = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(process.waitFor(5, TimeUnit.MINUTES)).isTrue();
    assertThat(process.exitValue()).as("python: %s %s", out, err).isZero();
    return out;
  }

  /** The held-out split the trainer reported for the session (as its evaluation used). */
  private String validationSplit(String id) {
    return jdbc.sql(
            "SELECT validation_path FROM model_versions WHERE session_id = CAST(:id AS uuid)")
        .param("id", id)
        .query(String.class)
        .single();
  }

  /** The environment variables of a process, one {@code NAME=value} per element. */
  private static List<String> environment(ProcessHandle process) {
    try {
      return List.of(Files.readString(Path.of("/proc/" + process.pid() + "/environ")).split("\0"));
    } catch (java.io.IOException e) {
      return List.of(); // it has exited
    }
  }

  private static String withOwner(String request, String owner) {
    return request.replaceFirst("\\{", "{\"owner\": \"" + owner + "\", ");
  }

  /** The session ids in {@code GET /api/queue}, next first. */
  private List<String> queueOrder() {
    try {
      List<String> ids = new ArrayList<>();
      get("/api/queue").get("waiting").forEach(w -> ids.add(w.get("sessionId").asText()));
      return ids;
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** The messages of the session's {@code trainer_launched} events: where each attempt ran. */
  private List<String> launches(String id) throws Exception {
    return events(id).stream()
        .filter(e -> e.get("cause").asText().equals("trainer_launched"))
        .map(e -> e.get("message").asText())
        .toList();
  }

  private String status(String id) {
    try {
      return get("/api/sessions/" + id).get("status").asText();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** Until the session has left the queue (it was placed and its trainer launched). */
  private void awaitPlaced(String id) throws Exception {
    Stack.await(Duration.ofSeconds(60), id + " placed", () -> !status(id).equals("QUEUED"));
  }

  private static String withPriority(String request, int priority) {
    return request.replaceFirst("\\{", "{\"priority\": " + priority + ", ");
  }

  private JsonNode create(String body) throws Exception {
    HttpResponse<String> response = createWithKey(body, null);
    assertThat(response.statusCode()).as(response.body()).isEqualTo(201);
    return json.readTree(response.body());
  }

  private HttpResponse<String> createWithKey(String body, String key) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/sessions"))
            .header("Authorization", "Bearer " + ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (key != null) {
      request.header("Idempotency-Key", key);
    }
    return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
  }

  private JsonNode post(String path, Integer... statuses) throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Authorization", "Bearer " + ADMIN_TOKEN)
                .POST(HttpRequest.BodyPublishers.noBody())
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isIn((Object[]) statuses);
    return json.readTree(response.body());
  }

  /** CUDA_VISIBLE_DEVICES in the environment of the session's trainer process. */
  private static String cudaVisibleDevices(String id) throws Exception {
    List<ProcessHandle> trainers = Stack.processesOf(id);
    assertThat(trainers).hasSize(1);
    String environ = Files.readString(Path.of("/proc/" + trainers.get(0).pid() + "/environ"));
    for (String entry : environ.split("\0")) {
      if (entry.startsWith("CUDA_VISIBLE_DEVICES=")) {
        return entry.substring("CUDA_VISIBLE_DEVICES=".length());
      }
    }
    return null;
  }

  private List<String> causes(String id) {
    try {
      return events(id).stream().map(e -> e.get("cause").asText()).toList();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private JsonNode get(String path) throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Authorization", "Bearer " + ADMIN_TOKEN)
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return json.readTree(response.body());
  }

  private List<JsonNode> events(String id) throws Exception {
    List<JsonNode> events = new ArrayList<>();
    get("/api/sessions/" + id + "/events").get("events").forEach(events::add);
    return events;
  }

  private List<String> eventStatuses(String id) throws Exception {
    return events(id).stream().map(e -> e.get("status").asText()).toList();
  }

  private void awaitStatus(String id, String status) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
    String now;
    while (!(now = get("/api/sessions/" + id).get("status").asText()).equals(status)) {
      assertThat(FINAL).as("%s reached %s instead of %s", id, now, status).doesNotContain(now);
      assertThat(System.nanoTime()).as("%s %s within 3 minutes", id, status).isLessThan(deadline);
      Thread.sleep(100);
    }
  }

  private List<Map<String, Object>> losses(String id) {
    return jdbc.sql("SELECT step, loss FROM metrics WHERE session_id = ?::uuid ORDER BY step")
        .param(id)
        .query()
        .listOfRows();
  }

  private long metricRows(String id) {
    return jdbc.sql("SELECT count(*) FROM metrics WHERE session_id = ?::uuid")
        .param(id)
        .query(Long.class)
        .single();
  }

  /** Waits until a checkpoint of the session is committed and stored. */
  private void awaitCheckpoint(String id) throws InterruptedException {
    Stack.await(
        Duration.ofSeconds(60),
        "a stored checkpoint of " + id,
        () -> !checkpointSteps(id).isEmpty());
  }

  private List<Long> checkpointSteps(String id) {
    return jdbc.sql("SELECT step FROM checkpoints WHERE session_id = ?::uuid ORDER BY step")
        .param(id)
        .query(Long.class)
        .list();
  }

  private String trainerLog(String id) throws Exception {
    return Files.readString(storage.resolve("logs/training").resolve(id).resolve("trainer.log"));
  }

  /** The row is stored before the workflow closes, so its close is awaited. */
  private void awaitWorkflow(String id, WorkflowExecutionStatus status) throws Exception {
    Stack.await(Duration.ofSeconds(30), "workflow " + status, () -> workflowStatus(id) == status);
  }

  private WorkflowExecutionStatus workflowStatus(String id) {
    return temporal
        .newUntypedWorkflowStub("session-" + id)
        .describe()
        .getWorkflowExecutionInfo()
        .getStatus();
  }

  /** The step in the training activity's newest heartbeat, as Temporal holds it (0 if none). */
  private long heartbeatStep(String id) {
    var pending =
        temporal
            .newUntypedWorkflowStub("session-" + id)
            .describe()
            .getRawDescription()
            .getPendingActivitiesList();
    if (pending.isEmpty() || !pending.get(0).hasHeartbeatDetails()) {
      return 0;
    }
    TrainingProgress progress =
        DefaultDataConverter.newDefaultInstance()
            .fromPayloads(
                0,
                Optional.of(pending.get(0).getHeartbeatDetails()),
                TrainingProgress.class,
                TrainingProgress.class);
    return progress.step();
  }

  private static List<JsonNode> ofType(List<JsonNode> messages, String type) {
    return messages.stream().filter(m -> m.get("type").asText().equals(type)).toList();
  }

  /** The session's final status, as its WebSocket subscription reports it. */
  private String finalStatus(String id) throws Exception {
    List<JsonNode> messages = followUntilFinished(id);
    return messages.get(messages.size() - 1).get("status").asText();
  }

  /** Every WebSocket message of the session until its final status. */
  private List<JsonNode> followUntilFinished(String id) throws Exception {
    return allUntilFinished(subscribe(id));
  }

  /** Every message of {@code inbox} up to and with the final status. */
  private List<JsonNode> allUntilFinished(BlockingQueue<String> inbox) throws Exception {
    List<JsonNode> messages = new ArrayList<>();
    while (true) {
      JsonNode message = next(inbox, messages);
      messages.add(message);
      if (isFinal(message)) {
        return messages;
      }
    }
  }

  /** The final status message of a subscription already followed for a while. */
  private List<JsonNode> followUntilFinished(BlockingQueue<String> inbox) throws Exception {
    List<JsonNode> seen = new ArrayList<>();
    while (true) {
      JsonNode message = next(inbox, seen);
      if (isFinal(message)) {
        return List.of(message);
      }
      seen.add(message);
    }
  }

  private static boolean isFinal(JsonNode message) {
    return message.get("type").asText().equals("session.status")
        && FINAL.contains(message.get("status").asText());
  }

  private void awaitStep(BlockingQueue<String> inbox, long step) throws Exception {
    List<JsonNode> seen = new ArrayList<>();
    while (true) {
      JsonNode message = next(inbox, seen);
      assertThat(isFinal(message)).as("ended before step %d: %s", step, message).isFalse();
      if (message.get("type").asText().equals("training.progress")
          && message.get("step").asLong() >= step) {
        return;
      }
    }
  }

  private BlockingQueue<String> subscribe(String id) throws Exception {
    return subscribe(id, port, null);
  }

  /** A client of the API on {@code apiPort}; with {@code afterStep}, every stored step after it. */
  private BlockingQueue<String> subscribe(String id, int apiPort, Integer afterStep)
      throws Exception {
    BlockingQueue<String> inbox = new LinkedBlockingQueue<>();
    String query = afterStep == null ? "" : "?afterStep=" + afterStep;
    sockets.add(
        webSockets
            .newWebSocketBuilder()
            .header("Authorization", "Bearer " + ADMIN_TOKEN)
            .buildAsync(
                URI.create("ws://127.0.0.1:" + apiPort + "/ws/sessions/" + id + query),
                new Collector(inbox))
            .get(10, TimeUnit.SECONDS));
    return inbox;
  }

  /** The next message; fails when none arrives within 3 minutes. */
  private JsonNode next(BlockingQueue<String> inbox, List<JsonNode> seen) throws Exception {
    String text = inbox.poll(3, TimeUnit.MINUTES);
    assertThat(text)
        .as(
            "a message within 3 minutes; got %s",
            seen.size() > 20 ? seen.subList(seen.size() - 20, seen.size()) : seen)
        .isNotNull();
    return json.readTree(text);
  }

  /** Collects whole text messages (frames may arrive in parts). */
  private static final class Collector implements WebSocket.Listener {
    private final BlockingQueue<String> inbox;
    private final StringBuilder partial = new StringBuilder();

    Collector(BlockingQueue<String> inbox) {
      this.inbox = inbox;
    }

    @Override
    public CompletionStage<?> onText(WebSocket socket, CharSequence data, boolean last) {
      partial.append(data);
      if (last) {
        inbox.add(partial.toString());
        partial.setLength(0);
      }
      socket.request(1);
      return null;
    }
  }
}
