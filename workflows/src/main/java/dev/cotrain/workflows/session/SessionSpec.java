package dev.cotrain.workflows.session;

/**
 * What a user asked for when creating a training session, already validated by the API. It is the
 * workflow's input and the only source of the generated TOML config.
 */
public record SessionSpec(
    String name,
    String description,
    Model model,
    Training training,
    Distributed distributed,
    Data data,
    Checkpoint checkpoint) {

  /** {@code type} llama2 | llama3 | bert, {@code size} debug | 125M | 7B | 13B | 70B. */
  public record Model(String type, String size, String precision) {}

  /** {@code maxSteps} 0 means no cap: the epochs decide. */
  public record Training(
      int batchSize, double learningRate, int epochs, String optimizer, int maxSteps, long seed) {}

  public record Distributed(int nodes, int gpusPerNode, String strategy) {
    public int participants() {
      return nodes * gpusPerNode;
    }
  }

  /** {@code dataPath} is empty for the built-in corpus, else a file under datasets/raw. */
  public record Data(int seqLength, String dataPath) {}

  /** {@code interval} in steps; 0 writes no checkpoints. */
  public record Checkpoint(int interval) {}
}
