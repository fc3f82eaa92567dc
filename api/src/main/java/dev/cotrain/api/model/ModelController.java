package dev.cotrain.api.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.error.ApiException;
import dev.cotrain.api.model.ModelRepository.EvalSetRow;
import dev.cotrain.api.model.ModelRepository.EvaluationRow;
import dev.cotrain.api.model.ModelRepository.FileEntry;
import dev.cotrain.api.model.ModelRepository.ModelRow;
import dev.cotrain.api.model.ModelRepository.VersionRow;
import dev.cotrain.api.session.MetricBucket;
import dev.cotrain.api.session.SessionRepository;
import dev.cotrain.workflows.registry.ModelEvaluationWorkflow;
import dev.cotrain.workflows.session.TaskQueues;
import io.swagger.v3.oas.annotations.media.ArraySchema;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import io.temporal.api.enums.v1.WorkflowIdConflictPolicy;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.common.metadata.POJOWorkflowInterfaceMetadata;
import jakarta.validation.Valid;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import jakarta.validation.constraints.Positive;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.lang.Nullable;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.servlet.mvc.method.annotation.StreamingResponseBody;

/**
 * The model registry (docs/models.md): models, their versions with evaluations and files, aliases,
 * downloads and comparisons. A model is its owner's: another owner's answers 404.
 */
@RestController
@RequestMapping(path = "/api/models", produces = MediaType.APPLICATION_JSON_VALUE)
class ModelController {

  static final String NAME = "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$";
  static final String ALIAS = "^[a-z][a-z0-9_-]{0,63}$";

  /** A version: a number, {@code latest}, or an alias. */
  static final String REFERENCE = "^([1-9][0-9]{0,8}|[a-z][a-z0-9_-]{0,63})$";

  record ModelSummary(String name, String owner, Instant createdAt, int versions, long bytes) {}

  record ModelsResponse(List<ModelSummary> models) {}

  record Evaluation(
      String evalSet,
      double loss,
      double perplexity,
      @Nullable Double accuracy,
      Instant evaluatedAt) {}

  record VersionResponse(
      String model,
      int version,
      UUID sessionId,
      Instant createdAt,
      @Nullable Long parameters,
      String configHash,
      @Nullable String dataFingerprint,
      long bytes,
      List<FileEntry> files,
      @Schema(allowableValues = {"PENDING", "EVALUATED", "FAILED"}) String evaluation,
      @Nullable String evaluationError,
      List<Evaluation> evaluations,
      List<String> aliases) {}

  record ModelResponse(
      String name,
      String owner,
      Instant createdAt,
      long bytes,
      Map<String, Integer> aliases,
      List<VersionResponse> versions) {}

  record AliasRequest(
      @NotNull(message = "is required") @Positive(message = "must be a version number")
          Integer version) {}

  record AliasResponse(String model, String alias, int version) {}

  /** One compared version's loss curve (downsampled, as the session's chart). */
  record Curve(String model, int version, List<MetricBucket> buckets) {}

  /** A request field whose value differs between the compared versions' sessions. */
  record Difference(
      String field,
      @ArraySchema(schema = @Schema(description = "any JSON value; null where it is absent"))
          List<JsonNode> values) {}

  record ComparisonResponse(
      List<VersionResponse> versions,
      List<Difference> configDifferences,
      @Schema(description = "evaluation set -> model/version -> eval loss, where evaluated")
          Map<String, Map<String, Double>> evalLoss,
      List<Curve> curves) {}

  record EvaluateRequest(
      @NotBlank(message = "is required")
          @Pattern(regexp = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}", message = "must be a set's name")
          String evalSet) {}

  /** The evaluation's workflow (Temporal UI) and what it evaluates. */
  record EvaluationStarted(String workflowId, String model, int version, String evalSet) {}

  private final ModelRepository models;
  private final SessionRepository sessions;
  private final ObjectMapper mapper;
  private final WorkflowClient workflows;
  private final Path finalModels;

  ModelController(
      ModelRepository models,
      SessionRepository sessions,
      ObjectMapper mapper,
      WorkflowClient workflows,
      @Value("${cotrain.storage-root}") Path storageRoot) {
    this.models = models;
    this.sessions = sessions;
    this.mapper = mapper;
    this.workflows = workflows;
    this.finalModels = storageRoot.resolve("models/final").toAbsolutePath().normalize();
  }

  @GetMapping
  ModelsResponse list(@RequestAttribute(Caller.ATTRIBUTE) Caller caller) {
    return new ModelsResponse(
        models.models(caller.admin() ? null : caller.owner()).stream()
            .map(m -> new ModelSummary(m.name(), m.owner(), m.createdAt(), m.versions(), m.bytes()))
            .toList());
  }

  @GetMapping("/{name}")
  ModelResponse get(@RequestAttribute(Caller.ATTRIBUTE) Caller caller, @PathVariable String name) {
    ModelRow model = visible(name, caller);
    Map<String, Integer> aliases = models.aliases(name);
    Map<Integer, List<EvaluationRow>> evaluations = models.evaluations(name);
    return new ModelResponse(
        model.name(),
        model.owner(),
        model.createdAt(),
        model.bytes(),
        aliases,
        models.versions(name).stream().map(v -> response(v, evaluations, aliases)).toList());
  }

  /** {@code version}: a number, {@code latest}, or an alias. */
  @GetMapping("/{name}/versions/{version}")
  VersionResponse version(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String version) {
    visible(name, caller);
    return response(find(name, version), models.evaluations(name), models.aliases(name));
  }

  /** The version's directory as one tar archive ({@code <model>-v<N>/...}), streamed. */
  @GetMapping(path = "/{name}/versions/{version}/download", produces = "application/x-tar")
  @ApiResponse(
      responseCode = "200",
      description = "the version's files in a tar archive",
      content =
          @io.swagger.v3.oas.annotations.media.Content(
              mediaType = "application/x-tar",
              schema = @Schema(type = "string", format = "binary")))
  ResponseEntity<StreamingResponseBody> download(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String version) {
    visible(name, caller);
    VersionRow row = find(name, version);
    Path dir = Path.of(row.path()).toAbsolutePath().normalize();
    if (!dir.startsWith(finalModels) || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new ApiException(
          HttpStatus.GONE, "the files of " + name + " v" + row.version() + " are gone");
    }
    String prefix = name + "-v" + row.version() + "/";
    StreamingResponseBody body = out -> writeTar(dir, prefix, out);
    return ResponseEntity.ok()
        .contentType(MediaType.parseMediaType("application/x-tar"))
        .header(
            HttpHeaders.CONTENT_DISPOSITION,
            "attachment; filename=\"" + name + "-v" + row.version() + ".tar\"")
        .body(body);
  }

  /**
   * Evaluates the version on a registered evaluation set, as a workflow of its own on any worker's
   * CPU; the result is stored with the version (and in its model card). Asking again while one runs
   * joins it.
   */
  @PostMapping(
      path = "/{name}/versions/{version}/evaluations",
      consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(responseCode = "202", description = "started; the result appears in the version")
  @ApiResponse(responseCode = "503", description = "the workflow could not be started")
  ResponseEntity<EvaluationStarted> evaluate(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String version,
      @Valid @RequestBody EvaluateRequest request) {
    visible(name, caller);
    VersionRow row = find(name, version);
    EvalSetRow set =
        models
            .evalSet(request.evalSet())
            .orElseThrow(
                () -> ApiException.badField("evalSet", "no evaluation set " + request.evalSet()));
    String workflowId = TaskQueues.evaluationWorkflowId(name, row.version(), set.name());
    try {
      workflows
          .newUntypedWorkflowStub(
              EVALUATION_WORKFLOW,
              WorkflowOptions.newBuilder()
                  .setWorkflowId(workflowId)
                  .setTaskQueue(TaskQueues.CONTROL)
                  .setWorkflowIdConflictPolicy(
                      WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
                  .build())
          .start(
              new ModelEvaluationWorkflow.EvaluationRequest(
                  name, row.version(), row.path(), set.name(), set.path()));
    } catch (RuntimeException e) {
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE, "could not start the evaluation: " + e.getMessage());
    }
    return ResponseEntity.accepted()
        .body(new EvaluationStarted(workflowId, name, row.version(), set.name()));
  }

  static final String EVALUATION_WORKFLOW =
      POJOWorkflowInterfaceMetadata.newInstance(ModelEvaluationWorkflow.class)
          .getWorkflowType()
          .orElseThrow();

  /** Points the alias at a version, in one step: a reader sees the old version or the new. */
  @PutMapping(path = "/{name}/aliases/{alias}", consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(responseCode = "200", description = "the alias and the version it now names")
  AliasResponse setAlias(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String alias,
      @Valid @RequestBody AliasRequest request) {
    visible(name, caller);
    if (!alias.matches(ALIAS) || "latest".equals(alias)) {
      throw ApiException.badField(
          "alias", "must be 1 to 64 of a-z, 0-9, '_' and '-', starting with a letter, not latest");
    }
    if (models.version(name, request.version()).isEmpty()) {
      throw ApiException.badField(
          "version", "model " + name + " has no version " + request.version());
    }
    models.setAlias(name, alias, request.version());
    return new AliasResponse(name, alias, request.version());
  }

  @DeleteMapping("/{name}/aliases/{alias}")
  @ApiResponse(responseCode = "204", description = "the alias is gone")
  ResponseEntity<Void> deleteAlias(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String alias) {
    visible(name, caller);
    if (!models.deleteAlias(name, alias)) {
      throw ApiException.notFound("model " + name + " has no alias " + alias);
    }
    return ResponseEntity.noContent().build();
  }

  /** Deletes a version and its files; refused (409) while an alias names it. */
  @DeleteMapping("/{name}/versions/{version}")
  @ApiResponse(responseCode = "204", description = "the version and its files are gone")
  @ApiResponse(responseCode = "409", description = "an alias points at the version")
  ResponseEntity<Void> deleteVersion(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @PathVariable String name,
      @PathVariable String version) {
    visible(name, caller);
    VersionRow row = find(name, version);
    if (!models.deleteVersion(name, row.version())) {
      List<String> aliases =
          models.aliases(name).entrySet().stream()
              .filter(a -> a.getValue() == row.version())
              .map(Map.Entry::getKey)
              .toList();
      throw new ApiException(
          HttpStatus.CONFLICT,
          "cannot delete "
              + name
              + " v"
              + row.version()
              + ": aliased as "
              + String.join(", ", aliases));
    }
    deleteFiles(Path.of(row.path()));
    return ResponseEntity.noContent().build();
  }

  /**
   * Two or more versions side by side: each version, the request fields whose values differ between
   * their sessions, their eval loss on every evaluation set, and their loss curves. {@code
   * versions} are {@code model/version} (a number, {@code latest} or an alias), separated by
   * commas.
   */
  @GetMapping("/compare")
  @ApiResponse(responseCode = "200", description = "the versions side by side")
  @ApiResponse(responseCode = "404", description = "a model or version that does not exist")
  ComparisonResponse compare(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @RequestParam
          @io.swagger.v3.oas.annotations.Parameter(
              description = "model/version pairs separated by commas, e.g. tiny/1,tiny/production",
              schema = @Schema(pattern = "^[^,/]+/[^,/]+(,[^,/]+/[^,/]+)+$"))
          String versions) {
    String[] wanted = versions.split(",", -1);
    if (wanted.length < 2 || wanted.length > 10) {
      throw ApiException.badField("versions", "must name 2 to 10 model/version pairs");
    }
    List<VersionResponse> compared = new ArrayList<>();
    List<Map<String, JsonNode>> configs = new ArrayList<>();
    List<Curve> curves = new ArrayList<>();
    for (String pair : wanted) {
      String[] parts = pair.split("/", -1);
      if (parts.length != 2 || !parts[0].matches(NAME) || !parts[1].matches(REFERENCE)) {
        throw ApiException.badField("versions", "must be model/version pairs, got " + pair);
      }
      visible(parts[0], caller);
      VersionRow row = find(parts[0], parts[1]);
      compared.add(response(row, models.evaluations(parts[0]), models.aliases(parts[0])));
      configs.add(
          sessions.find(row.sessionId()).map(s -> flatten(tree(s.request()))).orElse(Map.of()));
      curves.add(
          new Curve(
              row.model(),
              row.version(),
              sessions.downsampledMetrics(row.sessionId(), 0, Long.MAX_VALUE, 200)));
    }
    Set<String> fields = new java.util.TreeSet<>();
    configs.forEach(c -> fields.addAll(c.keySet()));
    List<Difference> differences = new ArrayList<>();
    for (String field : fields) {
      List<JsonNode> values =
          configs.stream().map(c -> c.getOrDefault(field, mapper.nullNode())).toList();
      if (new LinkedHashSet<>(values).size() > 1 && !"name".equals(field)) {
        differences.add(new Difference(field, values));
      }
    }
    Map<String, Map<String, Double>> evalLoss = new TreeMap<>();
    for (VersionResponse v : compared) {
      for (Evaluation e : v.evaluations()) {
        evalLoss
            .computeIfAbsent(e.evalSet(), k -> new LinkedHashMap<>())
            .put(v.model() + "/" + v.version(), e.loss());
      }
    }
    return new ComparisonResponse(compared, differences, evalLoss, curves);
  }

  private ModelRow visible(String name, Caller caller) {
    if (!name.matches(NAME)) {
      throw ApiException.badField(
          "name",
          "must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    return models
        .model(name)
        .filter(m -> caller.canSee(m.owner()))
        .orElseThrow(() -> ApiException.notFound("model " + name + " not found"));
  }

  private VersionRow find(String name, String reference) {
    if (!reference.matches(REFERENCE)) {
      throw ApiException.badField("version", "must be a version number, latest or an alias");
    }
    return models
        .resolve(name, reference)
        .flatMap(v -> models.version(name, v))
        .orElseThrow(() -> ApiException.notFound("model " + name + " has no version " + reference));
  }

  private static VersionResponse response(
      VersionRow v, Map<Integer, List<EvaluationRow>> evaluations, Map<String, Integer> aliases) {
    return new VersionResponse(
        v.model(),
        v.version(),
        v.sessionId(),
        v.createdAt(),
        v.parameters(),
        v.configHash(),
        v.dataFingerprint(),
        v.bytes(),
        v.files(),
        v.evaluation(),
        v.evaluationError(),
        evaluations.getOrDefault(v.version(), List.of()).stream()
            .map(
                e ->
                    new Evaluation(
                        e.evalSet(), e.loss(), e.perplexity(), e.accuracy(), e.evaluatedAt()))
            .toList(),
        aliases.entrySet().stream()
            .filter(a -> a.getValue() == v.version())
            .map(Map.Entry::getKey)
            .toList());
  }

  /** Every regular file under {@code dir} (links are not followed), as tar entries. */
  private static void writeTar(Path dir, String prefix, java.io.OutputStream out)
      throws IOException {
    try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out);
        Stream<Path> walk = Files.walk(dir)) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      for (Path file :
          walk.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)).sorted().toList()) {
        TarArchiveEntry entry =
            new TarArchiveEntry(file, prefix + dir.relativize(file), LinkOption.NOFOLLOW_LINKS);
        tar.putArchiveEntry(entry);
        try (InputStream in = Files.newInputStream(file)) {
          in.transferTo(tar);
        }
        tar.closeArchiveEntry();
      }
      tar.finish();
    }
  }

  private void deleteFiles(Path dir) {
    Path normalized = dir.toAbsolutePath().normalize();
    if (!normalized.startsWith(finalModels) || !Files.exists(normalized)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(normalized)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("could not delete " + normalized, e);
    }
  }

  private JsonNode tree(String json) {
    try {
      return mapper.readTree(json);
    } catch (IOException e) {
      return mapper.createObjectNode();
    }
  }

  /** {"a.b": value} for every leaf of a JSON object. */
  private static Map<String, JsonNode> flatten(JsonNode node) {
    Map<String, JsonNode> out = new LinkedHashMap<>();
    flatten(node, "", out);
    return out;
  }

  private static void flatten(JsonNode node, String prefix, Map<String, JsonNode> out) {
    if (node.isObject()) {
      node.properties()
          .forEach(
              e ->
                  flatten(
                      e.getValue(),
                      prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey(),
                      out));
    } else if (!node.isMissingNode()) {
      out.put(prefix, node);
    }
  }
}
