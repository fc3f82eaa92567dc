package dev.cotrain.api.live;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cotrain.api.ApiTestSupport;
import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionEvents;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.web.socket.CloseStatus;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketHttpHeaders;
import org.springframework.web.socket.WebSocketSession;
import org.springframework.web.socket.client.standard.StandardWebSocketClient;
import org.springframework.web.socket.handler.TextWebSocketHandler;

/** Real WebSocket clients against the running server; events are real pg_notify calls. */
class SessionWebSocketTest extends ApiTestSupport {

  private static final Duration WAIT = Duration.ofSeconds(10);

  @Autowired SessionEventListener listener;

  private final List<WebSocketSession> opened = new ArrayList<>();

  @BeforeEach
  void listenerIsListening() throws InterruptedException {
    assertThat(listener.awaitListening(WAIT)).isTrue();
  }

  @AfterEach
  void closeClients() throws Exception {
    for (WebSocketSession session : opened) {
      if (session.isOpen()) {
        session.close();
      }
    }
  }

  @Test
  void relaysStatusSnapshotThenLiveProgressThenCompletion() throws Exception {
    UUID id = insertSession("QUEUED");
    Client client = connect(id.toString());

    JsonNode snapshot = client.next();
    assertThat(snapshot.path("type").asText()).isEqualTo("session.status");
    assertThat(snapshot.path("sessionId").asText()).isEqualTo(id.toString());
    assertThat(snapshot.path("status").asText()).isEqualTo("QUEUED");
    assertThat(snapshot.path("progress").asDouble()).isZero();

    notify(
        """
        {"kind":"progress","sessionId":"%s","step":12,"totalSteps":200,"epoch":1,"progress":6.0,
         "loss":3.2,"accuracy":0.31,"learningRate":0.003,"batchSize":8,"participants":1,
         "tokensPerSecond":5000.0,"at":"2026-11-30T21:02:45.461528Z"}
        """
            .formatted(id));
    JsonNode progress = client.next();
    assertThat(progress.path("type").asText()).isEqualTo("training.progress");
    assertThat(progress.path("sessionId").asText()).isEqualTo(id.toString());
    assertThat(progress.path("step").asLong()).isEqualTo(12);
    assertThat(progress.path("totalSteps").asLong()).isEqualTo(200);
    assertThat(progress.path("epoch").asInt()).isEqualTo(1);
    assertThat(progress.path("progress").asDouble()).isEqualTo(6.0);
    assertThat(progress.path("loss").asDouble()).isEqualTo(3.2);
    assertThat(progress.path("participants").asInt()).isEqualTo(1);
    assertThat(progress.path("metrics").path("accuracy").asDouble()).isEqualTo(0.31);
    assertThat(progress.path("metrics").path("learningRate").asDouble()).isEqualTo(0.003);
    assertThat(progress.path("metrics").path("batchSize").asInt()).isEqualTo(8);
    assertThat(progress.path("tokensPerSecond").asDouble()).isEqualTo(5000.0);
    assertThat(progress.path("at").asText()).isEqualTo("2026-11-30T21:02:45.461528Z");

    notify(status(id, "COMPLETED", "RUNNING", "completed", null, "models/" + id + "/final"));
    JsonNode status = client.next();
    assertThat(status.path("type").asText()).isEqualTo("session.status");
    assertThat(status.path("status").asText()).isEqualTo("COMPLETED");
    assertThat(status.path("progress").asDouble()).isEqualTo(100.0);
    assertThat(status.path("finalModelPath").asText()).isEqualTo("models/" + id + "/final");
    assertThat(status.has("error")).isTrue();
    assertThat(status.path("error").isNull()).isTrue();
  }

  @Test
  void relaysAFailureWithItsErrorAndTheStoredProgress() throws Exception {
    UUID id = insertSession("RUNNING");
    jdbc.sql("UPDATE sessions SET progress = 40 WHERE id = :id").param("id", id).update();
    Client client = connect(id.toString());
    assertThat(client.next().path("status").asText()).isEqualTo("RUNNING");

    notify(
        status(id, "FAILED", "RUNNING", "failed", "data file not found: datasets/raw/x.txt", null));

    JsonNode status = client.next();
    assertThat(status.path("status").asText()).isEqualTo("FAILED");
    assertThat(status.path("progress").asDouble()).isEqualTo(40.0);
    assertThat(status.path("error").asText()).isEqualTo("data file not found: datasets/raw/x.txt");
    assertThat(status.path("message").asText()).isEqualTo(status.path("error").asText());
    assertThat(status.path("previousStatus").asText()).isEqualTo("RUNNING");
    assertThat(status.path("cause").asText()).isEqualTo("failed");
    assertThat(status.path("attempt").asInt()).isEqualTo(2);
    assertThat(status.path("eventId").asLong()).isEqualTo(9);
    assertThat(status.path("finalModelPath").isNull()).isTrue();
  }

  @Test
  void relaysMachineSamplesAndDilocoOuterSteps() throws Exception {
    UUID id = insertSession("RUNNING");
    Client client = connect(id.toString());
    client.next(); // status snapshot

    notify(
        SessionEvents.encode(
            new SessionEvent.SystemSample(
                id.toString(),
                1,
                1,
                3,
                40,
                180.0,
                1000L,
                1L,
                2L,
                3L,
                4L,
                List.of(new SessionEvent.Gpu(0, 97.0, 70_000_000_000L, 80_000_000_000L)))));
    notify(SessionEvents.encode(new SessionEvent.Sync(id.toString(), 4, 40, 2, 1874432, 0.09)));

    JsonNode system = client.next();
    assertThat(system.path("type").asText()).isEqualTo("system.metrics");
    assertThat(system.path("step").asLong()).isEqualTo(40);
    assertThat(system.path("node").asInt()).isEqualTo(1);
    assertThat(system.path("cpuPercent").asDouble()).isEqualTo(180.0);
    assertThat(system.path("netRecvBytes").asLong()).isEqualTo(4);
    assertThat(system.path("gpus").get(0).path("utilization").asDouble()).isEqualTo(97.0);
    assertThat(system.path("gpus").get(0).path("memoryUsedBytes").asLong())
        .isEqualTo(70_000_000_000L);
    JsonNode sync = client.next();
    assertThat(sync.path("type").asText()).isEqualTo("diloco.sync");
    assertThat(sync.path("outerStep").asLong()).isEqualTo(4);
    assertThat(sync.path("participants").asInt()).isEqualTo(2);
    assertThat(sync.path("bytes").asLong()).isEqualTo(1874432);
    assertThat(sync.path("seconds").asDouble()).isEqualTo(0.09);
  }

  @Test
  void aWaitingSessionGetsItsQueuePositionInTheSnapshotAndWhenItChanges() throws Exception {
    UUID id = insertSession("QUEUED");
    jdbc.sql(
            "INSERT INTO queue (session_id, attempt, gpus_per_node, position, reason)"
                + " VALUES (:id, 1, 1, 3, 'queued behind position 1')")
        .param("id", id)
        .update();
    Client client = connect(id.toString());
    client.next(); // status snapshot
    JsonNode snapshot = client.next();

    notify(
        SessionEvents.encode(
            new SessionEvent.Queue(id.toString(), 1, "waiting for 1 free devices on one host")));

    assertThat(snapshot.path("type").asText()).isEqualTo("session.queue");
    assertThat(snapshot.path("position").asInt()).isEqualTo(3);
    assertThat(snapshot.path("reason").asText()).isEqualTo("queued behind position 1");
    JsonNode live = client.next();
    assertThat(live.path("type").asText()).isEqualTo("session.queue");
    assertThat(live.path("position").asInt()).isEqualTo(1);
    assertThat(live.path("reason").asText()).isEqualTo("waiting for 1 free devices on one host");
  }

  @Test
  void snapshotIncludesTheLatestProgressWhenTheSessionHasSteps() throws Exception {
    UUID id = insertSession("RUNNING");
    jdbc.sql(
            """
            UPDATE sessions SET progress = 50, latest_step = 10, total_steps = 20,
                   latest_loss = 2.0, latest_accuracy = 0.6, learning_rate = 0.001
             WHERE id = :id
            """)
        .param("id", id)
        .update();
    jdbc.sql(
            """
            INSERT INTO metrics (session_id, step, total_steps, epoch, loss, tokens_per_s)
            VALUES (:id, 10, 20, 2, 2.0, 1234.5)
            """)
        .param("id", id)
        .update();

    Client client = connect(id.toString());

    assertThat(client.next().path("type").asText()).isEqualTo("session.status");
    JsonNode progress = client.next();
    assertThat(progress.path("type").asText()).isEqualTo("training.progress");
    assertThat(progress.path("step").asLong()).isEqualTo(10);
    assertThat(progress.path("totalSteps").asLong()).isEqualTo(20);
    assertThat(progress.path("epoch").asInt()).isEqualTo(2);
    assertThat(progress.path("progress").asDouble()).isEqualTo(50.0);
    assertThat(progress.path("loss").asDouble()).isEqualTo(2.0);
    assertThat(progress.path("participants").asInt()).isEqualTo(4); // 1 node x 4 GPUs
    assertThat(progress.path("metrics").path("accuracy").asDouble()).isEqualTo(0.6);
    assertThat(progress.path("metrics").path("learningRate").asDouble()).isEqualTo(0.001);
    assertThat(progress.path("metrics").path("batchSize").asInt()).isEqualTo(16);
    assertThat(progress.path("tokensPerSecond").asDouble()).isEqualTo(1234.5);
    assertThat(progress.has("at")).isTrue();
    assertThat(progress.path("at").isNull()).isTrue(); // the newest step only, without its time
  }

  @Test
  void progressEventsArriveInTheOrderTheyWereNotified() throws Exception {
    UUID id = insertSession("RUNNING");
    Client client = connect(id.toString());
    client.next(); // status snapshot

    for (int step = 1; step <= 25; step++) {
      notify(progressPayload(id, step));
    }

    // In order, and always up to the newest; steps a client has not yet taken when a newer one
    // comes may be skipped (coalesced), never reordered.
    List<Long> steps = new ArrayList<>();
    while (steps.isEmpty() || steps.get(steps.size() - 1) < 25) {
      steps.add(client.next().path("step").asLong());
    }
    assertThat(steps).doesNotHaveDuplicates().isSorted().endsWith(25L);
  }

  @Test
  void aStalledClientDelaysNoOtherAndIsClosedOnceTooFarBehind() throws Exception {
    UUID slowSession = insertSession("RUNNING");
    UUID other = insertSession("RUNNING");
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    Client stalled = connect(slowSession.toString());
    stalled.next(); // status snapshot; from now on it stops reading
    stalled.blockOn(release);
    Client healthy = connect(other.toString());
    healthy.next();
    try {
      // Far more than the socket buffers hold: the server's sends to the stalled client block.
      String big = "x".repeat(4000);
      for (int i = 0; i < 4000; i++) {
        notify(
            SessionEvents.encode(
                new SessionEvent.Queue(slowSession.toString(), i + 1, big.substring(0, 3900))));
      }
      notify(progressPayload(other, 7));

      // The healthy client gets its event while the stalled one still blocks.
      assertThat(healthy.next().path("step").asLong()).isEqualTo(7);
      assertThat(release.getCount()).isEqualTo(1);
    } finally {
      release.countDown();
    }
    // Over 1 MiB waited for it: it is closed with 1011 and a reason.
    CloseStatus closed = stalled.closes.poll(30, TimeUnit.SECONDS);
    assertThat(closed).isNotNull();
    assertThat(closed.getCode()).isEqualTo(CloseStatus.SERVER_ERROR.getCode());
    assertThat(closed.getReason()).startsWith("client too slow");
  }

  @Test
  void aClientThatReconnectsWithItsLastStepGetsEveryStepItMissed() throws Exception {
    UUID id = insertSession("RUNNING");
    for (long step = 1; step <= 30; step++) {
      jdbc.sql(
              """
              INSERT INTO metrics (session_id, step, total_steps, epoch, loss, recorded_at)
              VALUES (:id, :step, 100, 1, :loss, '2026-11-30T21:00:00Z'::timestamptz + :step * interval '1 s')
              """)
          .param("id", id)
          .param("step", step)
          .param("loss", 5.0 - step * 0.1)
          .update();
    }
    jdbc.sql("UPDATE sessions SET latest_step = 30, total_steps = 100 WHERE id = :id")
        .param("id", id)
        .update();

    Client client = connect(id + "?afterStep=25");
    client.next(); // status

    List<Long> steps = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      JsonNode progress = client.next();
      assertThat(progress.path("type").asText()).isEqualTo("training.progress");
      steps.add(progress.path("step").asLong());
      // When the worker stored it: the row's recorded_at, as a live message would have carried.
      assertThat(progress.path("at").asText())
          .isEqualTo("2026-11-30T21:00:%02dZ".formatted(progress.path("step").asLong()));
    }
    assertThat(steps).containsExactly(26L, 27L, 28L, 29L, 30L);
    assertThat(client.messages.poll(300, TimeUnit.MILLISECONDS)).isNull();
  }

  @Test
  void subscriberOfAnotherSessionReceivesNoneOfThisSessionsEvents() throws Exception {
    UUID watched = insertSession("RUNNING");
    UUID other = insertSession("RUNNING");
    Client client = connect(watched.toString());
    client.next(); // status snapshot

    notify(progressPayload(other, 1));
    notify(status(other, "COMPLETED", "RUNNING", "completed", null, "m"));
    // Events are relayed in order, so once this one arrives the other session's have gone by.
    notify(progressPayload(watched, 7));

    JsonNode next = client.next();
    assertThat(next.path("sessionId").asText()).isEqualTo(watched.toString());
    assertThat(next.path("step").asLong()).isEqualTo(7);
    assertThat(client.messages).isEmpty();
  }

  @Test
  void malformedNotificationsAreDroppedWithoutStoppingTheRelay() throws Exception {
    UUID id = insertSession("RUNNING");
    Client client = connect(id.toString());
    client.next();

    notify("not json");
    notify("{\"kind\":\"progress\",\"sessionId\":\"nope\"}");
    notify("{\"kind\":\"mystery\",\"sessionId\":\"%s\"}".formatted(id));
    notify(progressPayload(id, 3));

    assertThat(client.next().path("step").asLong()).isEqualTo(3);
  }

  @Test
  void aBrowserSendsItsTokenAsASubprotocolAndTheServerSelectsCotrainV1() throws Exception {
    UUID id = insertSession("QUEUED");
    WebSocketHttpHeaders headers = new WebSocketHttpHeaders();
    headers.setSecWebSocketProtocol(List.of("cotrain.v1", "bearer." + ADMIN_TOKEN));

    Client client = connect(id.toString(), headers);

    assertThat(client.session.getAcceptedProtocol()).isEqualTo("cotrain.v1");
    assertThat(client.next().path("type").asText()).isEqualTo("session.status");
  }

  @Test
  void withoutAValidTokenTheHandshakeIsRefused() {
    UUID id = insertSession("QUEUED");
    WebSocketHttpHeaders wrong = new WebSocketHttpHeaders();
    wrong.setBearerAuth("cotrain_not-a-token");

    assertThatThrownBy(() -> connect(id.toString(), new WebSocketHttpHeaders()))
        .hasStackTraceContaining("401");
    assertThatThrownBy(() -> connect(id.toString(), wrong)).hasStackTraceContaining("401");
  }

  @Test
  void anotherOwnersSessionIsAsUnknownAsOneThatDoesNotExist() throws Exception {
    UUID id = insertSession("RUNNING"); // owned by "anonymous"
    WebSocketHttpHeaders alice = new WebSocketHttpHeaders();
    alice.setBearerAuth(ALICE_TOKEN);

    Client client = connect(id.toString(), alice);

    CloseStatus closed = client.closes.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
    assertThat(closed).isNotNull();
    assertThat(closed.getCode()).isEqualTo(CloseStatus.POLICY_VIOLATION.getCode());
    assertThat(closed.getReason()).isEqualTo("unknown session");
    assertThat(client.messages).isEmpty();
  }

  @Test
  void theListChannelSaysItIsSubscribedThenRelaysEverySessionsStatusProgressAndQueue()
      throws Exception {
    UUID first = insertSession("RUNNING");
    UUID second = insertSession("QUEUED");
    Client list = connectList(ADMIN_TOKEN);
    assertThat(list.next().path("type").asText()).isEqualTo("sessions.subscribed");

    notify(progressPayload(first, 3));
    notify(SessionEvents.encode(new SessionEvent.Queue(second.toString(), 1, "waiting")));
    notify(status(first, "COMPLETED", "RUNNING", "completed", null, "m"));

    JsonNode progress = list.next();
    assertThat(progress.path("type").asText()).isEqualTo("training.progress");
    assertThat(progress.path("sessionId").asText()).isEqualTo(first.toString());
    assertThat(progress.path("step").asLong()).isEqualTo(3);
    JsonNode queue = list.next();
    assertThat(queue.path("type").asText()).isEqualTo("session.queue");
    assertThat(queue.path("sessionId").asText()).isEqualTo(second.toString());
    JsonNode status = list.next();
    assertThat(status.path("status").asText()).isEqualTo("COMPLETED");
    assertThat(status.path("progress").asDouble()).isEqualTo(100.0);
  }

  @Test
  void theListChannelOfAnOwnerCarriesOnlyTheirOwnSessions() throws Exception {
    UUID others = insertSession("RUNNING"); // owned by "anonymous"
    UUID hers = insertSession("RUNNING");
    jdbc.sql("UPDATE sessions SET owner = 'alice' WHERE id = :id").param("id", hers).update();
    Client list = connectList(ALICE_TOKEN);
    assertThat(list.next().path("type").asText()).isEqualTo("sessions.subscribed");

    notify(progressPayload(others, 1));
    notify(status(others, "COMPLETED", "RUNNING", "completed", null, "m"));
    notify(progressPayload(hers, 2));

    JsonNode next = list.next();
    assertThat(next.path("sessionId").asText()).isEqualTo(hers.toString());
    assertThat(next.path("step").asLong()).isEqualTo(2);
    assertThat(list.messages.poll(300, TimeUnit.MILLISECONDS)).isNull();
  }

  @Test
  void theListChannelNeedsAToken() {
    assertThatThrownBy(() -> connectList("cotrain_not-a-token")).hasStackTraceContaining("401");
  }

  @Test
  void closesWithPolicyViolationWhenTheIdIsNotAUuid() throws Exception {
    Client client = connect("not-a-uuid");

    CloseStatus status = client.closed();
    assertThat(status.getCode()).isEqualTo(CloseStatus.POLICY_VIOLATION.getCode());
    assertThat(status.getReason()).isEqualTo("session id must be a UUID");
    assertThat(client.messages).isEmpty();
  }

  @Test
  void closesWithPolicyViolationWhenTheSessionIsUnknown() throws Exception {
    Client client = connect(UUID.randomUUID().toString());

    CloseStatus status = client.closed();
    assertThat(status.getCode()).isEqualTo(CloseStatus.POLICY_VIOLATION.getCode());
    assertThat(status.getReason()).isEqualTo("unknown session");
    assertThat(client.messages).isEmpty();
  }

  private UUID insertSession(String status) {
    UUID id = UUID.randomUUID();
    String request =
        """
        {"name":"ws","description":"","modelConfig":{"type":"llama2","size":"debug","precision":"fp32"},
         "trainingConfig":{"batchSize":16,"learningRate":0.001,"epochs":1,"optimizer":"adamw",
                           "maxSteps":0,"seed":1234},
         "distributedConfig":{"nodes":1,"gpusPerNode":4,"strategy":"ddp"},
         "dataConfig":{"seqLength":128,"dataPath":""},"checkpointConfig":{"interval":50}}
        """;
    jdbc.sql(
            """
            INSERT INTO sessions (id, workflow_id, name, request, status)
            VALUES (:id, :workflowId, 'ws', CAST(:request AS jsonb), :status)
            """)
        .param("id", id)
        .param("workflowId", "session-" + id)
        .param("request", request)
        .param("status", status)
        .update();
    return id;
  }

  private static String status(
      UUID id, String status, String previous, String cause, String message, String model) {
    return SessionEvents.encode(
        new SessionEvent.Status(
            id.toString(),
            9,
            "2026-11-30T20:00:00Z",
            status,
            previous,
            cause,
            2,
            message,
            false,
            model));
  }

  private static String progressPayload(UUID id, int step) {
    return """
        {"kind":"progress","sessionId":"%s","step":%d,"totalSteps":100,"epoch":1,
         "progress":%d.0,"loss":1.5,"accuracy":null,"learningRate":0.001,"batchSize":16,
         "participants":4,"tokensPerSecond":100.0,"at":"2026-11-30T21:02:45Z"}
        """
        .formatted(id, step, step);
  }

  private void notify(String payload) {
    jdbc.sql("SELECT pg_notify(:channel, :payload)")
        .param("channel", SessionEvents.CHANNEL)
        .param("payload", payload)
        .query()
        .singleRow();
  }

  private Client connectList(String token) throws Exception {
    WebSocketHttpHeaders headers = new WebSocketHttpHeaders();
    headers.setBearerAuth(token);
    Client client = new Client();
    client.session =
        new StandardWebSocketClient()
            .execute(client, headers, URI.create("ws://localhost:" + port + "/ws/sessions"))
            .get(WAIT.toSeconds(), TimeUnit.SECONDS);
    opened.add(client.session);
    return client;
  }

  private Client connect(String sessionId) throws Exception {
    WebSocketHttpHeaders headers = new WebSocketHttpHeaders();
    headers.setBearerAuth(ADMIN_TOKEN);
    return connect(sessionId, headers);
  }

  private Client connect(String sessionId, WebSocketHttpHeaders headers) throws Exception {
    Client client = new Client();
    WebSocketSession session =
        new StandardWebSocketClient()
            .execute(
                client, headers, URI.create("ws://localhost:" + port + "/ws/sessions/" + sessionId))
            .get(WAIT.toSeconds(), TimeUnit.SECONDS);
    opened.add(session);
    client.session = session;
    return client;
  }

  private final class Client extends TextWebSocketHandler {
    final BlockingQueue<String> messages = new LinkedBlockingQueue<>();
    WebSocketSession session;
    private volatile java.util.concurrent.CountDownLatch stall;

    /** From now on each received message waits for {@code release}: a client that stops reading. */
    void blockOn(java.util.concurrent.CountDownLatch release) {
      stall = release;
    }

    final BlockingQueue<CloseStatus> closes = new LinkedBlockingQueue<>();

    @Override
    protected void handleTextMessage(WebSocketSession session, TextMessage message)
        throws InterruptedException {
      if (stall != null) {
        stall.await();
      }
      messages.add(message.getPayload());
    }

    @Override
    public void afterConnectionClosed(WebSocketSession session, CloseStatus status) {
      closes.add(status);
    }

    JsonNode next() throws Exception {
      String message = messages.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(message).as("a message within %s", WAIT).isNotNull();
      return mapper.readTree(message);
    }

    CloseStatus closed() throws InterruptedException {
      CloseStatus status = closes.poll(WAIT.toMillis(), TimeUnit.MILLISECONDS);
      assertThat(status).as("the connection closed within %s", WAIT).isNotNull();
      return status;
    }
  }
}
