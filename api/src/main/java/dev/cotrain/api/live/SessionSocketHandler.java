package dev.cotrain.api.live;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.auth.WebSocketTokenInterceptor;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.UUID;
import org.springframework.stereotype.Component;
import org.springframework.web.socket.CloseStatus;
import org.springframework.web.socket.SubProtocolCapable;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketSession;
import org.springframework.web.socket.adapter.standard.StandardWebSocketSession;
import org.springframework.web.socket.handler.TextWebSocketHandler;

/**
 * {@code /ws/sessions/{id}}: the connection is the subscription to one session's events. Messages
 * from the client are ignored.
 */
@Component
class SessionSocketHandler extends TextWebSocketHandler implements SubProtocolCapable {

  static final String PATH_PREFIX = "/ws/sessions/";

  /** Tomcat's per-session timeout of a blocking send, in milliseconds. */
  static final String BLOCKING_SEND_TIMEOUT = "org.apache.tomcat.websocket.BLOCKING_SEND_TIMEOUT";

  private static final String SESSION_ID = "cotrain.sessionId";

  private final SessionEventRelay relay;
  private final LiveProperties properties;

  SessionSocketHandler(SessionEventRelay relay, LiveProperties properties) {
    this.relay = relay;
    this.properties = properties;
  }

  @Override
  public void afterConnectionEstablished(WebSocketSession session) throws IOException {
    UUID sessionId = sessionId(session.getUri());
    if (sessionId == null) {
      session.close(CloseStatus.POLICY_VIOLATION.withReason("session id must be a UUID"));
      return;
    }
    limitBlockingSends(session, properties);
    session.getAttributes().put(SESSION_ID, sessionId);
    relay.subscribe(
        sessionId,
        session,
        (Caller) session.getAttributes().get(Caller.ATTRIBUTE),
        afterStep(session.getUri()));
  }

  /**
   * A send that stays blocked for {@code send-time-limit} fails (Tomcat's blocking-send timeout),
   * which frees the client's drain and closes it; other clients are not waiting on it meanwhile.
   */
  static void limitBlockingSends(WebSocketSession session, LiveProperties properties) {
    if (session instanceof StandardWebSocketSession standard) {
      standard
          .getNativeSession()
          .getUserProperties()
          .put(BLOCKING_SEND_TIMEOUT, properties.sendTimeLimit().toMillis());
    }
  }

  /** Selected when a browser offers it with its token ({@link WebSocketTokenInterceptor}). */
  @Override
  public List<String> getSubProtocols() {
    return List.of(WebSocketTokenInterceptor.PROTOCOL);
  }

  @Override
  protected void handleTextMessage(WebSocketSession session, TextMessage message) {
    // Subscribing is done by the URL; there is nothing a client can send.
  }

  @Override
  public void afterConnectionClosed(WebSocketSession session, CloseStatus status) {
    if (session.getAttributes().get(SESSION_ID) instanceof UUID id) {
      relay.unsubscribe(id, session);
    }
  }

  /**
   * {@code ?afterStep=N}: the last step a reconnecting client saw; it is sent every stored step
   * after it before the live ones. Null when absent or not a number.
   */
  static Long afterStep(URI uri) {
    if (uri == null || uri.getQuery() == null) {
      return null;
    }
    for (String part : uri.getQuery().split("&")) {
      if (part.startsWith("afterStep=")) {
        try {
          return Long.parseLong(part.substring("afterStep=".length()));
        } catch (NumberFormatException e) {
          return null;
        }
      }
    }
    return null;
  }

  /** The canonical UUID at the end of the path, or null. */
  static UUID sessionId(URI uri) {
    if (uri == null || uri.getPath() == null) {
      return null;
    }
    String path = uri.getPath();
    int slash = path.lastIndexOf('/');
    String text = path.substring(slash + 1);
    try {
      UUID id = UUID.fromString(text);
      return id.toString().equalsIgnoreCase(text) ? id : null;
    } catch (IllegalArgumentException e) {
      return null;
    }
  }
}
