package dev.cotrain.schema;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;

/**
 * The PostgreSQL NOTIFY channel that carries live {@link SessionEvent}s from the workers (and the
 * API's reconciler) to the API's WebSocket relay, and their JSON encoding. PostgreSQL refuses a
 * payload of 8000 bytes or more, so {@link #encode} keeps every payload under {@link
 * #MAX_PAYLOAD_BYTES} by cutting the one unbounded field, a status event's message; the full
 * message stays in the {@code session_events} table.
 */
public final class SessionEvents {
  public static final String CHANNEL = "cotrain_session_events";

  /** Well under PostgreSQL's limit of 8000 bytes per NOTIFY payload. */
  public static final int MAX_PAYLOAD_BYTES = 6000;

  private static final ObjectMapper JSON =
      new ObjectMapper()
          .setSerializationInclusion(JsonInclude.Include.ALWAYS)
          .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  private SessionEvents() {}

  /** The NOTIFY payload of {@code event}: JSON with {@code "kind"}, at most the byte limit. */
  public static String encode(SessionEvent event) {
    String json = write(event);
    if (bytes(json) <= MAX_PAYLOAD_BYTES) {
      return json;
    }
    if (event instanceof SessionEvent.Status status && status.message() != null) {
      int over = bytes(json) - MAX_PAYLOAD_BYTES;
      String message = cut(status.message(), bytes(status.message()) - over - 64);
      json = write(status.withMessage(message, true));
      if (bytes(json) <= MAX_PAYLOAD_BYTES) {
        return json;
      }
    }
    throw new IllegalArgumentException(
        "a session event does not fit a NOTIFY payload: " + bytes(json) + " bytes");
  }

  /** Parses a NOTIFY payload; throws {@link IllegalArgumentException} when it is not one. */
  public static SessionEvent decode(String payload) {
    try {
      SessionEvent event = JSON.readValue(payload, SessionEvent.class);
      if (event == null || event.sessionId() == null) {
        throw new IllegalArgumentException("a session event needs a sessionId");
      }
      return event;
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("not a session event: " + e.getOriginalMessage(), e);
    }
  }

  /**
   * The longest prefix of {@code text} of at most {@code maxBytes} UTF-8 bytes, at a code point.
   */
  static String cut(String text, int maxBytes) {
    if (maxBytes <= 0) {
      return "";
    }
    int bytes = 0;
    int end = 0;
    while (end < text.length()) {
      int codePoint = text.codePointAt(end);
      int size = codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
      if (bytes + size > maxBytes) {
        break;
      }
      bytes += size;
      end += Character.charCount(codePoint);
    }
    return text.substring(0, end);
  }

  private static int bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8).length;
  }

  private static String write(SessionEvent event) {
    try {
      return JSON.writeValueAsString(event);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a session event could not be written as JSON", e);
    }
  }
}
