package dev.cotrain.activities.training;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;

/** Parses one stdout line of the trainer into a {@link TrainerEvent}. */
final class TrainerEventParser {

  static final int PROTOCOL_VERSION = 1;

  private final ObjectMapper json =
      new ObjectMapper()
          .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
          .configure(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES, true);

  TrainerEvent parse(String line) {
    String trimmed = line.strip();
    if (!trimmed.startsWith("{")) {
      return new TrainerEvent.LogLine(line);
    }
    try {
      JsonNode node = json.readTree(trimmed);
      if (node == null
          || !node.isObject()
          || node.path("v").asInt(-1) != PROTOCOL_VERSION
          || !node.path("event").isTextual()) {
        return new TrainerEvent.LogLine(line);
      }
      String event = node.get("event").asText();
      return switch (event) {
        case "start" -> json.treeToValue(node, TrainerEvent.Start.class);
        case "step" -> json.treeToValue(node, TrainerEvent.Step.class);
        case "checkpoint" -> json.treeToValue(node, TrainerEvent.Checkpoint.class);
        case "checkpoint_deleted" -> json.treeToValue(node, TrainerEvent.CheckpointDeleted.class);
        case "error" -> json.treeToValue(node, TrainerEvent.Error.class);
        case "done" -> json.treeToValue(node, TrainerEvent.Done.class);
        case "system" -> json.treeToValue(node, TrainerEvent.SystemSample.class);
        case "sync" -> json.treeToValue(node, TrainerEvent.Sync.class);
        default -> new TrainerEvent.Other(event, trimmed);
      };
    } catch (JsonProcessingException e) {
      // A malformed event is still the trainer's output: keep it as a log line.
      return new TrainerEvent.LogLine(line);
    }
  }
}
