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
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping(path = "/api/sessions", produces = MediaType.APPLICATION_JSON_VALUE)
class SessionController {

  static final int MAX_LIST_LIMIT = 200;
  static final int MAX_METRICS_LIMIT = 10_000;

  private final SessionService sessions;
  private final SessionRepository repository;

  SessionController(SessionService sessions, SessionRepository repository) {
    this.sessions = sessions;
    this.repository = repository;
  }

  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  ResponseEntity<SessionResponse> create(@Valid @RequestBody CreateSessionRequest request) {
    SessionResponse created = sessions.create(request);
    return ResponseEntity.created(URI.create("/api/sessions/" + created.id())).body(created);
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
