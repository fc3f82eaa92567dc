package dev.cotrain.api.live;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.auth.WebSocketTokenInterceptor;
import java.util.List;
import org.springframework.stereotype.Component;
import org.springframework.web.socket.CloseStatus;
import org.springframework.web.socket.SubProtocolCapable;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketSession;
import org.springframework.web.socket.handler.TextWebSocketHandler;

/**
 * {@code /ws/sessions}: the status, progress and queue position of every session the caller may
 * see, for a table of sessions. Messages from the client are ignored.
 */
@Component
class SessionListSocketHandler extends TextWebSocketHandler implements SubProtocolCapable {

  static final String PATH = "/ws/sessions";

  private final SessionEventRelay relay;
  private final LiveProperties properties;

  SessionListSocketHandler(SessionEventRelay relay, LiveProperties properties) {
    this.relay = relay;
    this.properties = properties;
  }

  @Override
  public void afterConnectionEstablished(WebSocketSession session) {
    SessionSocketHandler.limitBlockingSends(session, properties);
    relay.subscribeList(session, (Caller) session.getAttributes().get(Caller.ATTRIBUTE));
  }

  /** Selected when a browser offers it with its token ({@link WebSocketTokenInterceptor}). */
  @Override
  public List<String> getSubProtocols() {
    return List.of(WebSocketTokenInterceptor.PROTOCOL);
  }

  @Override
  protected void handleTextMessage(WebSocketSession session, TextMessage message) {
    // There is nothing a client can send.
  }

  @Override
  public void afterConnectionClosed(WebSocketSession session, CloseStatus status) {
    relay.unsubscribeList(session);
  }
}
