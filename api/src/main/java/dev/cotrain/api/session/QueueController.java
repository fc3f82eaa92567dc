package dev.cotrain.api.session;

import dev.cotrain.api.auth.Caller;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RestController;

/** The queue of sessions waiting for a placement (docs/placement.md). */
@RestController
class QueueController {

  private final SessionRepository repository;

  QueueController(SessionRepository repository) {
    this.repository = repository;
  }

  /** An admin sees every waiting session; anyone else their own, at their places in the queue. */
  @GetMapping(path = "/api/queue", produces = MediaType.APPLICATION_JSON_VALUE)
  QueueResponse queue(@RequestAttribute(Caller.ATTRIBUTE) Caller caller) {
    return new QueueResponse(repository.queue(caller.ownerFilter()));
  }
}
