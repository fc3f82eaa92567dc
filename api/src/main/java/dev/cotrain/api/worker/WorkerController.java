package dev.cotrain.api.worker;

import dev.cotrain.api.temporal.TemporalProperties;
import java.util.List;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** {@code GET /api/workers}: the inventory of worker hosts and their devices. */
@RestController
@RequestMapping(path = "/api/workers", produces = MediaType.APPLICATION_JSON_VALUE)
class WorkerController {

  private final WorkerRepository repository;
  private final TemporalProperties temporal;

  WorkerController(WorkerRepository repository, TemporalProperties temporal) {
    this.repository = repository;
    this.temporal = temporal;
  }

  /**
   * Every registered host, alive ones first; a host is alive while its worker marked it seen within
   * the heartbeat timeout.
   */
  @GetMapping
  WorkersResponse list() {
    List<WorkerHost> hosts = repository.hosts(temporal.heartbeatTimeout());
    return new WorkersResponse(
        hosts,
        (int) hosts.stream().filter(WorkerHost::alive).count(),
        hosts.stream().filter(WorkerHost::alive).mapToInt(h -> h.devices().size()).sum());
  }

  /** {@code alive} hosts and the devices they offer in all. */
  record WorkersResponse(List<WorkerHost> workers, int alive, int devices) {}
}
