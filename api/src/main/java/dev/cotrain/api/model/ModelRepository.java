package dev.cotrain.api.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;
import org.springframework.transaction.annotation.Transactional;

/** The registry's rows (schema V9): models, versions, aliases, evaluations, evaluation sets. */
@Repository
class ModelRepository {

  private static final ObjectMapper JSON = new ObjectMapper();

  record ModelRow(String name, String owner, Instant createdAt, int versions, long bytes) {}

  record FileEntry(String name, long bytes) {}

  record VersionRow(
      String model,
      int version,
      UUID sessionId,
      String path,
      String configHash,
      String dataFingerprint,
      Long parameters,
      List<FileEntry> files,
      long bytes,
      String evaluation,
      String evaluationError,
      Instant createdAt) {}

  record EvaluationRow(
      String evalSet, double loss, double perplexity, Double accuracy, Instant evaluatedAt) {}

  record EvalSetRow(
      String name, String path, String sha256, long bytes, String owner, Instant createdAt) {}

  private final JdbcClient jdbc;

  ModelRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  /** Models of {@code owner} (every model for null), by name, with their live versions' size. */
  List<ModelRow> models(String owner) {
    return jdbc.sql(
            """
            SELECT m.name, m.owner, m.created_at, count(v.version) AS versions,
                   coalesce(sum(v.bytes), 0) AS bytes
              FROM models m LEFT JOIN model_versions v ON v.model = m.name
             WHERE CAST(:owner AS text) IS NULL OR m.owner = :owner
             GROUP BY m.name ORDER BY m.name
            """)
        .param("owner", owner)
        .query(ModelRepository::model)
        .list();
  }

  Optional<ModelRow> model(String name) {
    return jdbc.sql(
            """
            SELECT m.name, m.owner, m.created_at, count(v.version) AS versions,
                   coalesce(sum(v.bytes), 0) AS bytes
              FROM models m LEFT JOIN model_versions v ON v.model = m.name
             WHERE m.name = :name GROUP BY m.name
            """)
        .param("name", name)
        .query(ModelRepository::model)
        .optional();
  }

  List<VersionRow> versions(String model) {
    return jdbc.sql(VERSION_COLUMNS + " WHERE model = :model ORDER BY version")
        .param("model", model)
        .query(ModelRepository::version)
        .list();
  }

  Optional<VersionRow> version(String model, int version) {
    return jdbc.sql(VERSION_COLUMNS + " WHERE model = :model AND version = :version")
        .param("model", model)
        .param("version", version)
        .query(ModelRepository::version)
        .optional();
  }

  /** A version's number from a number, {@code latest} or an alias; empty when there is none. */
  Optional<Integer> resolve(String model, String reference) {
    if (reference.matches("[1-9][0-9]{0,8}")) {
      return Optional.of(Integer.parseInt(reference));
    }
    if ("latest".equals(reference)) {
      return jdbc.sql("SELECT max(version) FROM model_versions WHERE model = :model")
          .param("model", model)
          .query(Integer.class)
          .optional();
    }
    return jdbc.sql("SELECT version FROM model_aliases WHERE model = :model AND alias = :alias")
        .param("model", model)
        .param("alias", reference)
        .query(Integer.class)
        .optional();
  }

  /** The evaluations of each version of {@code model}, by set name. */
  Map<Integer, List<EvaluationRow>> evaluations(String model) {
    Map<Integer, List<EvaluationRow>> byVersion = new LinkedHashMap<>();
    jdbc.sql(
            """
            SELECT version, eval_set, loss, perplexity, accuracy, evaluated_at
              FROM evaluations WHERE model = :model ORDER BY version, eval_set
            """)
        .param("model", model)
        .query(
            (org.springframework.jdbc.core.RowCallbackHandler)
                rs -> {
                  byVersion
                      .computeIfAbsent(rs.getInt("version"), v -> new java.util.ArrayList<>())
                      .add(
                          new EvaluationRow(
                              rs.getString("eval_set"),
                              rs.getDouble("loss"),
                              rs.getDouble("perplexity"),
                              rs.getObject("accuracy", Double.class),
                              rs.getTimestamp("evaluated_at").toInstant()));
                });
    return byVersion;
  }

  /** The model's aliases and the versions they name, by alias. */
  Map<String, Integer> aliases(String model) {
    Map<String, Integer> aliases = new LinkedHashMap<>();
    jdbc.sql("SELECT alias, version FROM model_aliases WHERE model = :model ORDER BY alias")
        .param("model", model)
        .query(
            (org.springframework.jdbc.core.RowCallbackHandler)
                rs -> aliases.put(rs.getString("alias"), rs.getInt("version")));
    return aliases;
  }

  /** Points {@code alias} at {@code version} in one statement: readers see the old or the new. */
  void setAlias(String model, String alias, int version) {
    jdbc.sql(
            """
            INSERT INTO model_aliases (model, alias, version) VALUES (:model, :alias, :version)
            ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = now()
            """)
        .param("model", model)
        .param("alias", alias)
        .param("version", version)
        .update();
  }

  boolean deleteAlias(String model, String alias) {
    return jdbc.sql("DELETE FROM model_aliases WHERE model = :model AND alias = :alias")
            .param("model", model)
            .param("alias", alias)
            .update()
        > 0;
  }

  /**
   * Deletes the version's row (and its evaluations); the caller removes its files. An alias that
   * points at it makes the foreign key refuse: {@code false}, and nothing is deleted.
   */
  @Transactional
  boolean deleteVersion(String model, int version) {
    try {
      jdbc.sql("DELETE FROM model_versions WHERE model = :model AND version = :version")
          .param("model", model)
          .param("version", version)
          .update();
      return true;
    } catch (DataIntegrityViolationException e) {
      return false;
    }
  }

  /** Registers an evaluation set; false when the name is taken. */
  boolean insertEvalSet(String name, String path, String sha256, long bytes, String owner) {
    return jdbc.sql(
                """
                INSERT INTO eval_sets (name, path, sha256, bytes, owner)
                VALUES (:name, :path, :sha256, :bytes, :owner) ON CONFLICT (name) DO NOTHING
                """)
            .param("name", name)
            .param("path", path)
            .param("sha256", sha256)
            .param("bytes", bytes)
            .param("owner", owner)
            .update()
        > 0;
  }

  List<EvalSetRow> evalSets() {
    return jdbc.sql("SELECT * FROM eval_sets ORDER BY name").query(ModelRepository::evalSet).list();
  }

  Optional<EvalSetRow> evalSet(String name) {
    return jdbc.sql("SELECT * FROM eval_sets WHERE name = :name")
        .param("name", name)
        .query(ModelRepository::evalSet)
        .optional();
  }

  private static final String VERSION_COLUMNS =
      """
      SELECT model, version, session_id, path, config_hash, data_fingerprint, parameters,
             files::text AS files, bytes, evaluation, evaluation_error, created_at
        FROM model_versions""";

  private static ModelRow model(ResultSet rs, int n) throws SQLException {
    return new ModelRow(
        rs.getString("name"),
        rs.getString("owner"),
        rs.getTimestamp("created_at").toInstant(),
        rs.getInt("versions"),
        rs.getLong("bytes"));
  }

  private static VersionRow version(ResultSet rs, int n) throws SQLException {
    List<FileEntry> files;
    try {
      files = JSON.readValue(rs.getString("files"), new TypeReference<List<FileEntry>>() {});
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a version's stored files do not parse", e);
    }
    return new VersionRow(
        rs.getString("model"),
        rs.getInt("version"),
        rs.getObject("session_id", UUID.class),
        rs.getString("path"),
        rs.getString("config_hash"),
        rs.getString("data_fingerprint"),
        rs.getObject("parameters", Long.class),
        files,
        rs.getLong("bytes"),
        rs.getString("evaluation"),
        rs.getString("evaluation_error"),
        rs.getTimestamp("created_at").toInstant());
  }

  private static EvalSetRow evalSet(ResultSet rs, int n) throws SQLException {
    return new EvalSetRow(
        rs.getString("name"),
        rs.getString("path"),
        rs.getString("sha256"),
        rs.getLong("bytes"),
        rs.getString("owner"),
        rs.getTimestamp("created_at").toInstant());
  }
}
