package dev.cotrain.api.session;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.error.ApiException;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionInput;
import dev.cotrain.workflows.session.TrainingSessionWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.common.metadata.POJOWorkflowInterfaceMetadata;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Service;

/** Creates sessions: the row first (the workflow's activities update it), then the workflow. */
@Service
class SessionService {

  /** Temporal's limit on a workflow's static summary. */
  static final int SUMMARY_MAX_BYTES = 200;

  /**
   * The workflow type as Temporal registers it, derived from the interface so that it cannot drift.
   * The untyped stub is used so that the start can be tested with a mocked client.
   */
  static final String WORKFLOW_TYPE =
      POJOWorkflowInterfaceMetadata.newInstance(TrainingSessionWorkflow.class)
          .getWorkflowType()
          .orElseThrow();

  private static final Logger log = LoggerFactory.getLogger(SessionService.class);

  private final SessionRepository repository;
  private final WorkflowClient workflowClient;
  private final ObjectMapper mapper;

  SessionService(SessionRepository repository, WorkflowClient workflowClient, ObjectMapper mapper) {
    this.repository = repository;
    this.workflowClient = workflowClient;
    this.mapper = mapper;
  }

  /** Stores and starts a validated request; throws 503 when the workflow cannot be started. */
  SessionResponse create(CreateSessionRequest validRequest) {
    CreateSessionRequest request = validRequest.normalized();
    UUID id = UUID.randomUUID();
    String sessionId = id.toString();
    String workflowId = TaskQueues.workflowId(sessionId);
    repository.insertQueued(id, workflowId, request.name(), request.description(), json(request));

    WorkflowOptions options =
        WorkflowOptions.newBuilder()
            .setWorkflowId(workflowId)
            .setTaskQueue(TaskQueues.CONTROL)
            .setStaticSummary(summary(request.name()))
            .build();
    try {
      workflowClient
          .newUntypedWorkflowStub(WORKFLOW_TYPE, options)
          .start(new TrainingSessionInput(sessionId, request.toSpec()));
    } catch (RuntimeException e) {
      String error = "could not start the session's workflow: " + reason(e);
      log.warn("Session {}: {}", sessionId, error, e);
      repository.markFailed(id, error);
      throw new ApiException(HttpStatus.SERVICE_UNAVAILABLE, error);
    }
    return find(id);
  }

  SessionResponse find(UUID id) {
    return repository
        .find(id)
        .map(row -> SessionResponse.of(row, tree(row.request())))
        .orElseThrow(() -> ApiException.notFound("session " + id + " not found"));
  }

  List<SessionResponse> list(int limit, long offset) {
    return repository.list(limit, offset).stream()
        .map(row -> SessionResponse.of(row, tree(row.request())))
        .toList();
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
