package dev.cotrain.activities.storage;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The shared storage tree under one root (default {@code ./var/cotrain}). Directory names below the
 * root are fixed, session ids (UUIDs) or model names of {@link #MODEL_NAME}, never other
 * user-supplied text.
 */
public record StorageLayout(Path root) {

  private static final List<String> TREE =
      List.of(
          "models/checkpoints",
          "models/final",
          "models/temp",
          "datasets/raw",
          "datasets/processed",
          "datasets/splits",
          "configs/generated",
          "configs/templates",
          "logs/training",
          "logs/system");

  /** A model's name, as the registry accepts it: also a directory name. */
  public static final Pattern MODEL_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,99}");

  public StorageLayout {
    root = root.toAbsolutePath().normalize();
  }

  /** Creates every directory of the tree that is missing. */
  public StorageLayout create() {
    try {
      for (String dir : TREE) {
        Files.createDirectories(root.resolve(dir));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return this;
  }

  public Path generatedConfig(String sessionId) {
    return root.resolve("configs/generated").resolve(checked(sessionId) + ".toml");
  }

  public Path checkpoints(String sessionId) {
    return root.resolve("models/checkpoints").resolve(checked(sessionId));
  }

  public Path finalModel(String sessionId) {
    return root.resolve("models/final").resolve(checked(sessionId));
  }

  /** {@code models/final/<model>/v<version>}: a registered model version's directory. */
  public Path modelVersion(String model, int version) {
    if (model == null || !MODEL_NAME.matcher(model).matches() || version < 1) {
      throw new IllegalArgumentException("not a model version: " + model + " v" + version);
    }
    return root.resolve("models/final").resolve(model).resolve("v" + version);
  }

  public Path trainingLogs(String sessionId) {
    return root.resolve("logs/training").resolve(checked(sessionId));
  }

  public Path rawDatasets() {
    return root.resolve("datasets/raw");
  }

  /** Session ids become directory names, so only canonical UUIDs are accepted. */
  private static String checked(String sessionId) {
    if (sessionId == null || !UUID.fromString(sessionId).toString().equals(sessionId)) {
      throw new IllegalArgumentException("session id must be a lower-case UUID: " + sessionId);
    }
    return sessionId;
  }
}
