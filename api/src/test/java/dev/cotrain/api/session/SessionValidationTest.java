package dev.cotrain.api.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.Mockito.verifyNoInteractions;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cotrain.api.ApiTestSupport;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.http.MediaType;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.test.web.servlet.MockMvc;

class SessionValidationTest extends ApiTestSupport {

  @Autowired MockMvc mvc;

  static Stream<Arguments> badBodies() {
    return Stream.of(
        bad(
            "priority out of range",
            b -> b.put("priority", 1001),
            "priority",
            "must be between -1000 and 1000"),
        bad(
            "owner with a space",
            b -> b.put("owner", "alice smith"),
            "owner",
            "must be 1 to 64 letters, digits, '.', '_', '@' or '-'"),
        bad(
            "unknown placement",
            b -> b.put("placement", "random"),
            "placement",
            "must be one of spread, pack"),
        bad(
            "load mode without a rate",
            b -> b.putObject("loadConfig").put("eventsPerSecond", 0),
            "loadConfig.eventsPerSecond",
            "must be above 0 and at most 1000"),
        bad(
            "bad model size",
            b -> model(b).put("size", "3B"),
            "modelConfig.size",
            "must be one of debug, 125M, 1B, 7B, 13B, 70B"),
        bad(
            "enum in the wrong case",
            b -> training(b).put("optimizer", "AdamW"),
            "trainingConfig.optimizer",
            "must be one of adam, adamw, sgd"),
        bad(
            "bad model type",
            b -> model(b).put("type", "gpt2"),
            "modelConfig.type",
            "must be one of llama2, llama3, bert"),
        bad(
            "bad precision",
            b -> model(b).put("precision", "int8"),
            "modelConfig.precision",
            "must be one of fp32, fp16, bf16"),
        bad(
            "bad strategy",
            b -> distributed(b).put("strategy", "zero3"),
            "distributedConfig.strategy",
            "must be one of ddp, fsdp, diloco"),
        bad(
            "negative learning rate",
            b -> training(b).put("learningRate", -0.1),
            "trainingConfig.learningRate",
            "must be greater than 0"),
        bad(
            "zero learning rate",
            b -> training(b).put("learningRate", 0),
            "trainingConfig.learningRate",
            "must be greater than 0"),
        bad(
            "learning rate over 10",
            b -> training(b).put("learningRate", 10.5),
            "trainingConfig.learningRate",
            "must be at most 10"),
        bad(
            "diloco settings under another strategy",
            b -> distributed(b).putObject("diloco").put("innerSteps", 50),
            "distributedConfig.diloco",
            "is allowed only with strategy diloco"),
        bad(
            "diloco outer momentum of 1",
            b ->
                distributed(b)
                    .put("strategy", "diloco")
                    .putObject("diloco")
                    .put("outerMomentum", 1),
            "distributedConfig.diloco.outerMomentum",
            "must be at least 0 and below 1"),
        bad(
            "diloco pseudo-gradient dtype",
            b ->
                distributed(b)
                    .put("strategy", "diloco")
                    .putObject("diloco")
                    .put("pseudoGradDtype", "int4"),
            "distributedConfig.diloco.pseudoGradDtype",
            "must be one of fp32, bf16, fp16"),
        bad(
            "bad schedule",
            b -> training(b).put("schedule", "wsd"),
            "trainingConfig.schedule",
            "must be one of cosine, linear, constant"),
        bad(
            "bad tokenizer",
            b -> b.putObject("dataConfig").put("tokenizer", "sentencepiece"),
            "dataConfig.tokenizer",
            "must be one of byte, bpe"),
        bad(
            "validation split over half",
            b -> b.putObject("dataConfig").put("validationSplit", 0.9),
            "dataConfig.validationSplit",
            "must be above 0 and at most 0.5"),
        bad("missing modelConfig", b -> b.remove("modelConfig"), "modelConfig", "is required"),
        bad("missing name", b -> b.remove("name"), "name", "is required"),
        bad("blank name", b -> b.put("name", "  "), "name", "is required"),
        bad(
            "name of 300 characters",
            b -> b.put("name", "n".repeat(300)),
            "name",
            "must be at most 200 characters"),
        bad(
            "description of 2001 characters",
            b -> b.put("description", "d".repeat(2001)),
            "description",
            "must be at most 2000 characters"),
        bad(
            "missing batch size",
            b -> training(b).remove("batchSize"),
            "trainingConfig.batchSize",
            "is required"),
        bad(
            "batch size 0",
            b -> training(b).put("batchSize", 0),
            "trainingConfig.batchSize",
            "must be between 1 and 4096"),
        bad(
            "batch size 4097",
            b -> training(b).put("batchSize", 4097),
            "trainingConfig.batchSize",
            "must be between 1 and 4096"),
        bad(
            "epochs 1001",
            b -> training(b).put("epochs", 1001),
            "trainingConfig.epochs",
            "must be between 1 and 1000"),
        bad(
            "maxSteps negative",
            b -> training(b).put("maxSteps", -1),
            "trainingConfig.maxSteps",
            "must be between 0 and 10000000"),
        bad(
            "65 nodes",
            b -> distributed(b).put("nodes", 65),
            "distributedConfig.nodes",
            "must be between 1 and 64"),
        bad(
            "gpusPerNode 0",
            b -> distributed(b).put("gpusPerNode", 0),
            "distributedConfig.gpusPerNode",
            "must be between 1 and 64"),
        bad(
            "seqLength 4",
            b -> b.putObject("dataConfig").put("seqLength", 4),
            "dataConfig.seqLength",
            "must be between 8 and 4096"),
        bad(
            "negative checkpoint interval",
            b -> b.putObject("checkpointConfig").put("interval", -5),
            "checkpointConfig.interval",
            "must be at least 0"),
        bad(
            "dataPath escaping the dataset root",
            b -> data(b, "../etc/passwd"),
            "dataConfig.dataPath",
            "must not contain '.' or '..' segments"),
        bad(
            "dataPath escaping in the middle",
            b -> data(b, "a/../../b.txt"),
            "dataConfig.dataPath",
            "must not contain '.' or '..' segments"),
        bad(
            "absolute dataPath",
            b -> data(b, "/abs"),
            "dataConfig.dataPath",
            "must be a relative path (no leading '/')"),
        bad(
            "dataPath with a space",
            b -> data(b, "my data.txt"),
            "dataConfig.dataPath",
            "may contain only letters, digits, '.', '_', '-' and '/'"),
        bad(
            "dataPath with a backslash",
            b -> data(b, "..\\x"),
            "dataConfig.dataPath",
            "may contain only letters, digits, '.', '_', '-' and '/'"),
        bad(
            "dataPath of 256 characters",
            b -> data(b, "p".repeat(256)),
            "dataConfig.dataPath",
            "must be at most 255 characters"),
        bad("unknown top-level property", b -> b.put("bogus", 1), "bogus", "unknown property"),
        bad(
            "unknown nested property",
            b -> model(b).put("colour", "red"),
            "modelConfig.colour",
            "unknown property"),
        bad(
            "batch size as a string",
            b -> training(b).put("batchSize", "x"),
            "trainingConfig.batchSize",
            "must be an integer"),
        bad(
            "batch size as a numeric string",
            b -> training(b).put("batchSize", "8"),
            "trainingConfig.batchSize",
            "must be an integer"),
        bad(
            "batch size as a fraction",
            b -> training(b).put("batchSize", 8.5),
            "trainingConfig.batchSize",
            "must be an integer"),
        bad("name as a number", b -> b.put("name", 42), "name", "must be a string"),
        bad(
            "modelConfig as a string",
            b -> b.put("modelConfig", "llama2"),
            "modelConfig",
            "must be an object"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badBodies")
  void refusesInvalidBodyNamingTheField(
      String description, Consumer<ObjectNode> change, String field, String message)
      throws Exception {
    ObjectNode body = validRequest();
    change.accept(body);

    JsonNode error = postExpecting(mapper.writeValueAsString(body), 400);

    assertThat(error.path("detail").asText()).isEqualTo("validation failed");
    assertThat(error.path("fields"))
        .anySatisfy(
            f -> {
              assertThat(f.path("field").asText()).isEqualTo(field);
              assertThat(f.path("message").asText()).isEqualTo(message);
            });
    assertNothingCreated();
  }

  @Test
  void reportsEveryInvalidFieldAtOnce() throws Exception {
    ObjectNode body = validRequest();
    model(body).put("size", "3B");
    training(body).put("learningRate", -1);
    body.remove("distributedConfig");

    JsonNode error = postExpecting(mapper.writeValueAsString(body), 400);

    assertThat(error.path("fields").findValuesAsText("field"))
        .containsExactly("distributedConfig", "modelConfig.size", "trainingConfig.learningRate");
  }

  @Test
  void refusesMalformedJsonNamingWhereItBroke() throws Exception {
    String body = "{\"name\": \"x\", \"modelConfig\": {\"type\": \"llama2\",, }";

    JsonNode error = postExpecting(body, 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("modelConfig");
    assertThat(error.path("fields").get(0).path("message").asText()).startsWith("malformed JSON");
    assertThat(error.toString()).doesNotContain("Exception").doesNotContain("at com.");
    assertNothingCreated();
  }

  @Test
  void refusesTextHoldingNulWhichPostgresCannotStore() throws Exception {
    ObjectNode body = validRequest();
    data(body, "raw\u0000.txt");
    body.put("description", "a\u0000b");

    JsonNode error = postExpecting(mapper.writeValueAsString(body), 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("description");
    assertThat(error.path("fields").get(0).path("message").asText())
        .isEqualTo("must not contain the NUL character");
    assertNothingCreated();
  }

  @Test
  void refusesTrailingGarbageAfterTheObject() throws Exception {
    JsonNode error = postExpecting(mapper.writeValueAsString(validRequest()) + " {}", 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("body");
    assertNothingCreated();
  }

  @Test
  void refusesABodyThatIsNotAnObject() throws Exception {
    JsonNode error = postExpecting("[1, 2]", 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("body");
  }

  @Test
  void refusesAnEmptyBody() throws Exception {
    JsonNode error = postExpecting("", 400);

    assertThat(error.path("fields").get(0).path("field").asText()).isEqualTo("body");
  }

  @Test
  void refusesABodyOver64KibWithContentLength() throws Exception {
    ObjectNode body = validRequest();
    body.put("description", "d".repeat(100 * 1024));

    JsonNode error = postExpecting(mapper.writeValueAsString(body), 413);

    assertThat(error.path("detail").asText()).contains("larger than 65536 bytes");
    assertNothingCreated();
  }

  @Test
  void refusesAChunkedBodyOver64KibWhileReadingIt() throws Exception {
    byte[] body =
        ("{\"name\": \"" + "n".repeat(100 * 1024) + "\"}").getBytes(StandardCharsets.UTF_8);
    HttpRequest request =
        HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/api/sessions"))
            .header("Content-Type", "application/json")
            // No length known up front: the body is sent chunked.
            .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body)))
            .build();

    HttpResponse<String> response =
        HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());

    assertThat(response.statusCode()).isEqualTo(413);
    assertThat(mapper.readTree(response.body()).path("detail").asText())
        .contains("larger than 65536 bytes");
    assertNothingCreated();
  }

  private JsonNode postExpecting(String body, int status) throws Exception {
    MockHttpServletResponse response =
        mvc.perform(post("/api/sessions").contentType(MediaType.APPLICATION_JSON).content(body))
            .andReturn()
            .getResponse();
    assertThat(response.getStatus()).as(response.getContentAsString()).isEqualTo(status);
    assertThat(response.getContentType()).startsWith(MediaType.APPLICATION_PROBLEM_JSON_VALUE);
    JsonNode problem = mapper.readTree(response.getContentAsString());
    assertThat(problem.path("status").asInt()).isEqualTo(status);
    assertThat(problem.path("type").asText()).isEqualTo("about:blank");
    assertThat(problem.path("instance").asText()).isEqualTo("/api/sessions");
    return problem;
  }

  private void assertNothingCreated() {
    assertThat(jdbc.sql("SELECT count(*) FROM sessions").query(Long.class).single()).isZero();
    verifyNoInteractions(workflowClient);
  }

  private static Arguments bad(
      String description, Consumer<ObjectNode> change, String field, String message) {
    return Arguments.of(description, change, field, message);
  }

  private static ObjectNode model(ObjectNode body) {
    return (ObjectNode) body.get("modelConfig");
  }

  private static ObjectNode training(ObjectNode body) {
    return (ObjectNode) body.get("trainingConfig");
  }

  private static ObjectNode distributed(ObjectNode body) {
    return (ObjectNode) body.get("distributedConfig");
  }

  private static void data(ObjectNode body, String dataPath) {
    body.putObject("dataConfig").put("dataPath", dataPath);
  }
}
