package dev.cotrain.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.CotrainApiApplication;
import dev.cotrain.worker.CotrainWorker;
import dev.cotrain.worker.WorkerSettings;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;

/**
 * One session through every real part: the API (this JVM, random port), a worker (this JVM), the
 * Temporal dev server and PostgreSQL that {@code ./cotrain test} starts, and the real trainer
 * ({@code COTRAIN_PYTHON}) on a debug-size model.
 */
@SpringBootTest(
    classes = CotrainApiApplication.class,
    webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {
      "spring.datasource.url=${COTRAIN_TEST_JDBC_URL:jdbc:postgresql://127.0.0.1:55432/cotrain}",
      "cotrain.temporal.target=${COTRAIN_TEST_TEMPORAL_TARGET:127.0.0.1:17233}"
    })
class TrainingSessionEndToEndTest {

  private static final Map<String, String> ENV = System.getenv();
  private static final int STEPS = 30;

  @TempDir static Path storage;
  private static CotrainWorker worker;

  @LocalServerPort int port;
  @Autowired WorkflowClient temporal;
  @Autowired JdbcClient jdbc;

  private final ObjectMapper json = new ObjectMapper();
  private final HttpClient http = HttpClient.newHttpClient();
  private final List<WebSocket> sockets = new ArrayList<>();

  @BeforeAll
  static void startWorker() {
    worker =
        CotrainWorker.start(
            new WorkerSettings(
                ENV.getOrDefault("COTRAIN_TEST_TEMPORAL_TARGET", "127.0.0.1:17233"),
                "default",
                ENV.getOrDefault(
                    "COTRAIN_TEST_JDBC_URL", "jdbc:postgresql://127.0.0.1:55432/cotrain"),
                "cotrain",
                "cotrain",
                storage,
                ENV.getOrDefault("COTRAIN_PYTHON", "python3"),
                1,
                Duration.ofSeconds(1),
                Duration.ofSeconds(10)));
  }

  @AfterAll
  static void stopWorker() {
    if (worker != null) {
      worker.close();
    }
  }

  @Test
  void sessionTrainsToCompletionWithLiveProgressInOrder() throws Exception {
    JsonNode created = createSession();
    String id = created.get("id").asText();
    assertThat(created.get("workflowId").asText()).isEqualTo("session-" + id);

    List<JsonNode> messages = followUntilFinished(id);

    JsonNode last = messages.get(messages.size() - 1);
    assertThat(last.get("type").asText()).isEqualTo("session.status");
    assertThat(last.get("error").isNull()).as("error: %s", last.get("error")).isTrue();
    assertThat(last.get("status").asText()).isEqualTo("COMPLETED");
    List<JsonNode> progress =
        messages.stream().filter(m -> m.get("type").asText().equals("training.progress")).toList();
    assertThat(progress).hasSizeGreaterThan(STEPS / 2);
    assertThat(progress).extracting(m -> m.get("step").asLong()).isSorted().contains((long) STEPS);
    JsonNode first = progress.get(0);
    assertThat(first.get("sessionId").asText()).isEqualTo(id);
    assertThat(first.get("participants").asInt()).isEqualTo(1);
    assertThat(first.get("metrics").get("batchSize").asInt()).isEqualTo(4);
    assertThat(first.get("metrics").get("learningRate").asDouble()).isPositive();
    assertThat(first.get("metrics").get("accuracy").isNumber()).isTrue();

    Path finalModel = Path.of(last.get("finalModelPath").asText());
    assertThat(finalModel).startsWith(storage.toRealPath());
    assertThat(finalModel.resolve("config.json")).exists();
    assertThat(finalModel.resolve("model.safetensors")).exists();

    assertThat(metricRows(id)).isEqualTo(STEPS);
    assertThat(
            jdbc.sql("SELECT step FROM checkpoints WHERE session_id = ?::uuid ORDER BY step")
                .param(id)
                .query(Long.class)
                .list())
        .containsExactly(10L, 20L, 30L);
    JsonNode stored = get("/api/sessions/" + id);
    assertThat(stored.get("status").asText()).isEqualTo("COMPLETED");
    assertThat(stored.get("progress").asDouble()).isEqualTo(100.0);
    assertThat(
            temporal
                .newUntypedWorkflowStub("session-" + id)
                .describe()
                .getWorkflowExecutionInfo()
                .getStatus())
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
  }

  @Test
  void killedTrainerIsRetriedAndResumesFromItsNewestCheckpoint() throws Exception {
    String id = createSession().get("id").asText();
    BlockingQueue<String> inbox = subscribe(id);
    // Wait until a checkpoint exists (interval 10), then kill the trainer as a crash would.
    while (true) {
      JsonNode message = next(inbox, List.of());
      if (message.get("type").asText().equals("training.progress")
          && message.get("step").asLong() >= 12) {
        break;
      }
    }
    List<ProcessHandle> trainers =
        ProcessHandle.allProcesses()
            .filter(p -> p.info().commandLine().orElse("").contains(id + ".toml"))
            .toList();
    assertThat(trainers).hasSize(1);
    trainers.get(0).destroyForcibly();

    List<JsonNode> messages = new ArrayList<>();
    JsonNode last;
    do {
      last = next(inbox, messages);
      messages.add(last);
    } while (!last.get("type").asText().equals("session.status")
        || !List.of("COMPLETED", "FAILED").contains(last.get("status").asText()));

    assertThat(last.get("status").asText()).isEqualTo("COMPLETED");
    assertThat(
            Files.readString(storage.resolve("logs/training").resolve(id).resolve("trainer.log")))
        .containsPattern("resumed from .*/" + id + "/step-(10|20)");
    assertThat(metricRows(id)).isEqualTo(STEPS);
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
                                       "diloco": {"innerSteps": 5, "pseudoGradDtype": "bf16"}},
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
    List<JsonNode> progress =
        messages.stream().filter(m -> m.get("type").asText().equals("training.progress")).toList();
    assertThat(progress).isNotEmpty().allMatch(m -> m.get("participants").asInt() == 2);
    assertThat(progress).extracting(m -> m.get("step").asLong()).isSorted().contains(20L);
    assertThat(metricRows(id)).isEqualTo(20);
  }

  @Test
  void sessionTheTrainerRejectsEndsFailedWithTheTrainersMessage() throws Exception {
    // BERT has no published 7B dimensions: the trainer refuses the config, naming the key.
    String id = createSession("bert", "7B").get("id").asText();

    List<JsonNode> messages = followUntilFinished(id);

    JsonNode last = messages.get(messages.size() - 1);
    assertThat(last.get("status").asText()).isEqualTo("FAILED");
    assertThat(last.get("error").asText()).startsWith("model.size:");
    assertThat(get("/api/sessions/" + id).get("error").asText()).startsWith("model.size:");
  }

  private JsonNode createSession() throws Exception {
    return createSession("llama2", "debug");
  }

  private JsonNode createSession(String modelType, String size) throws Exception {
    String body =
        """
        {"name": "e2e \\"tiny\\" [run]", "description": "end-to-end test",
         "modelConfig": {"type": "%s", "size": "%s", "precision": "fp32"},
         "trainingConfig": {"batchSize": 4, "learningRate": 0.003, "epochs": 1,
                            "optimizer": "adamw", "maxSteps": %d},
         "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"},
         "dataConfig": {"seqLength": 64},
         "checkpointConfig": {"interval": 10}}
        """
            .formatted(modelType, size, STEPS);
    return create(body);
  }

  private JsonNode create(String body) throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/api/sessions"))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isEqualTo(201);
    return json.readTree(response.body());
  }

  private long metricRows(String id) {
    return jdbc.sql("SELECT count(*) FROM metrics WHERE session_id = ?::uuid")
        .param(id)
        .query(Long.class)
        .single();
  }

  private JsonNode get(String path) throws Exception {
    HttpResponse<String> response =
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
    return json.readTree(response.body());
  }

  /** Every WebSocket message of the session until its final status. */
  private List<JsonNode> followUntilFinished(String id) throws Exception {
    BlockingQueue<String> inbox = subscribe(id);
    List<JsonNode> messages = new ArrayList<>();
    while (true) {
      JsonNode message = next(inbox, messages);
      messages.add(message);
      if (message.get("type").asText().equals("session.status")
          && List.of("COMPLETED", "FAILED").contains(message.get("status").asText())) {
        return messages;
      }
    }
  }

  private BlockingQueue<String> subscribe(String id) throws Exception {
    BlockingQueue<String> inbox = new LinkedBlockingQueue<>();
    sockets.add(
        http.newWebSocketBuilder()
            .buildAsync(
                URI.create("ws://127.0.0.1:" + port + "/ws/sessions/" + id), new Collector(inbox))
            .get(10, TimeUnit.SECONDS));
    return inbox;
  }

  /** The next message; fails when none arrives within 3 minutes. */
  private JsonNode next(BlockingQueue<String> inbox, List<JsonNode> seen) throws Exception {
    String text = inbox.poll(3, TimeUnit.MINUTES);
    assertThat(text).as("a message within 3 minutes; got %s", seen).isNotNull();
    return json.readTree(text);
  }

  @AfterEach
  void closeSockets() {
    sockets.forEach(s -> s.sendClose(WebSocket.NORMAL_CLOSURE, "done"));
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
