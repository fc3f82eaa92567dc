package dev.cotrain.api.live;

import dev.cotrain.schema.SessionEvents;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.jdbc.DataSourceProperties;
import org.springframework.context.SmartLifecycle;
import org.springframework.stereotype.Component;

/**
 * LISTENs on {@link SessionEvents#CHANNEL} over one dedicated connection (not from the pool: it is
 * held for the life of the application) and hands each payload to the {@link SessionEventRelay}. A
 * dropped connection is reopened with exponential backoff; after a reconnect the relay re-sends
 * snapshots, since events sent while nobody listened are lost.
 */
@Component
class SessionEventListener implements SmartLifecycle {

  private static final Logger log = LoggerFactory.getLogger(SessionEventListener.class);

  /** An idle connection is checked this often, so that a silently dead one is noticed. */
  private static final Duration IDLE_CHECK = Duration.ofSeconds(30);

  private final DataSourceProperties dataSource;
  private final SessionEventRelay relay;
  private final LiveProperties properties;
  private final Object listeningMonitor = new Object();

  private volatile boolean running;
  private volatile CountDownLatch stopRequested = new CountDownLatch(1);
  private boolean listening; // guarded by listeningMonitor
  private Thread thread;

  SessionEventListener(
      DataSourceProperties dataSource, SessionEventRelay relay, LiveProperties properties) {
    this.dataSource = dataSource;
    this.relay = relay;
    this.properties = properties;
  }

  @Override
  public synchronized void start() {
    if (running) {
      return;
    }
    running = true;
    stopRequested = new CountDownLatch(1);
    thread = new Thread(this::run, "cotrain-session-listen");
    thread.setDaemon(true);
    thread.start();
  }

  @Override
  public synchronized void stop() {
    if (!running) {
      return;
    }
    running = false;
    stopRequested.countDown();
    try {
      thread.join(properties.pollTimeout().plusSeconds(5).toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    thread = null;
  }

  @Override
  public boolean isRunning() {
    return running;
  }

  /** Waits until LISTEN is in effect; for tests, which must not notify before that. */
  boolean awaitListening(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (listeningMonitor) {
      while (!listening) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        TimeUnit.NANOSECONDS.timedWait(listeningMonitor, left);
      }
      return true;
    }
  }

  private void run() {
    Duration backoff = properties.reconnectMinBackoff();
    boolean reconnect = false;
    while (running) {
      try (Connection connection = connect()) {
        try (Statement statement = connection.createStatement()) {
          statement.execute("LISTEN \"" + SessionEvents.CHANNEL + "\"");
        }
        setListening(true);
        log.info("Listening for session events on channel {}", SessionEvents.CHANNEL);
        if (reconnect) {
          relay.resync();
        }
        backoff = properties.reconnectMinBackoff();
        poll(connection);
      } catch (SQLException | RuntimeException e) {
        if (running) {
          log.warn(
              "Session event connection failed ({}); reconnecting in {} ms",
              e.getMessage(),
              backoff.toMillis());
        }
      } finally {
        setListening(false);
      }
      reconnect = true;
      if (running && awaitStop(backoff)) {
        break;
      }
      backoff = min(backoff.multipliedBy(2), properties.reconnectMaxBackoff());
    }
  }

  private void poll(Connection connection) throws SQLException {
    PGConnection pg = connection.unwrap(PGConnection.class);
    int timeoutMillis = (int) Math.max(1, properties.pollTimeout().toMillis());
    long lastCheck = System.nanoTime();
    while (running) {
      PGNotification[] notifications = pg.getNotifications(timeoutMillis);
      if (notifications != null && notifications.length > 0) {
        for (PGNotification notification : notifications) {
          relay.publish(notification.getParameter());
        }
        lastCheck = System.nanoTime();
      } else if (System.nanoTime() - lastCheck > IDLE_CHECK.toNanos()) {
        try (Statement statement = connection.createStatement()) {
          statement.execute("SELECT 1");
        }
        lastCheck = System.nanoTime();
      }
    }
  }

  private Connection connect() throws SQLException {
    Properties info = new Properties();
    String user = dataSource.determineUsername();
    String password = dataSource.determinePassword();
    if (user != null) {
      info.setProperty("user", user);
    }
    if (password != null) {
      info.setProperty("password", password);
    }
    info.setProperty("tcpKeepAlive", "true");
    info.setProperty("ApplicationName", "cotrain-api-listen");
    return DriverManager.getConnection(dataSource.determineUrl(), info);
  }

  private void setListening(boolean value) {
    synchronized (listeningMonitor) {
      listening = value;
      listeningMonitor.notifyAll();
    }
  }

  /** Returns true when stop was requested during the wait. */
  private boolean awaitStop(Duration wait) {
    try {
      return stopRequested.await(wait.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return true;
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }
}
