package dev.cotrain.api.session;

import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/** The queue of sessions waiting for a placement (docs/placement.md). */
@RestController
class QueueController {

  private final SessionRepository repository;

  QueueController(SessionRepository repository) {
    this.repository = repository;
  }

  @GetMapping(path = "/api/queue", produces = MediaType.APPLICATION_JSON_VALUE)
  QueueResponse queue() {
    return new QueueResponse(repository.queue());
  }
}
