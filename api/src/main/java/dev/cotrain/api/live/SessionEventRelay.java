package dev.cotrain.api.live;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.session.MetricRow;
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
 * arrive twice: once in the snapshot, once live). That thread never sends: it queues frames on each
 * {@link Subscriber}, which sends them on its own, so one slow client delays no other.
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

  /** Sends to the clients: one drain task per client with frames waiting. */
  private final ExecutorService senders =
      Executors.newCachedThreadPool(
          task -> {
            Thread t = new Thread(task, "cotrain-session-send");
            t.setDaemon(true);
            return t;
          });

  /** Only touched on the relay thread. */
  private final Map<UUID, List<Subscriber>> subscribers = new HashMap<>();

  /** Clients of the session list ({@code /ws/sessions}). Only touched on the relay thread. */
  private final List<ListSubscriber> listSubscribers = new ArrayList<>();

  /** Owners of sessions seen by the list channel (an owner never changes). Relay thread only. */
  private final Map<UUID, String> owners = new HashMap<>();

  private static final int MAX_OWNERS_CACHED = 100_000;

  private record ListSubscriber(Subscriber subscriber, Caller caller) {}

  private final int maxQueuedBytes;

  /**
   * A reconnecting client gets at most this many missed steps (GET .../metrics has the rest): about
   * 700 KB, within what a client may have waiting.
   */
  static final int MAX_CATCH_UP = 2_000;

  SessionEventRelay(SessionRepository sessions, ObjectMapper mapper, LiveProperties properties) {
    this.sessions = sessions;
    this.mapper = mapper;
    this.maxQueuedBytes = properties.sendBufferBytes();
  }

  /**
   * Sends {@code socket} the session's snapshot, then its live events; closes it with
   * POLICY_VIOLATION when the session does not exist or is not the caller's to see. {@code socket}
   * must be safe to send to from another thread.
   */
  void subscribe(UUID sessionId, WebSocketSession socket, Caller caller, Long afterStep) {
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
          Subscriber subscriber = new Subscriber(socket, senders, maxQueuedBytes);
          if (sendSnapshot(row.get(), subscriber, afterStep)) {
            subscribers.computeIfAbsent(sessionId, id -> new ArrayList<>()).add(subscriber);
          }
        });
  }

  void unsubscribe(UUID sessionId, WebSocketSession socket) {
    submit(() -> remove(sessionId, socket));
  }

  /**
   * Subscribes {@code socket} to the status, progress and queue position of every session {@code
   * caller} may see. Its first message is {@code sessions.subscribed}: every change after it is
   * sent, so a list read after it misses nothing.
   */
  void subscribeList(WebSocketSession socket, Caller caller) {
    submit(
        () -> {
          if (caller == null || !socket.isOpen()) {
            return;
          }
          Subscriber subscriber = new Subscriber(socket, senders, maxQueuedBytes);
          if (offer(subscriber, new LiveMessages.Subscribed(LiveMessages.SUBSCRIBED, null))) {
            listSubscribers.add(new ListSubscriber(subscriber, caller));
          }
        });
  }

  void unsubscribeList(WebSocketSession socket) {
    submit(() -> listSubscribers.removeIf(l -> l.subscriber().socket() == socket));
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

  /**
   * Re-sends every subscriber its snapshot, and every list subscriber {@code sessions.subscribed}
   * (reload the list): live events may have been lost while not listening.
   */
  void resync() {
    submit(
        () -> {
          for (ListSubscriber list : List.copyOf(listSubscribers)) {
            if (!offer(
                list.subscriber(), new LiveMessages.Subscribed(LiveMessages.SUBSCRIBED, null))) {
              listSubscribers.remove(list);
            }
          }
          for (UUID sessionId : List.copyOf(subscribers.keySet())) {
            Optional<SessionRow> row = sessions.find(sessionId);
            for (Subscriber subscriber : List.copyOf(subscribers.get(sessionId))) {
              if (row.isEmpty() || !sendSnapshot(row.get(), subscriber, null)) {
                remove(sessionId, subscriber.socket());
              }
            }
          }
        });
  }

  @Override
  public void destroy() throws InterruptedException {
    thread.shutdown();
    thread.awaitTermination(5, TimeUnit.SECONDS);
    senders.shutdownNow();
  }

  private void dispatch(UUID sessionId, LiveMessages.Message message) {
    List<Subscriber> clients = subscribers.get(sessionId);
    boolean listed = !listSubscribers.isEmpty() && LiveMessages.LISTED.contains(message.type());
    if (clients == null && !listed) {
      return;
    }
    TextMessage frame = frame(message);
    String id = sessionId.toString();
    if (clients != null) {
      for (Subscriber client : List.copyOf(clients)) {
        if (!client.offer(message.type(), id, frame)) {
          remove(sessionId, client.socket());
        }
      }
    }
    if (listed) {
      String owner = null;
      for (ListSubscriber list : List.copyOf(listSubscribers)) {
        if (!list.caller().admin()) {
          if (owner == null) {
            owner = owner(sessionId);
          }
          if (!list.caller().canSee(owner)) {
            continue;
          }
        }
        if (!list.subscriber().offer(message.type(), id, frame)) {
          listSubscribers.remove(list);
        }
      }
    }
  }

  /** The session's owner ("" once it is gone), cached: an owner never changes. */
  private String owner(UUID sessionId) {
    String owner = owners.get(sessionId);
    if (owner == null) {
      if (owners.size() >= MAX_OWNERS_CACHED) {
        owners.clear();
      }
      owner = sessions.find(sessionId).map(SessionRow::owner).orElse("");
      owners.put(sessionId, owner);
    }
    return owner;
  }

  private static LiveMessages.Message progress(SessionEvent.Progress event) {
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
        event.tokensPerSecond(),
        event.at());
  }

  /** Status events carry no progress; it is 100 for COMPLETED, else the stored one. */
  private LiveMessages.Message status(UUID sessionId, SessionEvent.Status event) {
    Double progress =
        SessionStatus.COMPLETED.name().equals(event.status())
            ? Double.valueOf(100.0)
            : subscribers.containsKey(sessionId) || !listSubscribers.isEmpty()
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

  /**
   * Queues the session's current state for {@code client}: its status, its queue position if it
   * waits, then either the newest step or, with {@code afterStep}, every stored step after it (at
   * most {@link #MAX_CATCH_UP} of them) so that a client that reconnects misses nothing.
   */
  private boolean sendSnapshot(SessionRow row, Subscriber client, Long afterStep) {
    String sessionId = row.id().toString();
    boolean completed = SessionStatus.COMPLETED.name().equals(row.status());
    Optional<SessionEventRow> latest = sessions.latestEvent(row.id());
    LiveMessages.Message status =
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
    if (!offer(client, status)) {
      return false;
    }
    if (row.queuePosition() != null
        && !offer(
            client,
            new LiveMessages.QueuePosition(
                LiveMessages.QUEUE, sessionId, row.queuePosition(), row.queueReason()))) {
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
    Integer batchSize = intOrNull(request.path("trainingConfig"), "batchSize");
    if (afterStep != null) {
      for (MetricRow m : sessions.metrics(row.id(), afterStep, MAX_CATCH_UP)) {
        LiveMessages.Message missed =
            new LiveMessages.TrainingProgress(
                LiveMessages.PROGRESS,
                sessionId,
                m.step(),
                m.totalSteps(),
                m.epoch(),
                m.totalSteps() > 0 ? 100.0 * m.step() / m.totalSteps() : null,
                m.loss(),
                participants,
                new LiveMessages.Metrics(m.accuracy(), m.learningRate(), batchSize),
                m.tokensPerSecond(),
                m.recordedAt() == null ? null : m.recordedAt().toString());
        // Not coalesced: the catch-up is the history a chart draws.
        if (!offer(client, LiveMessages.CATCH_UP, missed)) {
          return false;
        }
      }
      return true;
    }
    LiveMessages.Message progress =
        new LiveMessages.TrainingProgress(
            LiveMessages.PROGRESS,
            sessionId,
            row.latestStep(),
            row.totalSteps(),
            row.latestEpoch(),
            row.progress(),
            row.latestLoss(),
            participants,
            new LiveMessages.Metrics(row.latestAccuracy(), row.learningRate(), batchSize),
            row.tokensPerSecond(),
            null);
    return offer(client, progress);
  }

  private boolean offer(Subscriber client, LiveMessages.Message message) {
    return offer(client, message.type(), message);
  }

  private boolean offer(Subscriber client, String queueType, LiveMessages.Message message) {
    return client.offer(queueType, String.valueOf(message.sessionId()), frame(message));
  }

  private void remove(UUID sessionId, WebSocketSession socket) {
    List<Subscriber> clients = subscribers.get(sessionId);
    if (clients != null) {
      clients.removeIf(c -> c.socket() == socket);
      if (clients.isEmpty()) {
        subscribers.remove(sessionId);
      }
    }
  }

  private TextMessage frame(LiveMessages.Message message) {
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
