package dev.cotrain.worker;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * The worker's settings, read from {@code COTRAIN_*} environment variables (docs/deploy.md). {@code
 * declaredGpus} is {@code COTRAIN_GPUS} (null: discover with nvidia-smi).
 */
public record WorkerSettings(
    String temporalTarget,
    String namespace,
    String dbUrl,
    String dbUser,
    String dbPassword,
    Path storageRoot,
    String python,
    int trainingSlots,
    Duration heartbeatEvery,
    Duration stopGrace,
    String hostId,
    String hostAddress,
    String declaredGpus,
    Map<String, String> labels) {

  public static WorkerSettings fromEnvironment(Map<String, String> env) {
    return new WorkerSettings(
        env.getOrDefault("COTRAIN_TEMPORAL_TARGET", "127.0.0.1:7233"),
        env.getOrDefault("COTRAIN_TEMPORAL_NAMESPACE", "default"),
        env.getOrDefault("COTRAIN_DB_URL", "jdbc:postgresql://127.0.0.1:5432/cotrain"),
        env.getOrDefault("COTRAIN_DB_USER", "cotrain"),
        env.getOrDefault("COTRAIN_DB_PASSWORD", "cotrain"),
        Path.of(env.getOrDefault("COTRAIN_STORAGE_ROOT", "var/cotrain")),
        env.getOrDefault("COTRAIN_PYTHON", "python3"),
        positive("COTRAIN_TRAINING_SLOTS", env.getOrDefault("COTRAIN_TRAINING_SLOTS", "1")),
        Duration.ofSeconds(2),
        Duration.ofSeconds(30),
        hostId(env.get("COTRAIN_HOST_ID")),
        hostAddress(env.get("COTRAIN_HOST_ADDRESS")),
        env.get("COTRAIN_GPUS"),
        HostInventory.labels(env.get("COTRAIN_HOST_LABELS")));
  }

  /** {@code COTRAIN_HOST_ID}, else the host name: one id per worker, stable across restarts. */
  private static String hostId(String configured) {
    if (configured != null && !configured.isBlank()) {
      if (!configured.matches("[A-Za-z0-9._-]{1,100}")) {
        throw new IllegalArgumentException(
            "COTRAIN_HOST_ID: must be 1 to 100 letters, digits, dots, dashes or underscores; got '"
                + configured
                + "'");
      }
      return configured;
    }
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(
          "COTRAIN_HOST_ID: not set, and the host name is unknown (" + e.getMessage() + ")");
    }
  }

  /**
   * {@code COTRAIN_HOST_ADDRESS}: how the other hosts of a multi-node session reach this one (a
   * host name or IP address); null when not set, and the host id is used.
   */
  private static String hostAddress(String configured) {
    if (configured == null || configured.isBlank()) {
      return null;
    }
    if (!configured.matches("[A-Za-z0-9.:_-]{1,255}")) {
      throw new IllegalArgumentException(
          "COTRAIN_HOST_ADDRESS: must be a host name or an IP address; got '" + configured + "'");
    }
    return configured;
  }

  private static int positive(String name, String value) {
    try {
      int n = Integer.parseInt(value.strip());
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(name + ": must be a positive integer, got '" + value + "'");
  }
}
