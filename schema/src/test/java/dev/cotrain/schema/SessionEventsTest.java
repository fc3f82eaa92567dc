package dev.cotrain.schema;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class SessionEventsTest {

  private static final String ID = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";

  @Test
  void eventsRoundTripThroughTheirPayload() {
    SessionEvent progress =
        new SessionEvent.Progress(
            ID, 7, 200, 1, 3.5, 4.25, 0.1, 3e-4, 1.5, 8, 1234.5, 2, "2026-11-30T20:00:00.123456Z");
    SessionEvent status =
        new SessionEvent.Status(
            ID,
            42,
            "2026-11-30T20:00:00Z",
            "RUNNING",
            "STARTING",
            "trainer_started",
            2,
            "resumed from step 50",
            false,
            null);

    assertThat(SessionEvents.decode(SessionEvents.encode(progress))).isEqualTo(progress);
    assertThat(SessionEvents.decode(SessionEvents.encode(status))).isEqualTo(status);
    assertThat(SessionEvents.encode(progress))
        .contains("\"kind\":\"progress\"")
        .contains("\"at\":\"2026-11-30T20:00:00.123456Z\"");
  }

  @Test
  void aHugeMessageIsCutSoThatThePayloadFitsNotify() {
    String message = "é".repeat(8000) + "tail";
    SessionEvent status =
        new SessionEvent.Status(
            ID, 1, "2026-11-30T20:00:00Z", "FAILED", "RUNNING", "failed", 1, message, false, null);

    String payload = SessionEvents.encode(status);

    assertThat(payload.getBytes(StandardCharsets.UTF_8).length)
        .isLessThanOrEqualTo(SessionEvents.MAX_PAYLOAD_BYTES);
    SessionEvent.Status decoded = (SessionEvent.Status) SessionEvents.decode(payload);
    assertThat(decoded.messageCut()).isTrue();
    assertThat(message).startsWith(decoded.message());
    assertThat(decoded.message()).hasSizeGreaterThan(2000);
  }

  @Test
  void somethingElseIsNotAnEvent() {
    assertThatThrownBy(() -> SessionEvents.decode("{\"kind\": \"gossip\", \"sessionId\": \"x\"}"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> SessionEvents.decode("not json"))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void cutKeepsWholeCodePoints() {
    assertThat(SessionEvents.cut("aé😀b", 3)).isEqualTo("aé");
    assertThat(SessionEvents.cut("aé😀b", 7)).isEqualTo("aé😀");
  }
}
