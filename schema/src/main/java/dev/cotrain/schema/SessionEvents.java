package dev.cotrain.schema;

/**
 * The PostgreSQL NOTIFY channel that carries live session events from the workers' activities to
 * the API's WebSocket relay. Payloads are JSON objects with {@code "kind": "progress" | "status"};
 * see docs/websocket.md.
 */
public final class SessionEvents {
  public static final String CHANNEL = "cotrain_session_events";

  private SessionEvents() {}
}
