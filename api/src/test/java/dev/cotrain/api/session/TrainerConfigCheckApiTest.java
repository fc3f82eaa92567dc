package dev.cotrain.api.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cotrain.api.ApiTestSupport;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.ConfigActivities.GenerateConfigInput;
import dev.cotrain.workflows.session.TaskQueues;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.mockito.ArgumentCaptor;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.test.web.servlet.MockMvc;

/** Create-time refusals by the trainer's rules, with a worker's verdict from a mocked Temporal. */
class TrainerConfigCheckApiTest extends ApiTestSupport {

  private static final String MESSAGE =
      "checkpoint.interval: must be a multiple of distributed.diloco.inner_steps (50) under"
          + " diloco (checkpoints are written after an outer step), got 30";

  @Autowired MockMvc mvc;

  private WorkflowStub check;
  private WorkflowStub session;

  @BeforeEach
  void stubTemporalAndAnAliveWorker() {
    check = mock(WorkflowStub.class);
    session = mock(WorkflowStub.class);
    when(workflowClient.newUntypedWorkflowStub(
            eq(TrainerConfigCheck.WORKFLOW_TYPE), any(WorkflowOptions.class)))
        .thenReturn(check);
    when(workflowClient.newUntypedWorkflowStub(
            eq(SessionService.WORKFLOW_TYPE), any(WorkflowOptions.class)))
        .thenReturn(session);
    jdbc.sql("TRUNCATE hosts CASCADE").update();
    jdbc.sql(
            "INSERT INTO hosts (id, cpu_slots, worker_pid, started_at, last_seen)"
                + " VALUES ('cpu-a', 1, 1, now(), now())")
        .update();
  }

  @AfterEach
  void noHosts() {
    jdbc.sql("TRUNCATE hosts CASCADE").update();
  }

  @Test
  void aCombinationTheTrainerRefusesIs400NamingTheFieldWithTheTrainersMessage() throws Exception {
    when(check.getResult(anyLong(), any(TimeUnit.class), eq(ConfigVerdict.class)))
        .thenReturn(ConfigVerdict.refused(MESSAGE));

    MockHttpServletResponse response = create(dilocoWithInterval(30));

    assertThat(response.getStatus()).isEqualTo(400);
    assertThat(response.getContentType()).isEqualTo("application/problem+json");
    JsonNode body = mapper.readTree(response.getContentAsString());
    assertThat(body.path("detail").asText()).isEqualTo("validation failed");
    assertThat(body.path("instance").asText()).isEqualTo("/api/sessions");
    assertThat(body.path("fields")).hasSize(1);
    assertThat(body.path("fields").get(0).path("field").asText())
        .isEqualTo("checkpointConfig.interval");
    assertThat(body.path("fields").get(0).path("message").asText()).isEqualTo(MESSAGE);
    // The check ran on the control queue, with the spec the session would have had.
    ArgumentCaptor<WorkflowOptions> options = ArgumentCaptor.forClass(WorkflowOptions.class);
    verify(workflowClient)
        .newUntypedWorkflowStub(eq(TrainerConfigCheck.WORKFLOW_TYPE), options.capture());
    assertThat(options.getValue().getTaskQueue()).isEqualTo(TaskQueues.CONTROL);
    assertThat(options.getValue().getWorkflowId()).startsWith(TaskQueues.CONFIG_CHECK_ID_PREFIX);
    ArgumentCaptor<Object> input = ArgumentCaptor.forClass(Object.class);
    verify(check).start(input.capture());
    GenerateConfigInput checked = (GenerateConfigInput) input.getValue();
    assertThat(checked.spec().checkpoint().interval()).isEqualTo(30);
    assertThat(checked.spec().distributed().diloco().innerSteps()).isEqualTo(50);
    // Nothing stored, no session workflow.
    verify(session, never()).start(any());
    assertThat(jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single()).isZero();
  }

  @Test
  void aCombinationTheTrainerAcceptsIsCreated() throws Exception {
    when(check.getResult(anyLong(), any(TimeUnit.class), eq(ConfigVerdict.class)))
        .thenReturn(ConfigVerdict.accepted());

    MockHttpServletResponse response = create(dilocoWithInterval(100));

    assertThat(response.getStatus()).isEqualTo(201);
    verify(session).start(any());
  }

  @Test
  void withoutAVerdictInTimeTheSessionIsAcceptedUnchecked() throws Exception {
    when(check.getResult(anyLong(), any(TimeUnit.class), eq(ConfigVerdict.class)))
        .thenThrow(new TimeoutException("no worker"));

    MockHttpServletResponse response = create(dilocoWithInterval(30));

    assertThat(response.getStatus()).isEqualTo(201);
    assertThat(mapper.readTree(response.getContentAsString()).path("status").asText())
        .isEqualTo("QUEUED");
    verify(session).start(any());
  }

  @Test
  void withNoWorkerAliveNothingIsAskedAndTheSessionIsAccepted() throws Exception {
    jdbc.sql("UPDATE hosts SET last_seen = '-infinity'").update();

    MockHttpServletResponse response = create(dilocoWithInterval(30));

    assertThat(response.getStatus()).isEqualTo(201);
    verify(workflowClient, never())
        .newUntypedWorkflowStub(eq(TrainerConfigCheck.WORKFLOW_TYPE), any(WorkflowOptions.class));
  }

  @Test
  void trainerKeysNameTheRequestsFields() {
    assertThat(TrainerKeys.fieldOf("train.batch_size")).isEqualTo("trainingConfig.batchSize");
    assertThat(TrainerKeys.fieldOf("distributed.diloco")).isEqualTo("distributedConfig.diloco");
    assertThat(TrainerKeys.fieldOf("model.size")).isEqualTo("modelConfig.size");
    assertThat(TrainerKeys.fieldOf("checkpoint.output_path")).isEqualTo("checkpointConfig");
    assertThat(TrainerKeys.fieldOf("--config")).isEqualTo("body");
  }

  private ObjectNode dilocoWithInterval(int interval) {
    ObjectNode body = validRequest();
    ((ObjectNode) body.get("distributedConfig"))
        .put("gpusPerNode", 1)
        .put("strategy", "diloco")
        .putObject("diloco")
        .put("innerSteps", 50);
    body.putObject("checkpointConfig").put("interval", interval);
    return body;
  }

  private MockHttpServletResponse create(ObjectNode body) throws Exception {
    return mvc.perform(
            post("/api/sessions")
                .contentType(MediaType.APPLICATION_JSON)
                .content(mapper.writeValueAsString(body)))
        .andReturn()
        .getResponse();
  }
}
