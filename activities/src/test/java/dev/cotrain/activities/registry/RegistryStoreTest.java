package dev.cotrain.activities.registry;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.TestDatabase;
import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.registry.RegistryActivities.ModelVersion;
import dev.cotrain.workflows.registry.RegistryActivities.RecordEvaluation;
import dev.cotrain.workflows.registry.RegistryActivities.RegisterVersion;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Registration on real PostgreSQL and a real storage tree. */
class RegistryStoreTest {

  private final TestDatabase db = TestDatabase.get();
  @TempDir Path root;
  private StorageLayout layout;
  private RegistryStore store;
  private final String model = "m-" + UUID.randomUUID().toString().substring(0, 8);

  @BeforeEach
  void setUp() {
    layout = new StorageLayout(root).create();
    store = new RegistryStore(db.dataSource(), layout);
  }

  @Test
  void anExportBecomesTheNextVersionMovedUnderItsModelWithItsFilesAndHash() throws Exception {
    RegisterVersion first = export(session());
    RegisterVersion second = export(session());

    ModelVersion v1 = store.registerVersion(first);
    ModelVersion v2 = store.registerVersion(second);

    assertThat(v1.version()).isEqualTo(1);
    assertThat(v2.version()).isEqualTo(2);
    assertThat(Path.of(v2.path())).isEqualTo(layout.modelVersion(model, 2));
    assertThat(Path.of(v2.path()).resolve("config.json")).exists();
    assertThat(Path.of(second.exportPath())).doesNotExist();
    List<Object> row =
        db.row(
            "SELECT config_hash, bytes, files::text, parameters, data_fingerprint"
                + " FROM model_versions WHERE model = ? AND version = 2",
            model);
    assertThat((String) row.get(0)).hasSize(64);
    assertThat(((Number) row.get(1)).longValue()).isEqualTo(2 + 5);
    assertThat((String) row.get(2)).contains("config.json", "model.safetensors");
    assertThat(((Number) row.get(3)).longValue()).isEqualTo(42);
    assertThat(row.get(4)).isEqualTo("sha256:abc");
  }

  @Test
  void aRetryReturnsTheFirstRegistrationAndARetryAfterTheMoveFindsTheDirectory() throws Exception {
    RegisterVersion input = export(session());
    ModelVersion first = store.registerVersion(input);
    assertThat(store.registerVersion(input)).isEqualTo(first);

    // A crash after the move, before the commit: the export is gone, the directory is there,
    // no row; the retry stores the same number.
    RegisterVersion crashed = export(session());
    Path target = layout.modelVersion(model, 2);
    Files.createDirectories(target.getParent());
    Files.move(Path.of(crashed.exportPath()), target);
    ModelVersion retried = store.registerVersion(crashed);
    assertThat(retried.version()).isEqualTo(2);
    assertThat(Path.of(retried.path()).resolve("config.json")).exists();
  }

  @Test
  void sessionsCompletingTogetherGetDistinctNumbers() throws Exception {
    List<RegisterVersion> inputs = List.of(export(session()), export(session()), export(session()));

    List<Integer> numbers =
        inputs.stream()
            .map(i -> CompletableFuture.supplyAsync(() -> store.registerVersion(i).version()))
            .toList()
            .stream()
            .map(CompletableFuture::join)
            .sorted()
            .toList();

    assertThat(numbers).containsExactly(1, 2, 3);
  }

  @Test
  void theSessionsOwnEvaluationMarksTheVersionEvaluated() throws Exception {
    ModelVersion v = store.registerVersion(export(session()));
    store.recordEvaluation(new RecordEvaluation(model, v.version(), "validation", 2.0, 7.4, 0.3));
    store.recordEvaluation(new RecordEvaluation(model, v.version(), "validation", 1.9, 6.7, 0.3));

    assertThat(
            db.row("SELECT evaluation FROM model_versions WHERE model = ? AND version = 1", model))
        .containsExactly("EVALUATED");
    assertThat(db.row("SELECT count(*), min(loss) FROM evaluations WHERE model = ?", model))
        .containsExactly(1L, 1.9);
  }

  private String session() {
    String id = UUID.randomUUID().toString();
    db.insertSession(id);
    return id;
  }

  private RegisterVersion export(String session) throws Exception {
    Path export = Files.createDirectories(layout.finalModel(session));
    Files.writeString(export.resolve("config.json"), "{}");
    Files.writeString(export.resolve("model.safetensors"), "12345");
    Path config = Files.writeString(root.resolve(session + ".toml"), "[model]\n");
    return new RegisterVersion(
        session, model, export.toString(), config.toString(), 42L, "sha256:abc", "/s/v");
  }
}
