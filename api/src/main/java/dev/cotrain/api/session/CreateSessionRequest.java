package dev.cotrain.api.session;

import dev.cotrain.workflows.session.SessionSpec;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.Valid;
import jakarta.validation.constraints.DecimalMax;
import jakarta.validation.constraints.DecimalMin;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import jakarta.validation.constraints.Size;

/**
 * The body of {@code POST /api/sessions} (the seed's TrainingSessionConfig). Optional parts are
 * null until {@link #normalized()} fills in their defaults; the normalized request is what the
 * sessions row stores and what {@link #toSpec()} maps.
 */
record CreateSessionRequest(
    @NotBlank(message = "is required") @Size(max = 200, message = "must be at most 200 characters")
        String name,
    @Size(max = 2000, message = "must be at most 2000 characters")
        @Schema(defaultValue = DEFAULT_DESCRIPTION)
        String description,
    @NotNull(message = "is required") @Valid ModelConfig modelConfig,
    @NotNull(message = "is required") @Valid TrainingConfig trainingConfig,
    @NotNull(message = "is required") @Valid DistributedConfig distributedConfig,
    @Valid DataConfig dataConfig,
    @Valid CheckpointConfig checkpointConfig,
    @Min(value = -1000, message = "must be between -1000 and 1000")
        @Max(value = 1000, message = "must be between -1000 and 1000")
        @Schema(defaultValue = "" + DEFAULT_PRIORITY)
        Integer priority,
    @Pattern(
            regexp = "[A-Za-z0-9._@-]{1,64}",
            message = "must be 1 to 64 letters, digits, '.', '_', '@' or '-'")
        String owner,
    @Pattern(regexp = "spread|pack", message = "must be one of spread, pack")
        @Schema(defaultValue = DEFAULT_PLACEMENT)
        String placement,
    @Valid LoadConfig loadConfig,
    @Pattern(
            regexp = "[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
            message =
                "must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or"
                    + " digit")
        String modelName) {

  record ModelConfig(
      @NotNull(message = "is required")
          @Pattern(regexp = "llama2|llama3|bert", message = "must be one of llama2, llama3, bert")
          String type,
      @NotNull(message = "is required")
          @Pattern(
              regexp = "debug|125M|1B|7B|13B|70B",
              message = "must be one of debug, 125M, 1B, 7B, 13B, 70B")
          String size,
      @NotNull(message = "is required")
          @Pattern(regexp = "fp32|fp16|bf16", message = "must be one of fp32, fp16, bf16")
          String precision,
      Boolean compile,
      Boolean activationCheckpointing) {}

  record TrainingConfig(
      @NotNull(message = "is required")
          @Min(value = 1, message = "must be between 1 and 4096")
          @Max(value = 4096, message = "must be between 1 and 4096")
          Integer batchSize,
      @NotNull(message = "is required")
          @DecimalMin(value = "0", inclusive = false, message = "must be greater than 0")
          @DecimalMax(value = "10", message = "must be at most 10")
          Double learningRate,
      @NotNull(message = "is required")
          @Min(value = 1, message = "must be between 1 and 1000")
          @Max(value = 1000, message = "must be between 1 and 1000")
          Integer epochs,
      @NotNull(message = "is required")
          @Pattern(regexp = "adam|adamw|sgd", message = "must be one of adam, adamw, sgd")
          String optimizer,
      @Min(value = 0, message = "must be between 0 and 10000000")
          @Max(value = 10_000_000, message = "must be between 0 and 10000000")
          @Schema(defaultValue = "" + DEFAULT_MAX_STEPS)
          Integer maxSteps,
      @Min(value = 0, message = "must be between 0 and 2147483647")
          @Max(value = Integer.MAX_VALUE, message = "must be between 0 and 2147483647")
          @Schema(defaultValue = "" + DEFAULT_SEED)
          Long seed,
      @Min(value = 1, message = "must be between 1 and 4096")
          @Max(value = 4096, message = "must be between 1 and 4096")
          Integer microBatchSize,
      @Min(value = 0, message = "must be between 0 and 10000000")
          @Max(value = 10_000_000, message = "must be between 0 and 10000000")
          Integer warmupSteps,
      @Pattern(
              regexp = "cosine|linear|constant",
              message = "must be one of cosine, linear, constant")
          String schedule,
      @DecimalMin(value = "0", message = "must be between 0 and 10")
          @DecimalMax(value = "10", message = "must be between 0 and 10")
          Double weightDecay,
      @DecimalMin(value = "0", message = "must be between 0 and 1000")
          @DecimalMax(value = "1000", message = "must be between 0 and 1000")
          Double gradClip) {}

  @DilocoOnlyWithItsStrategy
  record DistributedConfig(
      @NotNull(message = "is required")
          @Min(value = 1, message = "must be between 1 and 64")
          @Max(value = 64, message = "must be between 1 and 64")
          Integer nodes,
      @NotNull(message = "is required")
          @Min(value = 1, message = "must be between 1 and 64")
          @Max(value = 64, message = "must be between 1 and 64")
          Integer gpusPerNode,
      @NotNull(message = "is required")
          @Pattern(regexp = "ddp|fsdp|diloco", message = "must be one of ddp, fsdp, diloco")
          String strategy,
      @Valid DilocoConfig diloco) {}

  /** DiLoCo's outer loop; allowed only with the diloco strategy. */
  record DilocoConfig(
      @Min(value = 1, message = "must be between 1 and 100000")
          @Max(value = 100_000, message = "must be between 1 and 100000")
          Integer innerSteps,
      @DecimalMin(value = "0", inclusive = false, message = "must be greater than 0")
          @DecimalMax(value = "10", message = "must be at most 10")
          Double outerLr,
      @DecimalMin(value = "0", message = "must be at least 0 and below 1")
          @DecimalMax(value = "1", inclusive = false, message = "must be at least 0 and below 1")
          Double outerMomentum,
      Boolean nesterov,
      @Pattern(regexp = "fp32|bf16|fp16", message = "must be one of fp32, bf16, fp16")
          String pseudoGradDtype,
      @Min(value = 1, message = "must be between 1 and 4096")
          @Max(value = 4096, message = "must be between 1 and 4096")
          Integer islandSize,
      @Pattern(regexp = "fsdp|ddp", message = "must be one of fsdp, ddp") String innerStrategy,
      @Min(value = 1, message = "must be between 1 and 1000")
          @Max(value = 1000, message = "must be between 1 and 1000")
          Integer fragments,
      @Min(value = 0, message = "must be between 0 and 100000")
          @Max(value = 100_000, message = "must be between 0 and 100000")
          Integer overlapSteps,
      @DecimalMin(value = "0", inclusive = false, message = "must be above 0 and at most 1")
          @DecimalMax(value = "1", message = "must be above 0 and at most 1")
          Double mixing,
      @Pattern(regexp = "none|int8|fp8", message = "must be one of none, int8, fp8")
          String quantization,
      @DecimalMin(value = "0", inclusive = false, message = "must be above 0 and at most 1")
          @DecimalMax(value = "1", message = "must be above 0 and at most 1")
          Double innerLrScale) {}

  record DataConfig(
      @Min(value = 8, message = "must be between 8 and 4096")
          @Max(value = 4096, message = "must be between 8 and 4096")
          @Schema(defaultValue = "" + DEFAULT_SEQ_LENGTH)
          Integer seqLength,
      @Size(max = 255, message = "must be at most 255 characters")
          @RelativeDataPath
          @Schema(defaultValue = DEFAULT_DATA_PATH)
          String dataPath,
      @Pattern(regexp = "byte|bpe", message = "must be one of byte, bpe") String tokenizer,
      @DecimalMin(value = "0", inclusive = false, message = "must be above 0 and at most 0.5")
          @DecimalMax(value = "0.5", message = "must be above 0 and at most 0.5")
          Double validationSplit) {}

  record CheckpointConfig(
      @Min(value = 0, message = "must be at least 0")
          @Schema(defaultValue = "" + DEFAULT_CHECKPOINT_INTERVAL)
          Integer interval,
      @Min(value = 1, message = "must be between 1 and 1000")
          @Max(value = 1000, message = "must be between 1 and 1000")
          Integer keepLast,
      Boolean keepBest) {}

  /**
   * The trainer's load-generating mode (docs/config.md): no model, a step every {@code 1 /
   * eventsPerSecond} s for {@code trainingConfig.maxSteps} steps; the rest of the request is
   * validated and passed on as for training.
   */
  record LoadConfig(
      @NotNull(message = "is required")
          @DecimalMin(value = "0", inclusive = false, message = "must be above 0 and at most 1000")
          @DecimalMax(value = "1000", message = "must be above 0 and at most 1000")
          Double eventsPerSecond) {}

  // The request's defaults: the one definition that normalized() applies and docs/api.md lists
  // (a test compares both, and the trainer's defaults of the same keys). Optional trainer settings
  // without a default here stay null and get the trainer's own default.
  static final String DEFAULT_DESCRIPTION = "";
  static final int DEFAULT_MAX_STEPS = 0;
  static final long DEFAULT_SEED = 1234;
  static final int DEFAULT_SEQ_LENGTH = 128;
  static final String DEFAULT_DATA_PATH = "";
  static final int DEFAULT_CHECKPOINT_INTERVAL = 50;
  static final int DEFAULT_PRIORITY = 0;
  static final String DEFAULT_PLACEMENT = "spread";

  /** This request on behalf of {@code owner}. */
  CreateSessionRequest ownedBy(String owner) {
    return new CreateSessionRequest(
        name,
        description,
        modelConfig,
        trainingConfig,
        distributedConfig,
        dataConfig,
        checkpointConfig,
        priority,
        owner,
        placement,
        loadConfig,
        modelName);
  }

  CreateSessionRequest withModelName(String modelName) {
    return new CreateSessionRequest(
        name,
        description,
        modelConfig,
        trainingConfig,
        distributedConfig,
        dataConfig,
        checkpointConfig,
        priority,
        owner,
        placement,
        loadConfig,
        modelName);
  }

  /** This request with every default filled in. Call only on a valid request. */
  CreateSessionRequest normalized() {
    TrainingConfig t = trainingConfig;
    DataConfig d = dataConfig == null ? new DataConfig(null, null, null, null) : dataConfig;
    CheckpointConfig c =
        checkpointConfig == null ? new CheckpointConfig(null, null, null) : checkpointConfig;
    return new CreateSessionRequest(
        name,
        description == null ? DEFAULT_DESCRIPTION : description,
        modelConfig,
        new TrainingConfig(
            t.batchSize(),
            t.learningRate(),
            t.epochs(),
            t.optimizer(),
            t.maxSteps() == null ? DEFAULT_MAX_STEPS : t.maxSteps(),
            t.seed() == null ? DEFAULT_SEED : t.seed(),
            t.microBatchSize(),
            t.warmupSteps(),
            t.schedule(),
            t.weightDecay(),
            t.gradClip()),
        distributedConfig,
        new DataConfig(
            d.seqLength() == null ? DEFAULT_SEQ_LENGTH : d.seqLength(),
            d.dataPath() == null ? DEFAULT_DATA_PATH : d.dataPath(),
            d.tokenizer(),
            d.validationSplit()),
        new CheckpointConfig(
            c.interval() == null ? DEFAULT_CHECKPOINT_INTERVAL : c.interval(),
            c.keepLast(),
            c.keepBest()),
        priority == null ? DEFAULT_PRIORITY : priority,
        owner,
        placement == null ? DEFAULT_PLACEMENT : placement,
        loadConfig,
        // A load-generating session trains no model: it names none unless asked to.
        modelName == null && loadConfig == null ? modelNameOf(name) : modelName);
  }

  /**
   * The default model name: the session's name with every run of other characters than letters,
   * digits, '.', '_' and '-' made one '-', without leading or trailing '-' and '.', cut to 100
   * characters; {@code model} when nothing is left.
   */
  static String modelNameOf(String sessionName) {
    String slug = sessionName.replaceAll("[^A-Za-z0-9._-]+", "-").replaceAll("^[-._]+|[-.]+$", "");
    slug = slug.length() > 100 ? slug.substring(0, 100).replaceAll("[-.]+$", "") : slug;
    return slug.isEmpty() ? "model" : slug;
  }

  /** The workflow's input. Call only on a {@link #normalized()} request. */
  SessionSpec toSpec() {
    DilocoConfig diloco = distributedConfig.diloco();
    return new SessionSpec(
        name,
        description,
        new SessionSpec.Model(
            modelConfig.type(),
            modelConfig.size(),
            modelConfig.precision(),
            modelConfig.compile(),
            modelConfig.activationCheckpointing()),
        new SessionSpec.Training(
            trainingConfig.batchSize(),
            trainingConfig.learningRate(),
            trainingConfig.epochs(),
            trainingConfig.optimizer(),
            trainingConfig.maxSteps(),
            trainingConfig.seed(),
            trainingConfig.microBatchSize(),
            trainingConfig.warmupSteps(),
            trainingConfig.schedule(),
            trainingConfig.weightDecay(),
            trainingConfig.gradClip()),
        new SessionSpec.Distributed(
            distributedConfig.nodes(),
            distributedConfig.gpusPerNode(),
            distributedConfig.strategy(),
            diloco == null
                ? null
                : new SessionSpec.Diloco(
                    diloco.innerSteps(),
                    diloco.outerLr(),
                    diloco.outerMomentum(),
                    diloco.nesterov(),
                    diloco.pseudoGradDtype(),
                    diloco.islandSize(),
                    diloco.innerStrategy(),
                    diloco.fragments(),
                    diloco.overlapSteps(),
                    diloco.mixing(),
                    diloco.quantization(),
                    diloco.innerLrScale())),
        new SessionSpec.Data(
            dataConfig.seqLength(),
            dataConfig.dataPath(),
            dataConfig.tokenizer(),
            dataConfig.validationSplit()),
        new SessionSpec.Checkpoint(
            checkpointConfig.interval(), checkpointConfig.keepLast(), checkpointConfig.keepBest()),
        loadConfig == null ? null : new SessionSpec.Load(loadConfig.eventsPerSecond()));
  }
}
