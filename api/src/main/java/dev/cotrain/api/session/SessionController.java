package dev.cotrain.api.session;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.error.ApiException;
import io.swagger.v3.oas.annotations.Parameter;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import jakarta.validation.Valid;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import java.io.IOException;
import java.net.URI;
import java.util.UUID;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping(path = "/api/sessions", produces = MediaType.APPLICATION_JSON_VALUE)
class SessionController {

  static final int MAX_METRICS_LIMIT = 10_000;
  static final int MAX_EVENTS_LIMIT = 1_000;

  static final int MAX_LOG_LINES = 5_000;

  private static final String EVENTS_LIMIT = "must be between 1 and " + MAX_EVENTS_LIMIT;
  private static final String METRICS_LIMIT = "must be between 1 and " + MAX_METRICS_LIMIT;
  private static final String AT_LEAST_0 = "must be at least 0";

  private final SessionService sessions;
  private final SessionRepository repository;
  private final TrainerLogs logs;

  SessionController(SessionService sessions, SessionRepository repository, TrainerLogs logs) {
    this.sessions = sessions;
    this.repository = repository;
    this.logs = logs;
  }

  /**
   * With an {@code Idempotency-Key} header, a retried request returns the session the first one
   * created (header {@code Idempotent-Replayed: true}) and starts nothing.
   */
  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(responseCode = "201", description = "created, or replayed for its Idempotency-Key")
  @ApiResponse(responseCode = "409", description = "the Idempotency-Key was used with another body")
  @ApiResponse(responseCode = "503", description = "the session's workflow could not be started")
  ResponseEntity<SessionResponse> create(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @Valid @RequestBody CreateSessionRequest request,
      @RequestHeader(name = "Idempotency-Key", required = false) String idempotencyKey) {
    SessionService.Created created = sessions.create(request, idempotencyKey, caller);
    return ResponseEntity.created(URI.create("/api/sessions/" + created.session().id()))
        .header("Idempotent-Replayed", String.valueOf(created.replayed()))
        .body(created.session());
  }

  /** PAUSING: the trainer finishes its step, checkpoints and exits; then PAUSED. */
  @PostMapping("/{id}/pause")
  @ApiResponse(responseCode = "200", description = "accepted: the state the session heads to")
  @ApiResponse(responseCode = "409", description = "the session's state does not allow it")
  @ApiResponse(responseCode = "503", description = "no worker took the request in time")
  ControlResponse pause(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "pause", caller);
  }

  /** QUEUED again: a PAUSED session continues from its newest checkpoint. */
  @PostMapping("/{id}/resume")
  @ApiResponse(responseCode = "200", description = "accepted: the state the session heads to")
  @ApiResponse(responseCode = "409", description = "the session's state does not allow it")
  @ApiResponse(responseCode = "503", description = "no worker took the request in time")
  ControlResponse resume(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "resume", caller);
  }

  /** CANCELLING: the trainer is stopped; CANCELLED once no process is left. */
  @PostMapping("/{id}/cancel")
  @ApiResponse(responseCode = "200", description = "accepted: the state the session heads to")
  @ApiResponse(responseCode = "409", description = "the session's state does not allow it")
  @ApiResponse(responseCode = "503", description = "no worker took the request in time")
  ControlResponse cancel(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "cancel", caller);
  }

  /**
   * Changes the priority of a session that has not ended: a waiting session moves in the queue, a
   * running one becomes more or less likely to be preempted.
   */
  @PutMapping(path = "/{id}/priority", consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(responseCode = "200", description = "the session with its new priority")
  @ApiResponse(responseCode = "409", description = "the session has ended")
  SessionResponse priority(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @Valid @RequestBody PriorityRequest request) {
    return sessions.setPriority(id, request.priority(), caller);
  }

  /** Machine samples of the trainer (about one every 30 s), oldest first. */
  @GetMapping("/{id}/system")
  SystemResponse system(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") @Min(value = 0, message = AT_LEAST_0) long offset,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT)
          @Min(value = 1, message = EVENTS_LIMIT)
          @Max(value = MAX_EVENTS_LIMIT, message = EVENTS_LIMIT)
          int limit) {
    sessions.find(id, caller);
    return new SystemResponse(id, repository.systemSamples(id, limit, offset));
  }

  /** DiLoCo outer steps, in order (empty for other strategies). */
  @GetMapping("/{id}/syncs")
  SyncsResponse syncs(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterOuterStep,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT)
          @Min(value = 1, message = EVENTS_LIMIT)
          @Max(value = MAX_EVENTS_LIMIT, message = EVENTS_LIMIT)
          int limit) {
    sessions.find(id, caller);
    return new SyncsResponse(id, repository.syncs(id, afterOuterStep, limit));
  }

  @GetMapping("/{id}/events")
  EventsResponse events(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterId,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT)
          @Min(value = 1, message = EVENTS_LIMIT)
          @Max(value = MAX_EVENTS_LIMIT, message = EVENTS_LIMIT)
          int limit) {
    sessions.find(id, caller);
    return new EventsResponse(id, repository.events(id, afterId, limit));
  }

  @GetMapping("/{id}")
  SessionResponse get(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.find(id, caller);
  }

  /**
   * Sessions matching the filters (statuses separated by commas, owner, model type, strategy, a
   * case-insensitive part of the name), in the asked order, a page at a time: pass the answer's
   * {@code nextCursor} as {@code cursor} for the next page.
   */
  @GetMapping
  SessionListResponse list(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @RequestParam(required = false)
          @Parameter(
              description = "statuses separated by commas, e.g. RUNNING,QUEUED",
              schema = @Schema(pattern = SessionQuery.STATUSES_PATTERN))
          String status,
      @RequestParam(required = false)
          @Parameter(schema = @Schema(pattern = SessionQuery.OWNER_PATTERN))
          String owner,
      @RequestParam(required = false)
          @Parameter(schema = @Schema(allowableValues = {"llama2", "llama3", "bert"}))
          String modelType,
      @RequestParam(required = false)
          @Parameter(schema = @Schema(allowableValues = {"ddp", "fsdp", "diloco"}))
          String strategy,
      @RequestParam(required = false)
          @Parameter(
              description = "a part of the name, any case",
              schema = @Schema(maxLength = 200, pattern = SessionQuery.TEXT_PATTERN))
          String q,
      @RequestParam(defaultValue = "-createdAt")
          @Parameter(
              schema = @Schema(allowableValues = {"-createdAt", "createdAt", "name", "-name"}))
          String sort,
      @RequestParam(defaultValue = "50")
          @Min(value = 1, message = "must be between 1 and " + SessionQuery.MAX_LIMIT)
          @Max(
              value = SessionQuery.MAX_LIMIT,
              message = "must be between 1 and " + SessionQuery.MAX_LIMIT)
          int limit,
      @RequestParam(required = false)
          @Parameter(description = "the nextCursor of the previous page, with the same sort")
          String cursor) {
    return sessions.list(
        SessionQuery.of(status, owner, modelType, strategy, q, sort, limit, cursor), caller);
  }

  @GetMapping("/{id}/metrics")
  MetricsResponse metrics(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "-1") long afterStep,
      @RequestParam(defaultValue = "" + MAX_METRICS_LIMIT)
          @Min(value = 1, message = METRICS_LIMIT)
          @Max(value = MAX_METRICS_LIMIT, message = METRICS_LIMIT)
          int limit) {
    sessions.find(id, caller);
    return new MetricsResponse(id, repository.metrics(id, afterStep, limit));
  }

  /** The end of the trainer's log of node {@code node}: its log lines and any traceback. */
  @GetMapping("/{id}/logs")
  LogsResponse logs(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "200")
          @Min(value = 1, message = "must be between 1 and " + MAX_LOG_LINES)
          @Max(value = MAX_LOG_LINES, message = "must be between 1 and " + MAX_LOG_LINES)
          int lines,
      @RequestParam(defaultValue = "0")
          @Min(value = 0, message = "must be between 0 and 63")
          @Max(value = 63, message = "must be between 0 and 63")
          int node)
      throws IOException {
    sessions.find(id, caller);
    return new LogsResponse(id, node, logs.tail(id, node, lines));
  }

  @GetMapping("/{id}/checkpoints")
  CheckpointsResponse checkpoints(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    sessions.find(id, caller);
    return new CheckpointsResponse(id, repository.checkpoints(id));
  }

  /**
   * A chart's view of the steps {@code fromStep}..{@code toStep} (all by default): at most {@code
   * points} buckets, each with the loss's minimum, maximum and last value, so that spikes stay
   * visible.
   */
  @GetMapping("/{id}/metrics/downsampled")
  DownsampledMetricsResponse downsampledMetrics(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "500")
          @Min(value = 1, message = METRICS_LIMIT)
          @Max(value = MAX_METRICS_LIMIT, message = METRICS_LIMIT)
          int points,
      @RequestParam(defaultValue = "0") @Min(value = 0, message = AT_LEAST_0) long fromStep,
      @RequestParam(defaultValue = "" + Long.MAX_VALUE) long toStep) {
    if (toStep < fromStep) {
      throw ApiException.badField("toStep", "must be at least fromStep");
    }
    sessions.find(id, caller);
    return new DownsampledMetricsResponse(
        id, repository.downsampledMetrics(id, fromStep, toStep, points));
  }
}
