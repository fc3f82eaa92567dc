package dev.cotrain.api.live;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.session.SessionEventRow;
import dev.cotrain.api.session.SessionRepository;
import dev.cotrain.api.session.SessionRow;
import dev.cotrain.schema.SessionEvent;
import dev.cotrain.schema.SessionEvents;
import dev.cotrain.workflows.session.SessionStatus;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;
import org.springframework.web.socket.CloseStatus;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketSession;

/**
 * Fans session events out to WebSocket subscribers. Everything (subscribing, snapshots, live
 * events, unsubscribing) runs on one thread, in arrival order: each subscriber gets its snapshot
 * before any live event, events of a session arrive in the order PostgreSQL delivered them, and a
 * change committed after the snapshot was read is never missed (one committed just before may
 * arrive twice: once in the snapshot, once live).
 */
@Component
class SessionEventRelay implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(SessionEventRelay.class);

  private final SessionRepository sessions;
  private final ObjectMapper mapper;
  private final ExecutorService thread =
      Executors.newSingleThreadExecutor(
          task -> {
            Thread t = new Thread(task, "cotrain-session-relay");
            t.setDaemon(true);
            return t;
          });

  /** Only touched on the relay thread. */
  private final Map<UUID, List<WebSocketSession>> subscribers = new HashMap<>();

  SessionEventRelay(SessionRepository sessions, ObjectMapper mapper) {
    this.sessions = sessions;
    this.mapper = mapper;
  }

  /**
   * Sends {@code socket} the session's snapshot, then its live events; closes it with
   * POLICY_VIOLATION when the session does not exist or is not the caller's to see. {@code socket}
   * must be safe to send to from another thread.
   */
  void subscribe(UUID sessionId, WebSocketSession socket, Caller caller) {
    submit(
        () -> {
          Optional<SessionRow> row =
              sessions.find(sessionId).filter(r -> caller != null && caller.canSee(r.owner()));
          if (row.isEmpty()) { // another owner's session is as unknown as one that does not exist
            close(socket, CloseStatus.POLICY_VIOLATION.withReason("unknown session"));
            return;
          }
          if (!socket.isOpen()) {
            return;
          }
          if (sendSnapshot(row.get(), socket)) {
            subscribers.computeIfAbsent(sessionId, id -> new ArrayList<>()).add(socket);
          }
        });
  }

  void unsubscribe(UUID sessionId, WebSocketSession socket) {
    submit(() -> remove(sessionId, socket));
  }

  /** A NOTIFY payload, as the workers' activities send it. Malformed payloads are dropped. */
  void publish(String payload) {
    SessionEvent event;
    try {
      event = SessionEvents.decode(payload);
    } catch (IllegalArgumentException e) {
      log.warn("Dropping a session event: {}", e.getMessage());
      return;
    }
    UUID sessionId = uuid(event.sessionId());
    if (sessionId == null) {
      log.warn("Dropping a session event without a valid sessionId");
      return;
    }
    if (event instanceof SessionEvent.Progress progress) {
      submit(() -> dispatch(sessionId, progress(progress)));
    } else if (event instanceof SessionEvent.Status status) {
      submit(() -> dispatch(sessionId, status(sessionId, status)));
    } else if (event instanceof SessionEvent.SystemSample sample) {
      submit(
          () ->
              dispatch(
                  sessionId,
                  new LiveMessages.SystemMetrics(
                      LiveMessages.SYSTEM,
                      sample.sessionId(),
                      sample.attempt(),
                      sample.node(),
                      sample.step(),
                      sample.cpuPercent(),
                      sample.rssBytes(),
                      sample.diskReadBytes(),
                      sample.diskWriteBytes(),
                      sample.netSentBytes(),
                      sample.netRecvBytes(),
                      sample.gpus())));
    } else if (event instanceof SessionEvent.Sync sync) {
      submit(
          () ->
              dispatch(
                  sessionId,
                  new LiveMessages.DilocoSync(
                      LiveMessages.SYNC,
                      sync.sessionId(),
                      sync.outerStep(),
                      sync.step(),
                      sync.participants(),
                      sync.bytes(),
                      sync.seconds())));
    } else if (event instanceof SessionEvent.Queue queue) {
      submit(
          () ->
              dispatch(
                  sessionId,
                  new LiveMessages.QueuePosition(
                      LiveMessages.QUEUE, queue.sessionId(), queue.position(), queue.reason())));
    }
  }

  /** Re-sends every subscriber its snapshot: live events may have been lost while not listening. */
  void resync() {
    submit(
        () -> {
          for (UUID sessionId : List.copyOf(subscribers.keySet())) {
            Optional<SessionRow> row = sessions.find(sessionId);
            for (WebSocketSession socket : List.copyOf(subscribers.get(sessionId))) {
              if (row.isEmpty() || !sendSnapshot(row.get(), socket)) {
                remove(sessionId, socket);
              }
            }
          }
        });
  }

  @Override
  public void destroy() throws InterruptedException {
    thread.shutdown();
    thread.awaitTermination(5, TimeUnit.SECONDS);
  }

  private void dispatch(UUID sessionId, Object message) {
    List<WebSocketSession> sockets = subscribers.get(sessionId);
    if (sockets == null) {
      return;
    }
    TextMessage frame = frame(message);
    for (WebSocketSession socket : List.copyOf(sockets)) {
      if (!send(socket, frame)) {
        remove(sessionId, socket);
      }
    }
  }

  private static Object progress(SessionEvent.Progress event) {
    return new LiveMessages.TrainingProgress(
        LiveMessages.PROGRESS,
        event.sessionId(),
        event.step(),
        event.totalSteps(),
        event.epoch(),
        event.progress(),
        event.loss(),
        event.participants(),
        new LiveMessages.Metrics(event.accuracy(), event.learningRate(), event.batchSize()),
        event.tokensPerSecond());
  }

  /** Status events carry no progress; it is 100 for COMPLETED, else the stored one. */
  private Object status(UUID sessionId, SessionEvent.Status event) {
    Double progress =
        SessionStatus.COMPLETED.name().equals(event.status())
            ? Double.valueOf(100.0)
            : subscribers.containsKey(sessionId)
                ? sessions.find(sessionId).map(SessionRow::progress).orElse(null)
                : null;
    return new LiveMessages.SessionStatus(
        LiveMessages.STATUS,
        event.sessionId(),
        event.status(),
        progress,
        event.finalModelPath(),
        SessionStatus.FAILED.name().equals(event.status()) ? event.message() : null,
        event.previousStatus(),
        event.cause(),
        event.attempt(),
        event.message(),
        event.messageCut(),
        event.eventId(),
        event.at());
  }

  private boolean sendSnapshot(SessionRow row, WebSocketSession socket) {
    String sessionId = row.id().toString();
    boolean completed = SessionStatus.COMPLETED.name().equals(row.status());
    Optional<SessionEventRow> latest = sessions.latestEvent(row.id());
    Object status =
        new LiveMessages.SessionStatus(
            LiveMessages.STATUS,
            sessionId,
            row.status(),
            completed ? 100.0 : row.progress(),
            row.finalModelPath(),
            row.error(),
            latest.map(SessionEventRow::previousStatus).orElse(null),
            latest.map(SessionEventRow::cause).orElse(null),
            row.attempt(),
            latest.map(SessionEventRow::message).orElse(null),
            false,
            latest.map(SessionEventRow::id).orElse(null),
            latest.map(e -> e.at().toString()).orElse(null));
    if (!send(socket, frame(status))) {
      return false;
    }
    if (row.queuePosition() != null
        && !send(
            socket,
            frame(
                new LiveMessages.QueuePosition(
                    LiveMessages.QUEUE, sessionId, row.queuePosition(), row.queueReason())))) {
      return false;
    }
    if (row.latestStep() == null) {
      return true;
    }
    JsonNode request = requestTree(row.request());
    JsonNode distributed = request.path("distributedConfig");
    Integer participants =
        distributed.path("nodes").isInt() && distributed.path("gpusPerNode").isInt()
            ? distributed.path("nodes").asInt() * distributed.path("gpusPerNode").asInt()
            : null;
    Object progress =
        new LiveMessages.TrainingProgress(
            LiveMessages.PROGRESS,
            sessionId,
            row.latestStep(),
            row.totalSteps(),
            row.latestEpoch(),
            row.progress(),
            row.latestLoss(),
            participants,
            new LiveMessages.Metrics(
                row.latestAccuracy(),
                row.learningRate(),
                intOrNull(request.path("trainingConfig"), "batchSize")),
            row.tokensPerSecond());
    return send(socket, frame(progress));
  }

  private boolean send(WebSocketSession socket, TextMessage frame) {
    if (!socket.isOpen()) {
      return false;
    }
    try {
      socket.sendMessage(frame);
      return true;
    } catch (IOException | RuntimeException e) {
      log.debug("Dropping WebSocket subscriber {}: {}", socket.getId(), e.getMessage());
      close(socket, CloseStatus.SESSION_NOT_RELIABLE);
      return false;
    }
  }

  private void remove(UUID sessionId, WebSocketSession socket) {
    List<WebSocketSession> sockets = subscribers.get(sessionId);
    if (sockets != null) {
      sockets.remove(socket);
      if (sockets.isEmpty()) {
        subscribers.remove(sessionId);
      }
    }
  }

  private TextMessage frame(Object message) {
    try {
      return new TextMessage(mapper.writeValueAsString(message));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a live message could not be written as JSON", e);
    }
  }

  private JsonNode requestTree(String json) {
    try {
      return mapper.readTree(json);
    } catch (JsonProcessingException e) {
      return mapper.missingNode();
    }
  }

  private void submit(Runnable task) {
    try {
      thread.execute(
          () -> {
            try {
              task.run();
            } catch (RuntimeException e) {
              log.error("Session event relay task failed", e);
            }
          });
    } catch (RejectedExecutionException e) {
      log.debug("Session event relay is shut down; dropping a task");
    }
  }

  private static void close(WebSocketSession socket, CloseStatus status) {
    try {
      socket.close(status);
    } catch (IOException | RuntimeException e) {
      log.debug("Closing WebSocket {} failed: {}", socket.getId(), e.getMessage());
    }
  }

  private static UUID uuid(String text) {
    if (text == null) {
      return null;
    }
    try {
      return UUID.fromString(text);
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  private static Integer intOrNull(JsonNode node, String field) {
    JsonNode value = node.path(field);
    return value.isNumber() ? value.asInt() : null;
  }
}
