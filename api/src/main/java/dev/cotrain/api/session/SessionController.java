package dev.cotrain.api.session;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.error.ApiException;
import jakarta.validation.Valid;
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
  ControlResponse pause(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "pause", caller);
  }

  /** QUEUED again: a PAUSED session continues from its newest checkpoint. */
  @PostMapping("/{id}/resume")
  ControlResponse resume(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "resume", caller);
  }

  /** CANCELLING: the trainer is stopped; CANCELLED once no process is left. */
  @PostMapping("/{id}/cancel")
  ControlResponse cancel(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable UUID id) {
    return sessions.control(id, "cancel", caller);
  }

  /**
   * Changes the priority of a session that has not ended: a waiting session moves in the queue, a
   * running one becomes more or less likely to be preempted.
   */
  @PutMapping(path = "/{id}/priority", consumes = MediaType.APPLICATION_JSON_VALUE)
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
      @RequestParam(defaultValue = "0") long offset,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    between("limit", limit, 1, MAX_EVENTS_LIMIT);
    between("offset", offset, 0, Long.MAX_VALUE);
    sessions.find(id, caller);
    return new SystemResponse(id, repository.systemSamples(id, limit, offset));
  }

  /** DiLoCo outer steps, in order (empty for other strategies). */
  @GetMapping("/{id}/syncs")
  SyncsResponse syncs(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterOuterStep,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    between("limit", limit, 1, MAX_EVENTS_LIMIT);
    sessions.find(id, caller);
    return new SyncsResponse(id, repository.syncs(id, afterOuterStep, limit));
  }

  /** A 400 naming {@code parameter} unless {@code min <= value <= max} (no max: Long.MAX_VALUE). */
  private static void between(String parameter, long value, long min, long max) {
    if (value < min || value > max) {
      throw ApiException.badField(
          parameter,
          max == Long.MAX_VALUE
              ? "must be at least " + min
              : "must be between " + min + " and " + max);
    }
  }

  @GetMapping("/{id}/events")
  EventsResponse events(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterId,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    between("limit", limit, 1, MAX_EVENTS_LIMIT);
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
      @RequestParam(required = false) String status,
      @RequestParam(required = false) String owner,
      @RequestParam(required = false) String modelType,
      @RequestParam(required = false) String strategy,
      @RequestParam(required = false) String q,
      @RequestParam(defaultValue = "-createdAt") String sort,
      @RequestParam(defaultValue = "50") int limit,
      @RequestParam(required = false) String cursor) {
    return sessions.list(
        SessionQuery.of(status, owner, modelType, strategy, q, sort, limit, cursor), caller);
  }

  @GetMapping("/{id}/metrics")
  MetricsResponse metrics(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "-1") long afterStep,
      @RequestParam(defaultValue = "" + MAX_METRICS_LIMIT) int limit) {
    between("limit", limit, 1, MAX_METRICS_LIMIT);
    sessions.find(id, caller);
    return new MetricsResponse(id, repository.metrics(id, afterStep, limit));
  }

  /** The end of the trainer's log of node {@code node}: its log lines and any traceback. */
  @GetMapping("/{id}/logs")
  LogsResponse logs(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable UUID id,
      @RequestParam(defaultValue = "200") int lines,
      @RequestParam(defaultValue = "0") int node)
      throws IOException {
    between("lines", lines, 1, MAX_LOG_LINES);
    between("node", node, 0, 63);
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
      @RequestParam(defaultValue = "500") int points,
      @RequestParam(defaultValue = "0") long fromStep,
      @RequestParam(defaultValue = "" + Long.MAX_VALUE) long toStep) {
    between("points", points, 1, MAX_METRICS_LIMIT);
    between("fromStep", fromStep, 0, Long.MAX_VALUE);
    if (toStep < fromStep) {
      throw ApiException.badField("toStep", "must be at least fromStep");
    }
    sessions.find(id, caller);
    return new DownsampledMetricsResponse(
        id, repository.downsampledMetrics(id, fromStep, toStep, points));
  }
}
