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
import org.springframework.web.socket.handler.ConcurrentWebSocketSessionDecorator;
import org.springframework.web.socket.handler.TextWebSocketHandler;

/**
 * {@code /ws/sessions/{id}}: the connection is the subscription to one session's events. Messages
 * from the client are ignored.
 */
@Component
class SessionSocketHandler extends TextWebSocketHandler implements SubProtocolCapable {

  static final String PATH_PREFIX = "/ws/sessions/";

  private static final String SUBSCRIPTION = "cotrain.subscription";
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
    // Sends are serialized per connection and never block the relay thread for long.
    WebSocketSession subscription =
        new ConcurrentWebSocketSessionDecorator(
            session, (int) properties.sendTimeLimit().toMillis(), properties.sendBufferBytes());
    session.getAttributes().put(SUBSCRIPTION, subscription);
    session.getAttributes().put(SESSION_ID, sessionId);
    relay.subscribe(
        sessionId, subscription, (Caller) session.getAttributes().get(Caller.ATTRIBUTE));
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
    Object subscription = session.getAttributes().get(SUBSCRIPTION);
    Object sessionId = session.getAttributes().get(SESSION_ID);
    if (subscription instanceof WebSocketSession socket && sessionId instanceof UUID id) {
      relay.unsubscribe(id, socket);
    }
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
