package dev.cotrain.activities.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.schema.Transactions;
import dev.cotrain.workflows.registry.RegistryActivities.ModelVersion;
import dev.cotrain.workflows.registry.RegistryActivities.RecordEvaluation;
import dev.cotrain.workflows.registry.RegistryActivities.RegisterVersion;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import javax.sql.DataSource;

/**
 * The registry's rows and directories. A version's number is taken under a lock of its model's row,
 * in the transaction that stores the version, so two sessions completing together get two numbers;
 * the directory is moved inside that transaction, and a retry after a crash between the move and
 * the commit finds the directory already moved and stores the same number.
 */
public final class RegistryStore {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final DataSource dataSource;
  private final StorageLayout layout;

  public RegistryStore(DataSource dataSource, StorageLayout layout) {
    this.dataSource = dataSource;
    this.layout = layout;
  }

  public ModelVersion registerVersion(RegisterVersion input) {
    UUID session = UUID.fromString(input.sessionId());
    return Transactions.call(
        dataSource,
        c -> {
          ModelVersion existing = versionOf(c, session);
          if (existing != null) {
            return existing;
          }
          int number = lockNextVersion(c, input.model(), session);
          Path target = layout.modelVersion(input.model(), number);
          moveExport(Path.of(input.exportPath()), target);
          List<Map<String, Object>> files = new ArrayList<>();
          long bytes = 0;
          for (Map.Entry<String, Long> file : files(target).entrySet()) {
            files.add(Map.of("name", file.getKey(), "bytes", file.getValue()));
            bytes += file.getValue();
          }
          try (PreparedStatement insert =
              c.prepareStatement(
                  """
                  INSERT INTO model_versions (model, version, session_id, path, config_hash,
                                              data_fingerprint, parameters, files, bytes,
                                              validation_path)
                  VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ?, ?)
                  """)) {
            insert.setString(1, input.model());
            insert.setInt(2, number);
            insert.setObject(3, session);
            insert.setString(4, target.toString());
            insert.setString(5, sha256(Path.of(input.configPath())));
            insert.setString(6, input.dataFingerprint());
            insert.setObject(7, input.parameters());
            insert.setString(8, json(files));
            insert.setLong(9, bytes);
            insert.setString(10, input.validationPath());
            insert.executeUpdate();
          }
          try (PreparedStatement bump =
              c.prepareStatement("UPDATE models SET next_version = ? WHERE name = ?")) {
            bump.setInt(1, number + 1);
            bump.setString(2, input.model());
            bump.executeUpdate();
          }
          return new ModelVersion(input.model(), number, target.toString());
        });
  }

  public void recordEvaluation(RecordEvaluation input) {
    Transactions.run(
        dataSource,
        c -> {
          try (PreparedStatement upsert =
              c.prepareStatement(
                  """
                  INSERT INTO evaluations (model, version, eval_set, loss, perplexity, accuracy)
                  VALUES (?, ?, ?, ?, ?, ?)
                  ON CONFLICT (model, version, eval_set) DO UPDATE SET
                      loss = excluded.loss, perplexity = excluded.perplexity,
                      accuracy = excluded.accuracy, evaluated_at = now()
                  """)) {
            upsert.setString(1, input.model());
            upsert.setInt(2, input.version());
            upsert.setString(3, input.evalSet());
            upsert.setDouble(4, input.loss());
            upsert.setDouble(5, input.perplexity());
            upsert.setObject(6, input.accuracy());
            upsert.executeUpdate();
          }
          if (VALIDATION.equals(input.evalSet())) {
            setEvaluation(c, input.model(), input.version(), "EVALUATED", null);
          }
        });
  }

  public void evaluationFailed(String model, int version, String message) {
    Transactions.run(dataSource, c -> setEvaluation(c, model, version, "FAILED", message));
  }

  private static final String VALIDATION =
      dev.cotrain.workflows.registry.RegistryActivities.VALIDATION;

  private static void setEvaluation(
      Connection c, String model, int version, String evaluation, String error)
      throws SQLException {
    try (PreparedStatement update =
        c.prepareStatement(
            "UPDATE model_versions SET evaluation = ?, evaluation_error = ?"
                + " WHERE model = ? AND version = ?")) {
      update.setString(1, evaluation);
      update.setString(2, error);
      update.setString(3, model);
      update.setInt(4, version);
      update.executeUpdate();
    }
  }

  private static ModelVersion versionOf(Connection c, UUID session) throws SQLException {
    try (PreparedStatement select =
        c.prepareStatement(
            "SELECT model, version, path FROM model_versions WHERE session_id = ?")) {
      select.setObject(1, session);
      try (ResultSet rs = select.executeQuery()) {
        return rs.next()
            ? new ModelVersion(rs.getString("model"), rs.getInt("version"), rs.getString("path"))
            : null;
      }
    }
  }

  /**
   * The model's next version number, its row locked until the transaction ends. The API creates the
   * row with the session; a session made before the registry gets it here, owned as it is.
   */
  private static int lockNextVersion(Connection c, String model, UUID session) throws SQLException {
    try (PreparedStatement insert =
        c.prepareStatement(
            "INSERT INTO models (name, owner) SELECT ?, owner FROM sessions WHERE id = ?"
                + " ON CONFLICT (name) DO NOTHING")) {
      insert.setString(1, model);
      insert.setObject(2, session);
      insert.executeUpdate();
    }
    try (PreparedStatement lock =
        c.prepareStatement("SELECT next_version FROM models WHERE name = ? FOR UPDATE")) {
      lock.setString(1, model);
      try (ResultSet rs = lock.executeQuery()) {
        if (!rs.next()) {
          throw new IllegalStateException("model " + model + " has no row and no session");
        }
        return rs.getInt(1);
      }
    }
  }

  /**
   * Moves the trainer's export into the version's directory. Already there (an earlier try moved it
   * and crashed before its commit): nothing to do. A leftover at the target without the export
   * being gone is an earlier try's partial copy from another file system: replaced.
   */
  private static void moveExport(Path export, Path target) {
    try {
      if (!Files.exists(export)) {
        if (Files.isDirectory(target)) {
          return;
        }
        throw new IllegalStateException("the trained model is missing: " + export);
      }
      Files.createDirectories(target.getParent());
      if (Files.exists(target)) {
        deleteTree(target);
      }
      Files.move(export, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("could not move " + export + " to " + target, e);
    }
  }

  /** Every file under {@code dir}, by path relative to it, with its size, in name order. */
  static Map<String, Long> files(Path dir) {
    Map<String, Long> files = new LinkedHashMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path file : walk.filter(Files::isRegularFile).sorted().toList()) {
        files.put(dir.relativize(file).toString(), Files.size(file));
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return files;
  }

  static String sha256(Path file) {
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest())) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
      return HexFormat.of().formatHex(((DigestInputStream) in).getMessageDigest().digest());
    } catch (IOException e) {
      throw new UncheckedIOException("could not hash " + file, e);
    }
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String json(Object value) {
    try {
      return JSON.writeValueAsString(value);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
