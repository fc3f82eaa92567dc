package dev.cotrain.api.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cotrain.api.ApiTestSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.test.web.servlet.MockMvc;

class WorkerApiTest extends ApiTestSupport {

  @Autowired MockMvc mvc;

  @BeforeEach
  @AfterEach
  void emptyInventory() {
    jdbc.sql("TRUNCATE hosts CASCADE").update();
  }

  @Test
  void listsHostsWithTheirDevicesAndWhetherTheirWorkerIsAlive() throws Exception {
    jdbc.sql(
            """
            INSERT INTO hosts (id, cpu_slots, labels, worker_pid, started_at, last_seen) VALUES
              ('gpu-a', 1, '{"zone": "eu"}', 11, now(), now()),
              ('gpu-b', 2, '{}', 12, now() - interval '1 hour', now() - interval '1 minute')
            """)
        .update();
    jdbc.sql(
            """
            INSERT INTO devices (host_id, device_index, name, memory_bytes) VALUES
              ('gpu-a', 0, 'NVIDIA H200', 150754820096), ('gpu-a', 1, 'NVIDIA H200', 150754820096),
              ('gpu-b', 0, 'declared', NULL)
            """)
        .update();

    MockHttpServletResponse response = mvc.perform(get("/api/workers")).andReturn().getResponse();

    assertThat(response.getStatus()).isEqualTo(200);
    JsonNode body = mapper.readTree(response.getContentAsString());
    assertThat(body.path("alive").asInt()).isEqualTo(1);
    assertThat(body.path("devices").asInt()).isEqualTo(2); // of the alive hosts
    JsonNode first = body.path("workers").get(0);
    assertThat(first.path("id").asText()).isEqualTo("gpu-a");
    assertThat(first.path("alive").asBoolean()).isTrue();
    assertThat(first.path("labels").path("zone").asText()).isEqualTo("eu");
    assertThat(first.path("devices")).hasSize(2);
    assertThat(first.path("devices").get(1).path("memoryBytes").asLong()).isEqualTo(150754820096L);
    JsonNode gone = body.path("workers").get(1);
    assertThat(gone.path("id").asText()).isEqualTo("gpu-b");
    assertThat(gone.path("alive").asBoolean()).isFalse();
    assertThat(gone.path("devices").get(0).path("memoryBytes").isNull()).isTrue();
  }
}
