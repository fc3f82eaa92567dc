package dev.cotrain.api.session;

import java.util.Map;

/**
 * The trainer's config keys (docs/config.md) of the request's fields, as TomlConfigWriter writes
 * them: a message of the trainer starts with a key, and the API names the request's field instead.
 * The API's tests compare the bounds and defaults of each pair (docs/schema/config-fields.json).
 */
final class TrainerKeys {

  /** Request field (JSON path with dots) by trainer key. */
  static final Map<String, String> FIELD_BY_KEY =
      Map.ofEntries(
          Map.entry("run.name", "name"),
          Map.entry("model.type", "modelConfig.type"),
          Map.entry("model.size", "modelConfig.size"),
          Map.entry("model.precision", "modelConfig.precision"),
          Map.entry("model.compile", "modelConfig.compile"),
          Map.entry("model.activation_checkpointing", "modelConfig.activationCheckpointing"),
          Map.entry("train.batch_size", "trainingConfig.batchSize"),
          Map.entry("train.micro_batch_size", "trainingConfig.microBatchSize"),
          Map.entry("train.learning_rate", "trainingConfig.learningRate"),
          Map.entry("train.warmup", "trainingConfig.warmupSteps"),
          Map.entry("train.schedule", "trainingConfig.schedule"),
          Map.entry("train.epochs", "trainingConfig.epochs"),
          Map.entry("train.max_steps", "trainingConfig.maxSteps"),
          Map.entry("train.optimizer", "trainingConfig.optimizer"),
          Map.entry("train.weight_decay", "trainingConfig.weightDecay"),
          Map.entry("train.grad_clip", "trainingConfig.gradClip"),
          Map.entry("train.seed", "trainingConfig.seed"),
          Map.entry("distributed.nodes", "distributedConfig.nodes"),
          Map.entry("distributed.gpus_per_node", "distributedConfig.gpusPerNode"),
          Map.entry("distributed.strategy", "distributedConfig.strategy"),
          Map.entry("distributed.diloco", "distributedConfig.diloco"),
          Map.entry("distributed.diloco.inner_steps", "distributedConfig.diloco.innerSteps"),
          Map.entry("distributed.diloco.outer_lr", "distributedConfig.diloco.outerLr"),
          Map.entry("distributed.diloco.outer_momentum", "distributedConfig.diloco.outerMomentum"),
          Map.entry("distributed.diloco.nesterov", "distributedConfig.diloco.nesterov"),
          Map.entry(
              "distributed.diloco.pseudo_grad_dtype", "distributedConfig.diloco.pseudoGradDtype"),
          Map.entry("distributed.diloco.island_size", "distributedConfig.diloco.islandSize"),
          Map.entry("distributed.diloco.inner_strategy", "distributedConfig.diloco.innerStrategy"),
          Map.entry("distributed.diloco.fragments", "distributedConfig.diloco.fragments"),
          Map.entry("distributed.diloco.overlap_steps", "distributedConfig.diloco.overlapSteps"),
          Map.entry("distributed.diloco.mixing", "distributedConfig.diloco.mixing"),
          Map.entry("distributed.diloco.quantization", "distributedConfig.diloco.quantization"),
          Map.entry("distributed.diloco.inner_lr_scale", "distributedConfig.diloco.innerLrScale"),
          Map.entry("data.seq_length", "dataConfig.seqLength"),
          Map.entry("data.data_path", "dataConfig.dataPath"),
          Map.entry("data.tokenizer", "dataConfig.tokenizer"),
          Map.entry("data.validation_split", "dataConfig.validationSplit"),
          Map.entry("checkpoint.interval", "checkpointConfig.interval"),
          Map.entry("checkpoint.keep_last", "checkpointConfig.keepLast"),
          Map.entry("checkpoint.keep_best", "checkpointConfig.keepBest"),
          Map.entry("load.events_per_second", "loadConfig.eventsPerSecond"));

  /** The request's object of each trainer section, for a key no field maps to. */
  private static final Map<String, String> OBJECT_BY_SECTION =
      Map.of(
          "model", "modelConfig",
          "train", "trainingConfig",
          "distributed", "distributedConfig",
          "data", "dataConfig",
          "checkpoint", "checkpointConfig",
          "load", "loadConfig");

  private TrainerKeys() {}

  /**
   * The request field a trainer key stands for: its field, else the object of its section, else
   * {@code body} (a key the request does not set, e.g. {@code checkpoint.output_path}).
   */
  static String fieldOf(String key) {
    String field = FIELD_BY_KEY.get(key);
    if (field != null) {
      return field;
    }
    int dot = key.indexOf('.');
    return OBJECT_BY_SECTION.getOrDefault(dot < 0 ? key : key.substring(0, dot), "body");
  }
}
