package dev.cotrain.worker;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.cotrain.activities.config.ConfigActivitiesImpl;
import dev.cotrain.activities.config.ConfigChecker;
import dev.cotrain.activities.evaluation.EvaluationActivitiesImpl;
import dev.cotrain.activities.host.HostStore;
import dev.cotrain.activities.placement.PlacementActivitiesImpl;
import dev.cotrain.activities.placement.PlacementStore;
import dev.cotrain.activities.registry.RegistryActivitiesImpl;
import dev.cotrain.activities.registry.RegistryStore;
import dev.cotrain.activities.session.SessionActivitiesImpl;
import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.activities.training.TrainerLauncher;
import dev.cotrain.activities.training.TrainingActivitiesImpl;
import dev.cotrain.workflows.registry.ModelEvaluationWorkflowImpl;
import dev.cotrain.workflows.session.ConfigCheckWorkflowImpl;
import dev.cotrain.workflows.session.SessionSearchAttributes;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionInput;
import dev.cotrain.workflows.session.TrainingSessionWorkflowImpl;
import io.grpc.StatusRuntimeException;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.api.operatorservice.v1.AddSearchAttributesRequest;
import io.temporal.api.operatorservice.v1.ListSearchAttributesRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.common.SearchAttributeKey;
import io.temporal.serviceclient.OperatorServiceStubs;
import io.temporal.serviceclient.OperatorServiceStubsOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import io.temporal.worker.WorkerOptions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.flywaydb.core.Flyway;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker process: applies the schema, registers the sessions' search attributes, then polls the
 * control queue (session workflows, config checks and generation, status bookkeeping) and the
 * training queue (trainer processes, one per slot). SIGTERM drains it ({@link #close()}).
 *
 * <p>Run: {@code java -jar worker/target/cotrain-worker-exec.jar}, configured by COTRAIN_* env.
 */
public final class CotrainWorker implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(CotrainWorker.class);

  /**
   * Each training slot's writer holds a connection only for one short transaction, so a few serve
   * many slots; one per slot would pass PostgreSQL's default limit of 100 connections at about 90
   * slots (bench/relay.py runs 100), and more connections than cores only queue inside PostgreSQL.
   */
  static final int MAX_DB_CONNECTIONS = 16;

  private final HikariDataSource dataSource;
  private final WorkflowServiceStubs service;
  private final WorkerFactory factory;
  private final TrainingActivitiesImpl training;
  private final Duration stopGrace;
  static final Duration STICKY_TIMEOUT = Duration.ofSeconds(1);

  private final HostStore hosts;
  private final ConfigChecker checker;
  private final WorkflowClient client;
  private final PlacementStore placements;
  private final HostStore.Host host;
  private final ScheduledExecutorService presence =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "cotrain-host-presence");
            t.setDaemon(true);
            return t;
          });

  private CotrainWorker(WorkerSettings settings) {
    HikariConfig db = new HikariConfig();
    db.setJdbcUrl(settings.dbUrl());
    db.setUsername(settings.dbUser());
    db.setPassword(settings.dbPassword());
    db.setMaximumPoolSize(Math.min(2 + settings.trainingSlots(), MAX_DB_CONNECTIONS));
    db.setPoolName("cotrain-worker");
    this.dataSource = new HikariDataSource(db);
    Flyway.configure().dataSource(dataSource).load().migrate();

    StorageLayout layout = new StorageLayout(settings.storageRoot()).create();
    SessionStore store = new SessionStore(dataSource);
    this.host =
        new HostStore.Host(
            settings.hostId(),
            settings.trainingSlots(),
            settings.labels(),
            ProcessHandle.current().pid(),
            HostInventory.devices(settings.declaredGpus()),
            settings.hostAddress());
    this.hosts = new HostStore(dataSource);
    hosts.register(host);

    this.service =
        WorkflowServiceStubs.newServiceStubs(
            WorkflowServiceStubsOptions.newBuilder().setTarget(settings.temporalTarget()).build());
    WorkflowClient client =
        WorkflowClient.newInstance(
            service, WorkflowClientOptions.newBuilder().setNamespace(settings.namespace()).build());
    registerSearchAttributes(settings);
    this.client = client;
    this.placements = new PlacementStore(dataSource);
    this.factory = WorkerFactory.newInstance(client);

    Worker control =
        factory.newWorker(
            TaskQueues.CONTROL,
            WorkerOptions.newBuilder()
                // A workflow task goes first to the worker that has the workflow cached; when that
                // worker died, the server gives it to any worker only after this timeout (default
                // 5 s), which a session whose worker was killed would otherwise wait on top of
                // the heartbeat timeout.
                .setStickyQueueScheduleToStartTimeout(STICKY_TIMEOUT)
                .build());
    control.registerWorkflowImplementationTypes(
        TrainingSessionWorkflowImpl.class,
        ConfigCheckWorkflowImpl.class,
        ModelEvaluationWorkflowImpl.class);
    this.checker = new ConfigChecker(List.of(settings.python()), Duration.ofSeconds(5));
    control.registerActivitiesImplementations(
        new ConfigActivitiesImpl(layout, checker),
        new SessionActivitiesImpl(store),
        new PlacementActivitiesImpl(placements),
        new RegistryActivitiesImpl(new RegistryStore(dataSource, layout)));

    // Sessions placed on this host run here; the allocator never places more than it offers.
    Worker training =
        factory.newWorker(
            TaskQueues.trainingQueue(settings.hostId()),
            WorkerOptions.newBuilder()
                .setMaxConcurrentActivityExecutionSize(
                    Math.max(host.devices().size(), settings.trainingSlots()))
                // Every heartbeat reaches the server at once: cancellation (pause, cancel)
                // arrives within one heartbeat interval, and the details a retry reads are fresh.
                .setMaxHeartbeatThrottleInterval(settings.heartbeatEvery())
                .setDefaultHeartbeatThrottleInterval(settings.heartbeatEvery())
                // While the worker drains, its stopping trainers still show as alive.
                .setAllowActivityHeartbeatDuringShutdown(true)
                .build());
    this.training =
        new TrainingActivitiesImpl(
            layout,
            store,
            new TrainerLauncher(List.of(settings.python()), settings.stopGrace()),
            settings.heartbeatEvery());
    EvaluationActivitiesImpl evaluations =
        new EvaluationActivitiesImpl(List.of(settings.python()), settings.heartbeatEvery(), layout);
    training.registerActivitiesImplementations(this.training, evaluations);
    // Evaluations asked for through the API: one at a time, on this worker's CPU.
    factory
        .newWorker(
            TaskQueues.EVALUATION,
            WorkerOptions.newBuilder().setMaxConcurrentActivityExecutionSize(1).build())
        .registerActivitiesImplementations(evaluations);
    this.stopGrace = settings.stopGrace();
  }

  /**
   * The session workflows keep {@link SessionSearchAttributes} current; a namespace without them
   * would fail every workflow task, so they are registered here, once, before any is polled.
   */
  private static void registerSearchAttributes(WorkerSettings settings) {
    OperatorServiceStubs operator =
        OperatorServiceStubs.newServiceStubs(
            OperatorServiceStubsOptions.newBuilder()
                .setTarget(settings.temporalTarget())
                .validateAndBuildWithDefaults());
    try {
      Map<String, IndexedValueType> known =
          operator
              .blockingStub()
              .listSearchAttributes(
                  ListSearchAttributesRequest.newBuilder()
                      .setNamespace(settings.namespace())
                      .build())
              .getCustomAttributesMap();
      AddSearchAttributesRequest.Builder add =
          AddSearchAttributesRequest.newBuilder().setNamespace(settings.namespace());
      for (SearchAttributeKey<String> key : SessionSearchAttributes.ALL) {
        if (!known.containsKey(key.getName())) {
          add.putSearchAttributes(key.getName(), IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD);
        }
      }
      if (add.getSearchAttributesCount() > 0) {
        operator.blockingStub().addSearchAttributes(add.build());
        log.info("Registered search attributes {}", add.getSearchAttributesMap().keySet());
      }
    } catch (StatusRuntimeException e) {
      throw new IllegalStateException(
          "could not register the search attributes "
              + SessionSearchAttributes.ALL.stream().map(SearchAttributeKey::getName).toList()
              + " (Keyword) in namespace "
              + settings.namespace()
              + ": "
              + e.getStatus()
              + "; create them with `temporal operator search-attribute create`",
          e);
    } finally {
      operator.shutdown();
    }
  }

  /** Connects, registers and starts polling; the returned worker runs until closed. */
  public static CotrainWorker start(WorkerSettings settings) {
    CotrainWorker worker = new CotrainWorker(settings);
    worker.checker.warmUp();
    worker.factory.start();
    worker.keepPresent(settings.heartbeatEvery());
    worker.placeWaitingSessions();
    log.info(
        "Cotrain worker ready: host {} with {} device(s), temporal {} queues {} and {} ({} training"
            + " slot(s)), storage {}",
        settings.hostId(),
        worker.host.devices().size(),
        settings.temporalTarget(),
        TaskQueues.CONTROL,
        TaskQueues.trainingQueue(settings.hostId()),
        settings.trainingSlots(),
        settings.storageRoot().toAbsolutePath().normalize());
    return worker;
  }

  /**
   * A host that joins is capacity: sessions waiting in the queue are placed (and woken) now rather
   * than at their next poll. A failure only delays them until then.
   */
  private void placeWaitingSessions() {
    try {
      PlacementActivitiesImpl.tell(
          client, placements.schedule(TrainingSessionInput.DEFAULT_HEARTBEAT_TIMEOUT));
    } catch (RuntimeException e) {
      log.warn("Could not place waiting sessions: {}", e.getMessage());
    }
  }

  /** Marks the host seen at the heartbeat pace; registers it again if its row was removed. */
  private void keepPresent(Duration every) {
    presence.scheduleWithFixedDelay(
        () -> {
          try {
            if (!hosts.seen(host.id())) {
              hosts.register(host);
            }
          } catch (RuntimeException e) {
            log.warn("Could not mark host {} present: {}", host.id(), e.getMessage());
          }
        },
        every.toMillis(),
        every.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  /**
   * Drains: marks the host gone, stops polling, then stops every trainer of this worker (each
   * checkpoints and exits, and its session goes back to the queue at once for another worker), then
   * waits for the activities to report and shuts down.
   */
  @Override
  public void close() {
    presence.shutdownNow();
    try {
      hosts.leave(host.id()); // place nothing more here
    } catch (RuntimeException e) {
      log.warn("Could not mark host {} gone: {}", host.id(), e.getMessage());
    }
    factory.shutdown();
    training.drain();
    factory.awaitTermination(stopGrace.toSeconds() + 30, TimeUnit.SECONDS);
    checker.close();
    service.shutdown();
    dataSource.close();
  }

  public static void main(String[] args) throws InterruptedException {
    CotrainWorker worker;
    try {
      worker = start(WorkerSettings.fromEnvironment(System.getenv()));
    } catch (IllegalArgumentException e) {
      System.err.println("cotrain worker: " + e.getMessage());
      System.exit(2);
      return;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  worker.close();
                  stopped.countDown();
                },
                "cotrain-worker-shutdown"));
    stopped.await();
  }
}
