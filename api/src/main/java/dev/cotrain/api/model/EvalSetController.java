package dev.cotrain.api.model;

import dev.cotrain.api.auth.Caller;
import dev.cotrain.api.error.ApiException;
import dev.cotrain.api.model.ModelRepository.EvalSetRow;
import dev.cotrain.api.session.RelativeDataPath;
import io.swagger.v3.oas.annotations.responses.ApiResponse;
import jakarta.validation.Valid;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * Named evaluation sets: a text file under the storage root's datasets/raw on which any version can
 * be evaluated, so that models trained on different data are compared on the same text. A set is
 * fixed by its file's hash when registered; every owner may use every set.
 */
@RestController
@RequestMapping(path = "/api/eval-sets", produces = MediaType.APPLICATION_JSON_VALUE)
class EvalSetController {

  record CreateEvalSetRequest(
      @NotBlank(message = "is required")
          @Pattern(
              regexp = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
              message =
                  "must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or"
                      + " digit")
          String name,
      @NotNull(message = "is required") @NotBlank(message = "is required") @RelativeDataPath
          String path) {}

  record EvalSet(
      String name, String path, String sha256, long bytes, String owner, Instant createdAt) {}

  record EvalSetsResponse(List<EvalSet> evalSets) {}

  private final ModelRepository models;
  private final Path raw;

  EvalSetController(ModelRepository models, @Value("${cotrain.storage-root}") Path storageRoot) {
    this.models = models;
    this.raw = storageRoot.resolve("datasets/raw");
  }

  @PostMapping(consumes = MediaType.APPLICATION_JSON_VALUE)
  @ApiResponse(responseCode = "201", description = "registered")
  @ApiResponse(responseCode = "409", description = "the name is taken")
  ResponseEntity<EvalSet> create(
      @RequestAttribute(Caller.ATTRIBUTE) Caller caller,
      @Valid @RequestBody CreateEvalSetRequest request) {
    if ("validation".equals(request.name())) {
      throw ApiException.badField("name", "validation is each session's own held-out split");
    }
    Path file = confined(request.path());
    String sha256;
    long bytes;
    try (DigestInputStream in =
        new DigestInputStream(Files.newInputStream(file), MessageDigest.getInstance("SHA-256"))) {
      bytes = in.transferTo(java.io.OutputStream.nullOutputStream());
      sha256 = HexFormat.of().formatHex(in.getMessageDigest().digest());
    } catch (IOException | NoSuchAlgorithmException e) {
      throw ApiException.badField("path", "could not be read: " + e.getMessage());
    }
    if (!models.insertEvalSet(request.name(), request.path(), sha256, bytes, caller.owner())) {
      throw new ApiException(
          HttpStatus.CONFLICT, "an evaluation set named " + request.name() + " exists");
    }
    EvalSetRow row = models.evalSet(request.name()).orElseThrow();
    return ResponseEntity.created(URI.create("/api/eval-sets/" + row.name())).body(set(row));
  }

  @GetMapping
  EvalSetsResponse list() {
    return new EvalSetsResponse(models.evalSets().stream().map(EvalSetController::set).toList());
  }

  /** The file under datasets/raw after links are followed, or a 400 naming {@code path}. */
  private Path confined(String relative) {
    try {
      Path real = raw.resolve(relative).toRealPath();
      if (!real.startsWith(raw.toRealPath()) || !Files.isRegularFile(real)) {
        throw ApiException.badField("path", "must name a file under datasets/raw");
      }
      return real;
    } catch (IOException e) {
      throw ApiException.badField("path", "no such file under datasets/raw: " + relative);
    }
  }

  private static EvalSet set(EvalSetRow row) {
    return new EvalSet(
        row.name(), row.path(), row.sha256(), row.bytes(), row.owner(), row.createdAt());
  }
}
