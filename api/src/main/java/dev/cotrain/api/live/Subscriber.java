package dev.cotrain.api.live;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.web.socket.CloseStatus;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketSession;

/**
 * One WebSocket client with its own queue of frames, sent by its own drain task on a shared pool: a
 * client that reads slowly delays only itself. A session's progress frame that arrives while its
 * previous one is still the last frame of that session waiting replaces it in place (the client
 * gets the newest state, never a stale backlog, and each session's frames stay in order); a client
 * whose queue still grows past {@code maxBytes} is closed with 1011 and a reason.
 */
final class Subscriber {

  private static final Logger log = LoggerFactory.getLogger(Subscriber.class);

  /** {@code message} is replaced when a newer progress of its session coalesces into it. */
  private static final class Frame {
    final String type;
    final String sessionId;
    TextMessage message;

    Frame(String type, String sessionId, TextMessage message) {
      this.type = type;
      this.sessionId = sessionId;
      this.message = message;
    }
  }

  private final WebSocketSession socket;
  private final Executor senders;
  private final int maxBytes;

  /** Guarded by this. */
  private final Deque<Frame> pending = new ArrayDeque<>();

  /** The last frame of each session among {@link #pending}. Guarded by this. */
  private final Map<String, Frame> lastOfSession = new HashMap<>();

  private long pendingBytes;
  private boolean draining;
  private boolean closed;

  /** Why it was dropped; sent by the drain once its current send returns, if one is under way. */
  private CloseStatus closing;

  Subscriber(WebSocketSession socket, Executor senders, int maxBytes) {
    this.socket = socket;
    this.senders = senders;
    this.maxBytes = maxBytes;
  }

  WebSocketSession socket() {
    return socket;
  }

  /**
   * Queues a frame of message type {@code type} about session {@code sessionId}; false when the
   * client is gone or has just been closed for falling too far behind.
   */
  synchronized boolean offer(String type, String sessionId, TextMessage message) {
    if (closed || !socket.isOpen()) {
      return false;
    }
    Frame last = lastOfSession.get(sessionId);
    if (LiveMessages.PROGRESS.equals(type) && last != null && type.equals(last.type)) {
      pendingBytes -= last.message.getPayloadLength(); // coalesced: the newer progress replaces
      last.message = message; // the one not yet sent, in its place
    } else {
      Frame frame = new Frame(type, sessionId, message);
      pending.addLast(frame);
      lastOfSession.put(sessionId, frame);
    }
    pendingBytes += message.getPayloadLength();
    if (pendingBytes > maxBytes) {
      drop(
          new CloseStatus(
              CloseStatus.SERVER_ERROR.getCode(),
              "client too slow: more than " + maxBytes + " bytes waiting"));
      return false;
    }
    if (!draining) {
      draining = true;
      senders.execute(this::drain);
    }
    return true;
  }

  /** Frames waiting to be sent (for tests and logs). */
  synchronized int waiting() {
    return pending.size();
  }

  private void drain() {
    while (true) {
      Frame next;
      synchronized (this) {
        next = closed ? null : pending.pollFirst();
        if (next != null) {
          lastOfSession.remove(next.sessionId, next);
        }
        if (next == null) {
          draining = false;
          if (closing != null) {
            closeLater(closing);
          }
          return;
        }
        pendingBytes -= next.message.getPayloadLength();
      }
      try {
        socket.sendMessage(next.message); // blocks this client's drain only
      } catch (IOException | RuntimeException e) {
        log.debug("Dropping WebSocket subscriber {}: {}", socket.getId(), e.getMessage());
        synchronized (this) {
          if (closing == null) {
            drop(CloseStatus.SESSION_NOT_RELIABLE);
          }
        }
      }
    }
  }

  /**
   * Call holding the lock: forgets what waits and closes the socket, off the caller's thread; if a
   * send is under way (it may be blocked on this very client), the drain closes it once that send
   * returns, since a close frame cannot overtake it.
   */
  private void drop(CloseStatus status) {
    closed = true;
    closing = status;
    pending.clear();
    lastOfSession.clear();
    pendingBytes = 0;
    if (!draining) {
      closeLater(status);
    }
  }

  private void closeLater(CloseStatus status) {
    senders.execute(
        () -> {
          try {
            socket.close(status);
          } catch (IOException | RuntimeException e) {
            log.debug("Closing WebSocket {} failed: {}", socket.getId(), e.getMessage());
          }
        });
  }
}
