package dev.cotrain.api.session;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.error.ApiException;
import dev.cotrain.api.temporal.TemporalProperties;
import dev.cotrain.api.worker.WorkerRepository;
import dev.cotrain.workflows.session.SessionStatus;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionInput;
import dev.cotrain.workflows.session.TrainingSessionWorkflow;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlRequest;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.ControlResult;
import io.temporal.api.enums.v1.WorkflowIdConflictPolicy;
import io.temporal.api.enums.v1.WorkflowIdReusePolicy;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionAlreadyStarted;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.common.metadata.POJOWorkflowInterfaceMetadata;
import io.temporal.failure.TemporalFailure;
import jakarta.annotation.PreDestroy;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.OptionalInt;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Service;

/**
 * Creates and controls sessions. Create starts the workflow first, then inserts the row; the
 * workflow inserts it too (whichever comes first), so a crash of the API at any point of a create
 * leaves either nothing or a workflow with its row. Control goes to the workflow as updates, which
 * it validates against its own state.
 */
@Service
class SessionService {

  /** Temporal's limit on a workflow's static summary. */
  static final int SUMMARY_MAX_BYTES = 200;

  /** Printable ASCII, as HTTP header values are; long enough for a UUID or a hash. */
  static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[\\x21-\\x7e]{1,200}");

  /**
   * The workflow type as Temporal registers it, derived from the interface so that it cannot drift.
   * Untyped stubs are used so that the calls can be tested with a mocked client.
   */
  static final String WORKFLOW_TYPE =
      POJOWorkflowInterfaceMetadata.newInstance(TrainingSessionWorkflow.class)
          .getWorkflowType()
          .orElseThrow();

  private static final Logger log = LoggerFactory.getLogger(SessionService.class);

  private final SessionRepository repository;
  private final WorkflowClient workflowClient;
  private final TemporalProperties temporal;
  private final ObjectMapper mapper;
  private final WorkerRepository workers;
  private final TrainerConfigCheck trainerCheck;

  /**
   * Update calls block until a worker answers; they run here, bounded by the update timeout, so
   * that one without an answer never holds a request thread or a shared pool.
   */
  private final ExecutorService updates =
      Executors.newCachedThreadPool(
          task -> {
            Thread t = new Thread(task, "cotrain-session-update");
            t.setDaemon(true);
            return t;
          });

  SessionService(
      SessionRepository repository,
      WorkflowClient workflowClient,
      TemporalProperties temporal,
      ObjectMapper mapper,
      WorkerRepository workers,
      TrainerConfigCheck trainerCheck) {
    this.repository = repository;
    this.workflowClient = workflowClient;
    this.temporal = temporal;
    this.mapper = mapper;
    this.workers = workers;
    this.trainerCheck = trainerCheck;
  }

  /** A create's answer: the session, and whether an earlier request with its key made it. */
  record Created(SessionResponse session, boolean replayed) {}

  /**
   * Starts and stores a validated request. With an {@code idempotencyKey} the session id is derived
   * from the key, so a retried request finds the session (and workflow) of the first one. Throws
   * 400 for a combination the trainer refuses ({@link TrainerConfigCheck}) or no host could hold,
   * 503 when Temporal cannot be reached (nothing is stored then), 409 when the key was used for a
   * different request.
   */
  Created create(CreateSessionRequest validRequest, String idempotencyKey, Caller caller) {
    if (idempotencyKey != null && !IDEMPOTENCY_KEY.matcher(idempotencyKey).matches()) {
      throw ApiException.badField(
          "Idempotency-Key", "must be 1 to 200 printable ASCII characters without spaces");
    }
    String owner = validRequest.owner() == null ? caller.owner() : validRequest.owner();
    if (!caller.canSee(owner)) {
      throw ApiException.badField(
          "owner",
          "must be your own ("
              + caller.owner()
              + "): only an admin token creates sessions for another owner");
    }
    CreateSessionRequest request = validRequest.ownedBy(owner).normalized();
    refuseWhatNoHostCouldHold(request);
    request = withOwnModel(request, validRequest.modelName() == null, owner);
    String json = json(request);
    // A key is the caller's own: the same key from another owner makes another session.
    UUID id =
        idempotencyKey == null
            ? UUID.randomUUID()
            : UUID.nameUUIDFromBytes(
                ("idempotency-key " + caller.owner() + " " + idempotencyKey)
                    .getBytes(StandardCharsets.UTF_8));
    String sessionId = id.toString();
    String workflowId = TaskQueues.workflowId(sessionId);
    trainerCheck.refuseWhatTheTrainerWould(sessionId, request.toSpec());

    WorkflowOptions options =
        WorkflowOptions.newBuilder()
            .setWorkflowId(workflowId)
            .setTaskQueue(TaskQueues.CONTROL)
            .setStaticSummary(summary(request.name()))
            // A retried create joins the first one's workflow, running or ended.
            .setWorkflowIdReusePolicy(
                WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE)
            .setWorkflowIdConflictPolicy(
                WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
            .build();
    try {
      workflowClient
          .newUntypedWorkflowStub(WORKFLOW_TYPE, options)
          .start(
              new TrainingSessionInput(
                  sessionId,
                  request.toSpec(),
                  json,
                  temporal.heartbeatTimeout(),
                  request.modelName()));
    } catch (WorkflowExecutionAlreadyStarted e) {
      log.debug("Session {} exists already: a retried create", sessionId);
    } catch (RuntimeException e) {
      String error = "could not start the session's workflow: " + reason(e);
      log.warn("Session {}: {}", sessionId, error, e);
      throw new ApiException(HttpStatus.SERVICE_UNAVAILABLE, error);
    }
    boolean inserted =
        repository.insertQueued(id, workflowId, request.name(), request.description(), json);
    SessionResponse session = find(id, caller);
    if (!inserted && !session.request().equals(tree(json))) {
      throw new ApiException(
          HttpStatus.CONFLICT,
          "Idempotency-Key " + idempotencyKey + " was used for a different request");
    }
    return new Created(session, !inserted);
  }

  /**
   * Reserves the request's model for {@code owner}: a model is its owner's from its first session
   * on. Another owner's name is refused when the request gave it; a default name (the session's
   * name) that another owner took becomes {@code <name>-<owner>} instead.
   */
  private CreateSessionRequest withOwnModel(
      CreateSessionRequest request, boolean defaulted, String owner) {
    if (request.modelName() == null || repository.reserveModel(request.modelName(), owner)) {
      return request;
    }
    if (defaulted) {
      String own = CreateSessionRequest.modelNameOf(request.modelName() + "-" + owner);
      if (repository.reserveModel(own, owner)) {
        return request.withModelName(own);
      }
    }
    throw ApiException.badField("modelName", "is the name of another owner's model");
  }

  /**
   * A session that no registered cluster shape could hold would wait forever: more devices on one
   * host than any registered host has, or more nodes than there are registered hosts that big (or
   * hosts at all, in a cluster without devices). It is refused at once (docs/placement.md). With no
   * host registered yet, anything is accepted.
   */
  private void refuseWhatNoHostCouldHold(CreateSessionRequest request) {
    int nodes = request.distributedConfig().nodes();
    int wanted = request.distributedConfig().gpusPerNode();
    OptionalInt most = workers.mostDevicesOnOneHost();
    if (most.isPresent() && wanted > most.getAsInt()) {
      throw ApiException.badField(
          "distributedConfig.gpusPerNode",
          "no registered host has "
              + wanted
              + " devices (the largest has "
              + most.getAsInt()
              + ")");
    }
    if (nodes == 1) {
      return;
    }
    int hosts = workers.hostsWithAtLeast(most.isPresent() ? wanted : 0);
    if (hosts > 0 && hosts < nodes) {
      throw ApiException.badField(
          "distributedConfig.nodes",
          most.isPresent()
              ? "only "
                  + hosts
                  + " registered hosts have "
                  + wanted
                  + " devices, for "
                  + nodes
                  + " nodes"
              : "only " + hosts + " registered hosts, for " + nodes + " nodes");
    }
  }

  /**
   * Sets the priority of a session that has not ended (409 for one that has) and wakes its
   * workflow, so that a waiting session asks the allocator at once and takes its new place.
   */
  SessionResponse setPriority(UUID id, int priority, Caller caller) {
    find(id, caller); // 404 for a session this caller cannot see
    if (repository.setPriority(id, priority) == 0) {
      SessionResponse session = find(id, caller);
      throw new ApiException(
          HttpStatus.CONFLICT,
          "cannot change the priority of the session: it is " + session.status());
    }
    try {
      workflowClient.newUntypedWorkflowStub(TaskQueues.workflowId(id.toString())).signal("wake");
    } catch (RuntimeException e) {
      log.warn("Session {}: could not wake its workflow: {}", id, reason(e));
    }
    return find(id, caller);
  }

  /** The session, if it exists and the caller may see it (its owner, or an admin); else 404. */
  SessionResponse find(UUID id, Caller caller) {
    SessionRow row = visibleRow(id, caller);
    return SessionResponse.of(row, tree(row.request()));
  }

  private SessionRow visibleRow(UUID id, Caller caller) {
    return repository
        .find(id)
        .filter(row -> caller.canSee(row.owner()))
        .orElseThrow(() -> ApiException.notFound("session " + id + " not found"));
  }

  SessionListResponse list(SessionQuery query, Caller caller) {
    SessionRepository.Page page = repository.list(query, caller.ownerFilter());
    List<SessionResponse> sessions =
        page.rows().stream().map(row -> SessionResponse.of(row, tree(row.request()))).toList();
    String next = null;
    if (page.more()) {
      SessionRow last = page.rows().get(page.rows().size() - 1);
      next =
          new SessionQuery.Cursor(query.sort().parameter, query.sort().valueOf(last), last.id())
              .encode();
    }
    return new SessionListResponse(sessions, page.total(), next);
  }

  /**
   * Sends {@code action} (pause | resume | cancel) to the session's workflow as an update and
   * returns the state it answered. 409 when the workflow refuses it or has ended; 503 when no
   * worker takes it within the update timeout.
   */
  ControlResponse control(UUID id, String action, Caller caller) {
    SessionRow row = visibleRow(id, caller);
    if (SessionStatus.valueOf(row.status()).isFinal()) {
      throw conflict(action, "it is " + row.status());
    }
    CompletableFuture<ControlResult> update =
        CompletableFuture.supplyAsync(
            () ->
                workflowClient
                    .newUntypedWorkflowStub(row.workflowId())
                    .update(action, ControlResult.class, new ControlRequest("api")),
            updates);
    try {
      ControlResult result = update.get(temporal.updateTimeout().toMillis(), TimeUnit.MILLISECONDS);
      return new ControlResponse(id, result.status().name());
    } catch (TimeoutException e) {
      update.cancel(true);
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          "no worker took the " + action + " request within " + temporal.updateTimeout());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ApiException(HttpStatus.SERVICE_UNAVAILABLE, "interrupted");
    } catch (ExecutionException e) {
      throw controlFailure(action, e.getCause());
    }
  }

  @PreDestroy
  void stopUpdates() {
    updates.shutdownNow();
  }

  private ApiException controlFailure(String action, Throwable failure) {
    if (failure instanceof WorkflowUpdateException refused) {
      // The workflow's validator says why, e.g. "cannot resume the session: it is RUNNING".
      Throwable cause = refused.getCause();
      String message =
          cause instanceof TemporalFailure temporalFailure
              ? temporalFailure.getOriginalMessage()
              : refused.getMessage();
      return new ApiException(HttpStatus.CONFLICT, message);
    }
    if (failure instanceof WorkflowNotFoundException) {
      return conflict(action, "its workflow has ended");
    }
    log.warn("{} request failed", action, failure);
    return new ApiException(
        HttpStatus.SERVICE_UNAVAILABLE,
        "could not send the " + action + " request: " + reason(failure));
  }

  private static ApiException conflict(String action, String why) {
    return new ApiException(HttpStatus.CONFLICT, "cannot " + action + " the session: " + why);
  }

  /**
   * "Training " + name, cut at a code point so that it fits {@link #SUMMARY_MAX_BYTES} in UTF-8.
   */
  static String summary(String name) {
    String full = "Training " + name;
    if (full.getBytes(StandardCharsets.UTF_8).length <= SUMMARY_MAX_BYTES) {
      return full;
    }
    StringBuilder out = new StringBuilder();
    int bytes = 0;
    for (int i = 0; i < full.length(); ) {
      int codePoint = full.codePointAt(i);
      int size = new String(Character.toChars(codePoint)).getBytes(StandardCharsets.UTF_8).length;
      if (bytes + size > SUMMARY_MAX_BYTES) {
        break;
      }
      out.appendCodePoint(codePoint);
      bytes += size;
      i += Character.charCount(codePoint);
    }
    return out.toString();
  }

  /**
   * The messages of the failure's causes: Temporal's own message only names the workflow, the gRPC
   * status and the connection error below it say what went wrong.
   */
  static String reason(Throwable failure) {
    Set<String> messages = new LinkedHashSet<>();
    for (Throwable cause = failure.getCause(); cause != null; cause = cause.getCause()) {
      if (cause.getMessage() != null && !cause.getMessage().isBlank()) {
        messages.add(cause.getMessage());
      }
    }
    if (messages.isEmpty()) {
      return String.valueOf(failure.getMessage());
    }
    return String.join(": ", messages);
  }

  private String json(CreateSessionRequest request) {
    try {
      return mapper.writeValueAsString(request);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a session request could not be written as JSON", e);
    }
  }

  private JsonNode tree(String json) {
    try {
      return mapper.readTree(json);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a stored session request is not JSON", e);
    }
  }
}
