package dev.cotrain.api.session;

import dev.cotrain.api.error.ApiException;
import jakarta.validation.Valid;
import java.net.URI;
import java.util.UUID;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping(path = "/api/sessions", produces = MediaType.APPLICATION_JSON_VALUE)
class SessionController {

  static final int MAX_LIST_LIMIT = 200;
  static final int MAX_METRICS_LIMIT = 10_000;
  static final int MAX_EVENTS_LIMIT = 1_000;

  private final SessionService sessions;
  private final SessionRepository repository;

  SessionController(SessionService sessions, SessionRepository repository) {
    this.sessions = sessions;
    this.repository = repository;
  }

  /**
   * With an {@code Idempotency-Key} header, a retried request returns the session the first one
   * created (header {@code Idempotent-Replayed: true}) and starts nothing.
   */
  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<SessionResponse> create(
      @Valid @RequestBody CreateSessionRequest request,
      @RequestHeader(name = "Idempotency-Key", required = false) String idempotencyKey) {
    SessionService.Created created = sessions.create(request, idempotencyKey);
    return ResponseEntity.created(URI.create("/api/sessions/" + created.session().id()))
        .header("Idempotent-Replayed", String.valueOf(created.replayed()))
        .body(created.session());
  }

  /** PAUSING: the trainer finishes its step, checkpoints and exits; then PAUSED. */
  @PostMapping("/{id}/pause")
  ControlResponse pause(@PathVariable UUID id) {
    return sessions.control(id, "pause");
  }

  /** QUEUED again: a PAUSED session continues from its newest checkpoint. */
  @PostMapping("/{id}/resume")
  ControlResponse resume(@PathVariable UUID id) {
    return sessions.control(id, "resume");
  }

  /** CANCELLING: the trainer is stopped; CANCELLED once no process is left. */
  @PostMapping("/{id}/cancel")
  ControlResponse cancel(@PathVariable UUID id) {
    return sessions.control(id, "cancel");
  }

  /**
   * Changes the priority of a session that has not ended: a waiting session moves in the queue, a
   * running one becomes more or less likely to be preempted.
   */
  @PutMapping(path = "/{id}/priority", consumes = MediaType.APPLICATION_JSON_VALUE)
  SessionResponse priority(@PathVariable UUID id, @Valid @RequestBody PriorityRequest request) {
    return sessions.setPriority(id, request.priority());
  }

  /** Machine samples of the trainer (about one every 30 s), oldest first. */
  @GetMapping("/{id}/system")
  SystemResponse system(
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long offset,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    checkPage(limit, offset);
    requireSession(id);
    return new SystemResponse(id, repository.systemSamples(id, limit, offset));
  }

  /** DiLoCo outer steps, in order (empty for other strategies). */
  @GetMapping("/{id}/syncs")
  SyncsResponse syncs(
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterOuterStep,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    checkPage(limit, 0);
    requireSession(id);
    return new SyncsResponse(id, repository.syncs(id, afterOuterStep, limit));
  }

  private static void checkPage(int limit, long offset) {
    if (limit < 1 || limit > MAX_EVENTS_LIMIT) {
      throw ApiException.badField("limit", "must be between 1 and " + MAX_EVENTS_LIMIT);
    }
    if (offset < 0) {
      throw ApiException.badField("offset", "must be at least 0");
    }
  }

  private void requireSession(UUID id) {
    if (repository.find(id).isEmpty()) {
      throw ApiException.notFound("session " + id + " not found");
    }
  }

  @GetMapping("/{id}/events")
  EventsResponse events(
      @PathVariable UUID id,
      @RequestParam(defaultValue = "0") long afterId,
      @RequestParam(defaultValue = "" + MAX_EVENTS_LIMIT) int limit) {
    if (limit < 1 || limit > MAX_EVENTS_LIMIT) {
      throw ApiException.badField("limit", "must be between 1 and " + MAX_EVENTS_LIMIT);
    }
    if (repository.find(id).isEmpty()) {
      throw ApiException.notFound("session " + id + " not found");
    }
    return new EventsResponse(id, repository.events(id, afterId, limit));
  }

  @GetMapping("/{id}")
  SessionResponse get(@PathVariable UUID id) {
    return sessions.find(id);
  }

  @GetMapping
  SessionListResponse list(
      @RequestParam(defaultValue = "50") int limit, @RequestParam(defaultValue = "0") long offset) {
    if (limit < 1 || limit > MAX_LIST_LIMIT) {
      throw ApiException.badField("limit", "must be between 1 and " + MAX_LIST_LIMIT);
    }
    if (offset < 0) {
      throw ApiException.badField("offset", "must be at least 0");
    }
    return new SessionListResponse(sessions.list(limit, offset));
  }

  @GetMapping("/{id}/metrics")
  MetricsResponse metrics(
      @PathVariable UUID id,
      @RequestParam(defaultValue = "-1") long afterStep,
      @RequestParam(defaultValue = "" + MAX_METRICS_LIMIT) int limit) {
    if (limit < 1 || limit > MAX_METRICS_LIMIT) {
      throw ApiException.badField("limit", "must be between 1 and " + MAX_METRICS_LIMIT);
    }
    if (repository.find(id).isEmpty()) {
      throw ApiException.notFound("session " + id + " not found");
    }
    return new MetricsResponse(id, repository.metrics(id, afterStep, limit));
  }
}
