package dev.cotrain.worker;

import dev.cotrain.activities.host.HostStore.Device;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

/**
 * What this worker's host offers: its NVIDIA GPUs as {@code nvidia-smi} lists them, or, on a host
 * without GPUs, the device ids declared by {@code COTRAIN_GPUS} (how tests simulate GPU hosts).
 */
final class HostInventory {

  static final List<String> NVIDIA_SMI =
      List.of("nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits");

  private HostInventory() {}

  /** Declared devices when {@code declared} is set, else the GPUs nvidia-smi reports, else none. */
  static List<Device> devices(String declared) {
    if (declared != null && !declared.isBlank()) {
      return declared(declared);
    }
    try {
      Process smi = new ProcessBuilder(NVIDIA_SMI).redirectErrorStream(true).start();
      String out = new String(smi.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!smi.waitFor(30, TimeUnit.SECONDS) || smi.exitValue() != 0) {
        return List.of();
      }
      return parseNvidiaSmi(out);
    } catch (IOException e) {
      return List.of(); // no nvidia-smi: a host without NVIDIA GPUs
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return List.of();
    }
  }

  /** {@code "0,1,3"}: distinct non-negative device ids; anything else is refused. */
  static List<Device> declared(String ids) {
    TreeSet<Integer> seen = new TreeSet<>();
    for (String part : ids.split(",")) {
      try {
        int id = Integer.parseInt(part.strip());
        if (id < 0 || !seen.add(id)) {
          throw new NumberFormatException();
        }
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            "COTRAIN_GPUS: must be distinct device ids separated by commas, e.g. 0,1; got '"
                + ids
                + "'");
      }
    }
    return seen.stream().map(id -> new Device(id, "declared", null)).toList();
  }

  /** Lines of {@code index, name, memory.total (MiB)}. */
  static List<Device> parseNvidiaSmi(String out) {
    List<Device> devices = new ArrayList<>();
    for (String line : out.strip().split("\n")) {
      String[] fields = line.split(",");
      if (fields.length < 3) {
        continue;
      }
      try {
        devices.add(
            new Device(
                Integer.parseInt(fields[0].strip()),
                fields[1].strip(),
                Long.parseLong(fields[2].strip()) * 1024 * 1024));
      } catch (NumberFormatException e) {
        // not a device line (a warning printed by the driver)
      }
    }
    return List.copyOf(devices);
  }

  /** {@code "zone=eu,disk=nvme"} as a map; a part without {@code =} is refused. */
  static Map<String, String> labels(String text) {
    Map<String, String> labels = new LinkedHashMap<>();
    if (text == null || text.isBlank()) {
      return labels;
    }
    for (String part : text.split(",")) {
      int eq = part.indexOf('=');
      if (eq <= 0) {
        throw new IllegalArgumentException(
            "COTRAIN_HOST_LABELS: must be key=value pairs separated by commas; got '" + text + "'");
      }
      labels.put(part.substring(0, eq).strip(), part.substring(eq + 1).strip());
    }
    return labels;
  }
}
