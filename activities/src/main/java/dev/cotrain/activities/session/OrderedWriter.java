package dev.cotrain.activities.session;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs database writes in submission order on a thread of its own, so that whoever submits (the
 * thread reading the trainer's output) never waits for the database. A write that fails is retried,
 * with backoff, until it succeeds or the writer is closed: a database outage delays metrics but
 * loses none. Up to {@code capacity} writes wait in memory; beyond that the oldest waiting one is
 * dropped and counted.
 */
public final class OrderedWriter implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(OrderedWriter.class);
  private static final Duration FIRST_BACKOFF = Duration.ofMillis(200);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(5);

  private final String name;
  private final int capacity;
  private final ArrayDeque<Runnable> waiting = new ArrayDeque<>();
  private final Thread thread;
  private Runnable inFlight; // guarded by this
  private long dropped; // guarded by this
  private boolean closed; // guarded by this

  public OrderedWriter(String name, int capacity) {
    this.name = name;
    this.capacity = capacity;
    this.thread = new Thread(this::run, "writer-" + name);
    thread.setDaemon(true);
    thread.start();
  }

  /** Queues a write; never blocks. */
  public synchronized void submit(Runnable write) {
    if (closed) {
      throw new IllegalStateException("writer " + name + " is closed");
    }
    if (waiting.size() >= capacity) {
      waiting.pollFirst();
      if (dropped++ % 1000 == 0) {
        log.warn("{}: {} writes waiting for the database; dropping the oldest", name, capacity);
      }
    }
    waiting.addLast(write);
    notifyAll();
  }

  /** Waits until every write submitted so far is done; false when {@code timeout} ran out. */
  public synchronized boolean flush(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!waiting.isEmpty() || inFlight != null) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    return true;
  }

  public synchronized int pending() {
    return waiting.size() + (inFlight == null ? 0 : 1);
  }

  public synchronized long dropped() {
    return dropped;
  }

  /** Stops the thread; writes not done yet are abandoned (flush first to keep them). */
  @Override
  public void close() {
    int abandoned;
    synchronized (this) {
      closed = true;
      abandoned = pending();
      notifyAll();
    }
    thread.interrupt();
    if (abandoned > 0) {
      log.warn("{}: {} writes abandoned at close", name, abandoned);
    }
  }

  private void run() {
    Duration backoff = FIRST_BACKOFF;
    boolean failing = false;
    while (true) {
      Runnable write;
      synchronized (this) {
        while (waiting.isEmpty() && !closed) {
          try {
            wait();
          } catch (InterruptedException e) {
            return;
          }
        }
        if (closed) {
          return;
        }
        write = waiting.pollFirst();
        inFlight = write;
      }
      while (true) {
        try {
          write.run();
          if (failing) {
            log.info("{}: database writes succeed again", name);
            failing = false;
          }
          backoff = FIRST_BACKOFF;
          break;
        } catch (RuntimeException e) {
          if (!failing) {
            log.warn(
                "{}: database write failed, retrying until it succeeds: {}", name, e.getMessage());
            failing = true;
          }
          try {
            Thread.sleep(backoff.toMillis());
          } catch (InterruptedException interrupted) {
            return;
          }
          backoff =
              backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0
                  ? MAX_BACKOFF
                  : backoff.multipliedBy(2);
          synchronized (this) {
            if (closed) {
              return;
            }
          }
        }
      }
      synchronized (this) {
        inFlight = null;
        notifyAll();
      }
    }
  }
}
