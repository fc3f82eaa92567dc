package dev.cotrain.activities.session;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class OrderedWriterTest {

  private final List<Integer> written = new CopyOnWriteArrayList<>();

  @Test
  void failingWritesAreRetriedInOrderUntilTheySucceedAndSubmitNeverBlocks() throws Exception {
    AtomicInteger failuresLeft = new AtomicInteger(3); // a database that is down, then back
    try (OrderedWriter writer = new OrderedWriter("test", 100)) {
      for (int i = 1; i <= 5; i++) {
        int n = i;
        writer.submit(
            () -> {
              if (failuresLeft.getAndDecrement() > 0) {
                throw new IllegalStateException("connection refused");
              }
              written.add(n);
            });
      }

      assertThat(writer.flush(Duration.ofSeconds(30))).isTrue();
    }

    assertThat(written).containsExactly(1, 2, 3, 4, 5);
  }

  @Test
  void beyondItsCapacityTheOldestWaitingWriteIsDropped() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    try (OrderedWriter writer = new OrderedWriter("test", 2)) {
      writer.submit(
          () -> {
            started.countDown();
            await(release);
            written.add(0);
          });
      assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
      for (int i = 1; i <= 4; i++) {
        int n = i;
        writer.submit(() -> written.add(n));
      }
      release.countDown();

      assertThat(writer.flush(Duration.ofSeconds(30))).isTrue();
      assertThat(writer.dropped()).isEqualTo(2);
    }

    assertThat(written).containsExactly(0, 3, 4);
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
