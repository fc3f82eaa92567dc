package dev.cotrain.worker;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.cotrain.activities.config.ConfigActivitiesImpl;
import dev.cotrain.activities.session.SessionActivitiesImpl;
import dev.cotrain.activities.session.SessionStore;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.activities.training.TrainerLauncher;
import dev.cotrain.activities.training.TrainingActivitiesImpl;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionWorkflowImpl;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import io.temporal.worker.WorkerOptions;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.flywaydb.core.Flyway;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The worker process: applies the schema, then polls the control queue (session workflows, config
 * generation, status bookkeeping) and the training queue (trainer processes, one per slot).
 *
 * <p>Run: {@code java -jar worker/target/cotrain-worker-exec.jar}, configured by COTRAIN_* env.
 */
public final class CotrainWorker implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(CotrainWorker.class);

  private final HikariDataSource dataSource;
  private final WorkflowServiceStubs service;
  private final WorkerFactory factory;

  private CotrainWorker(WorkerSettings settings) {
    HikariConfig db = new HikariConfig();
    db.setJdbcUrl(settings.dbUrl());
    db.setUsername(settings.dbUser());
    db.setPassword(settings.dbPassword());
    db.setMaximumPoolSize(2 + settings.trainingSlots());
    db.setPoolName("cotrain-worker");
    this.dataSource = new HikariDataSource(db);
    Flyway.configure().dataSource(dataSource).load().migrate();

    StorageLayout layout = new StorageLayout(settings.storageRoot()).create();
    SessionStore store = new SessionStore(dataSource);

    this.service =
        WorkflowServiceStubs.newServiceStubs(
            WorkflowServiceStubsOptions.newBuilder().setTarget(settings.temporalTarget()).build());
    WorkflowClient client =
        WorkflowClient.newInstance(
            service, WorkflowClientOptions.newBuilder().setNamespace(settings.namespace()).build());
    this.factory = WorkerFactory.newInstance(client);

    Worker control = factory.newWorker(TaskQueues.CONTROL);
    control.registerWorkflowImplementationTypes(TrainingSessionWorkflowImpl.class);
    control.registerActivitiesImplementations(
        new ConfigActivitiesImpl(layout), new SessionActivitiesImpl(store));

    Worker training =
        factory.newWorker(
            TaskQueues.TRAINING,
            WorkerOptions.newBuilder()
                .setMaxConcurrentActivityExecutionSize(settings.trainingSlots())
                .build());
    training.registerActivitiesImplementations(
        new TrainingActivitiesImpl(
            layout,
            store,
            new TrainerLauncher(List.of(settings.python()), settings.stopGrace()),
            settings.heartbeatEvery()));
  }

  /** Connects, registers and starts polling; the returned worker runs until closed. */
  public static CotrainWorker start(WorkerSettings settings) {
    CotrainWorker worker = new CotrainWorker(settings);
    worker.factory.start();
    log.info(
        "Cotrain worker ready: temporal {} queues {} and {} ({} training slot(s)), storage {}",
        settings.temporalTarget(),
        TaskQueues.CONTROL,
        TaskQueues.TRAINING,
        settings.trainingSlots(),
        settings.storageRoot().toAbsolutePath().normalize());
    return worker;
  }

  @Override
  public void close() {
    factory.shutdown();
    factory.awaitTermination(30, TimeUnit.SECONDS);
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
