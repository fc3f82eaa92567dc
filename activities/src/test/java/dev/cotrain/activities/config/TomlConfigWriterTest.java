package dev.cotrain.activities.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.SessionSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tomlj.Toml;
import org.tomlj.TomlParseResult;

class TomlConfigWriterTest {

  private static final String ID = "0b7f5a8e-6d2c-4c1e-9a57-3f1d2e4c5b6a";

  @TempDir Path root;

  @Test
  void hostileSessionNameStaysOneStringAndInjectsNothing() {
    String name =
        "evil\" \nlearning_rate = 99\n[model]\ntype = \"bert\"\n'''\\u0000 [section] \"\"\"";
    TomlConfigWriter writer = new TomlConfigWriter(new StorageLayout(root));

    String text = writer.render(ID, spec(name, ""));

    TomlParseResult parsed = Toml.parse(text);
    assertThat(parsed.errors()).isEmpty();
    assertThat(parsed.getString("run.name")).isEqualTo(name);
    assertThat(parsed.getString("model.type")).isEqualTo("llama2");
    assertThat(parsed.getDouble("train.learning_rate")).isEqualTo(0.003);
    assertThat(parsed.keySet())
        .isEqualTo(Set.of("run", "model", "train", "distributed", "data", "checkpoint"));
    assertThat(parsed.getTable("run").keySet())
        .containsExactlyInAnyOrder("session_id", "name", "final_path", "storage_root");
  }

  @Test
  void writesEveryKeyOfTheTrainerSchemaWithStoragePathsUnderTheRoot() {
    TomlConfigWriter writer = new TomlConfigWriter(new StorageLayout(root));

    TomlParseResult parsed = Toml.parse(writer.render(ID, spec("tiny", "corpus/tiny.txt")));

    assertThat(parsed.dottedKeySet())
        .containsExactlyInAnyOrder(
            "run.session_id",
            "run.name",
            "run.final_path",
            "run.storage_root",
            "model.type",
            "model.size",
            "model.precision",
            "train.batch_size",
            "train.learning_rate",
            "train.epochs",
            "train.max_steps",
            "train.optimizer",
            "train.seed",
            "distributed.nodes",
            "distributed.gpus_per_node",
            "distributed.strategy",
            "data.seq_length",
            "data.data_path",
            "checkpoint.interval",
            "checkpoint.output_path");
    assertThat(parsed.getString("run.final_path"))
        .isEqualTo(root.resolve("models/final").resolve(ID).toString());
    assertThat(parsed.getString("checkpoint.output_path"))
        .isEqualTo(root.resolve("models/checkpoints").resolve(ID).toString());
    // Relative: the trainer resolves it under run.storage_root's datasets/raw and checks it there.
    assertThat(parsed.getString("data.data_path")).isEqualTo("corpus/tiny.txt");
    assertThat(parsed.getLong("train.batch_size")).isEqualTo(8L);
  }

  @Test
  void optionalSettingsAndTheDilocoTableAreWrittenOnlyWhenGiven() {
    SessionSpec base = spec("tiny", "");
    SessionSpec diloco =
        new SessionSpec(
            "tiny",
            "",
            new SessionSpec.Model("llama2", "debug", "bf16", true, false),
            new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, 4, 20, "linear", 0.1, 0.5),
            new SessionSpec.Distributed(
                1,
                2,
                "diloco",
                new SessionSpec.Diloco(
                    50, 0.7, 0.9, true, "bf16", 1, "ddp", 2, 3, 0.5, "int8", 0.25)),
            new SessionSpec.Data(128, "", "bpe", 0.1),
            new SessionSpec.Checkpoint(100, 2),
            null);
    TomlConfigWriter writer = new TomlConfigWriter(new StorageLayout(root));

    String text = writer.render(ID, diloco);

    assertThat(text).contains("\n[distributed.diloco]\ninner_steps = 50\n");
    TomlParseResult parsed = Toml.parse(text);
    assertThat(parsed.getBoolean("distributed.diloco.nesterov")).isTrue();
    assertThat(parsed.getString("distributed.diloco.pseudo_grad_dtype")).isEqualTo("bf16");
    assertThat(parsed.getLong("distributed.diloco.island_size")).isEqualTo(1L);
    assertThat(parsed.getString("distributed.diloco.inner_strategy")).isEqualTo("ddp");
    assertThat(parsed.getLong("distributed.diloco.fragments")).isEqualTo(2L);
    assertThat(parsed.getLong("distributed.diloco.overlap_steps")).isEqualTo(3L);
    assertThat(parsed.getDouble("distributed.diloco.mixing")).isEqualTo(0.5);
    assertThat(parsed.getString("distributed.diloco.quantization")).isEqualTo("int8");
    assertThat(parsed.getDouble("distributed.diloco.inner_lr_scale")).isEqualTo(0.25);
    assertThat(parsed.getBoolean("model.compile")).isTrue();
    assertThat(parsed.getBoolean("model.activation_checkpointing")).isFalse();
    assertThat(parsed.getLong("train.micro_batch_size")).isEqualTo(4L);
    assertThat(parsed.getDouble("data.validation_split")).isEqualTo(0.1);
    assertThat(parsed.getLong("checkpoint.keep_last")).isEqualTo(2L);
    assertThat(Toml.parse(writer.render(ID, base)).dottedKeySet())
        .noneMatch(
            k ->
                k.startsWith("distributed.diloco")
                    || k.startsWith("model.compile")
                    || k.equals("train.schedule")
                    || k.startsWith("load."));
  }

  @Test
  void theLoadGeneratingModeIsItsOwnTable() {
    SessionSpec base = spec("tiny", "");
    SessionSpec load =
        new SessionSpec(
            base.name(),
            base.description(),
            base.model(),
            base.training(),
            base.distributed(),
            base.data(),
            base.checkpoint(),
            new SessionSpec.Load(10.0));

    String text = new TomlConfigWriter(new StorageLayout(root)).render(ID, load);

    assertThat(text).endsWith("\n[load]\nevents_per_second = 10.0\n");
  }

  @Test
  void dataPathOutsideTheRawDatasetsIsRefusedNamingTheKey() {
    TomlConfigWriter writer = new TomlConfigWriter(new StorageLayout(root));

    for (String path : new String[] {"../../etc/passwd", "/etc/passwd", "a/../../b", "."}) {
      assertThatThrownBy(() -> writer.render(ID, spec("tiny", path)))
          .isInstanceOf(InvalidConfigException.class)
          .hasMessageStartingWith("data.data_path:");
    }
  }

  @Test
  void dataPathThatLeadsOutOfTheRawDatasetsThroughALinkIsRefused() throws Exception {
    StorageLayout layout = new StorageLayout(root).create();
    Path outside = Files.writeString(root.resolve("secret.txt"), "not for training");
    Files.createSymbolicLink(layout.rawDatasets().resolve("link.txt"), outside);
    TomlConfigWriter writer = new TomlConfigWriter(layout);

    assertThatThrownBy(() -> writer.render(ID, spec("tiny", "link.txt")))
        .isInstanceOf(InvalidConfigException.class)
        .hasMessageStartingWith("data.data_path: link.txt leads out of datasets/raw");
  }

  @Test
  void sessionIdThatIsNotAUuidCannotNameADirectory() {
    TomlConfigWriter writer = new TomlConfigWriter(new StorageLayout(root));

    assertThatThrownBy(() -> writer.render("../../x", spec("tiny", "")))
        .isInstanceOf(IllegalArgumentException.class);
  }

  static SessionSpec spec(String name, String dataPath) {
    return new SessionSpec(
        name,
        "",
        new SessionSpec.Model("llama2", "debug", "fp32"),
        new SessionSpec.Training(8, 0.003, 1, "adamw", 200, 1234, null, null, null, null, null),
        new SessionSpec.Distributed(1, 1, "ddp", null),
        new SessionSpec.Data(128, dataPath, null, null),
        new SessionSpec.Checkpoint(50, null),
        null);
  }
}
