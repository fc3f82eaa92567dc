package dev.cotrain.api.live;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.Executor;
import org.junit.jupiter.api.Test;
import org.springframework.web.socket.TextMessage;
import org.springframework.web.socket.WebSocketSession;

/** The queue of one client, drained by hand: what waits, what is coalesced, in which order. */
class SubscriberTest {

  private final Deque<Runnable> tasks = new ArrayDeque<>();
  private final Executor manual = tasks::add;
  private final List<String> sent = new ArrayList<>();

  private Subscriber subscriber() throws Exception {
    WebSocketSession socket = mock(WebSocketSession.class);
    when(socket.isOpen()).thenReturn(true);
    org.mockito.Mockito.doAnswer(call -> sent.add(((TextMessage) call.getArgument(0)).getPayload()))
        .when(socket)
        .sendMessage(org.mockito.ArgumentMatchers.any());
    return new Subscriber(socket, manual, 1 << 20);
  }

  private void drain() {
    while (!tasks.isEmpty()) {
      tasks.poll().run();
    }
  }

  @Test
  void aSessionsNewerProgressReplacesItsWaitingOneInPlaceAndOtherSessionsKeepTheirs()
      throws Exception {
    Subscriber client = subscriber();
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a1"));
    client.offer(LiveMessages.PROGRESS, "b", new TextMessage("b1"));
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a2"));

    assertThat(client.waiting()).isEqualTo(2);
    drain();
    assertThat(sent).containsExactly("a2", "b1");
  }

  @Test
  void progressIsNotCoalescedAcrossAnotherMessageOfItsSession() throws Exception {
    Subscriber client = subscriber();
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a1"));
    client.offer(LiveMessages.STATUS, "a", new TextMessage("paused"));
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a2"));
    client.offer(LiveMessages.STATUS, "a", new TextMessage("running"));
    client.offer(LiveMessages.STATUS, "a", new TextMessage("running again"));

    drain();
    assertThat(sent).containsExactly("a1", "paused", "a2", "running", "running again");
  }

  @Test
  void aSentProgressIsNotReplacedByTheNextOne() throws Exception {
    Subscriber client = subscriber();
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a1"));
    drain();
    client.offer(LiveMessages.PROGRESS, "a", new TextMessage("a2"));
    drain();
    assertThat(sent).containsExactly("a1", "a2");
  }
}
