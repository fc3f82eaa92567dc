package dev.cotrain.api.info;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.temporal.TemporalProperties;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code GET /api/info}: who the token belongs to, and where the Temporal Web UI shows the
 * sessions' workflows. The dashboard checks a token with it at sign-in.
 */
@RestController
class InfoController {

  /**
   * {@code temporalWorkflows}: the Temporal Web UI's list of the namespace's workflows; a session's
   * workflow is {@code <temporalWorkflows>/session-<id>}.
   */
  record InfoResponse(String owner, boolean admin, String temporalWorkflows) {}

  private final TemporalProperties temporal;

  InfoController(TemporalProperties temporal) {
    this.temporal = temporal;
  }

  @GetMapping(path = "/api/info", produces = MediaType.APPLICATION_JSON_VALUE)
  InfoResponse info(@RequestAttribute(Caller.ATTRIBUTE) Caller caller) {
    String ui = temporal.uiUrl().replaceAll("/+$", "");
    return new InfoResponse(
        caller.owner(), caller.admin(), ui + "/namespaces/" + temporal.namespace() + "/workflows");
  }
}
