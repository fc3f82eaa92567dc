package dev.cotrain.workflows.session;

/**
 * What a user asked for when creating a training session, already validated by the API. It is the
 * workflow's input and the only source of the generated TOML config. Nullable fields are optional:
 * null leaves the trainer's default (docs/config.md). {@code load} is null for training.
 */
public record SessionSpec(
    String name,
    String description,
    Model model,
    Training training,
    Distributed distributed,
    Data data,
    Checkpoint checkpoint,
    Load load) {

  /**
   * {@code type} llama2 | llama3 | bert, {@code size} debug | 125M | 1B | 7B | 13B | 70B; {@code
   * compile} (torch.compile) and {@code activationCheckpointing} null for the trainer's default.
   */
  public record Model(
      String type,
      String size,
      String precision,
      Boolean compile,
      Boolean activationCheckpointing) {

    public Model(String type, String size, String precision) {
      this(type, size, precision, null, null);
    }
  }

  /**
   * {@code maxSteps} 0 means no cap: the epochs decide. {@code batchSize} is the global batch per
   * optimizer step; {@code schedule} cosine | linear | constant.
   */
  public record Training(
      int batchSize,
      double learningRate,
      int epochs,
      String optimizer,
      int maxSteps,
      long seed,
      Integer microBatchSize,
      Integer warmupSteps,
      String schedule,
      Double weightDecay,
      Double gradClip) {}

  /** {@code diloco} is set only for the diloco strategy. */
  public record Distributed(int nodes, int gpusPerNode, String strategy, Diloco diloco) {
    public int participants() {
      return nodes * gpusPerNode;
    }
  }

  /**
   * DiLoCo's outer loop; {@code pseudoGradDtype} fp32 | bf16 | fp16. {@code islandSize} ranks train
   * one replica with {@code innerStrategy} fsdp | ddp (null: one island per node); {@code
   * fragments}, {@code overlapSteps} and {@code mixing} are streaming DiLoCo's, {@code
   * quantization} none | int8 | fp8 the pseudo-gradients' wire format, {@code innerLrScale} the
   * inner learning rate's factor. Null leaves the trainer's default.
   */
  public record Diloco(
      Integer innerSteps,
      Double outerLr,
      Double outerMomentum,
      Boolean nesterov,
      String pseudoGradDtype,
      Integer islandSize,
      String innerStrategy,
      Integer fragments,
      Integer overlapSteps,
      Double mixing,
      String quantization,
      Double innerLrScale) {

    public Diloco(
        Integer innerSteps,
        Double outerLr,
        Double outerMomentum,
        Boolean nesterov,
        String pseudoGradDtype) {
      this(
          innerSteps,
          outerLr,
          outerMomentum,
          nesterov,
          pseudoGradDtype,
          null,
          null,
          null,
          null,
          null,
          null,
          null);
    }
  }

  /**
   * {@code dataPath} is empty for the built-in corpus, else a file or folder under datasets/raw;
   * {@code tokenizer} byte | bpe.
   */
  public record Data(int seqLength, String dataPath, String tokenizer, Double validationSplit) {}

  /**
   * {@code interval} in steps; 0 writes no checkpoints. {@code keepLast} newest ones are kept, and
   * with {@code keepBest} (the trainer's default) the one of the lowest eval loss as well.
   */
  public record Checkpoint(int interval, Integer keepLast, Boolean keepBest) {

    public Checkpoint(int interval, Integer keepLast) {
      this(interval, keepLast, null);
    }
  }

  /**
   * The trainer's load-generating mode (docs/config.md, {@code [load]}): no model, a step every
   * {@code 1 / eventsPerSecond} s for {@code maxSteps} steps, for benchmarks of the orchestrator.
   */
  public record Load(double eventsPerSecond) {}
}
