package dev.cotrain.api.session;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.validation.constraints.DecimalMax;
import jakarta.validation.constraints.DecimalMin;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.RecordComponent;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import org.junit.jupiter.api.Test;

/**
 * The request's limits and defaults against their one home, the trainer's config rules
 * (cotrain_core/config.py, exported to docs/schema/config-fields.json, which a Python test keeps
 * current), and docs/api.md against the request's defaults.
 */
class TrainerRulesTest {

  /**
   * Trainer keys the request does not set: the worker writes them, or the trainer's default holds.
   */
  private static final Set<String> NOT_IN_THE_REQUEST =
      Set.of(
          "run.session_id",
          "run.final_path",
          "run.storage_root",
          "data.vocab_size",
          "data.mlm_probability",
          "checkpoint.output_path");

  private static final ObjectMapper JSON = new ObjectMapper();

  private static JsonNode rules() throws IOException {
    return JSON.readTree(Files.readString(Path.of("../docs/schema/config-fields.json")));
  }

  @Test
  void everyTrainerKeyIsAFieldOfTheRequestOrNamedAsNotInIt() throws Exception {
    Set<String> keys = new TreeSet<>();
    rules().fieldNames().forEachRemaining(keys::add);
    Set<String> mapped = new TreeSet<>(TrainerKeys.FIELD_BY_KEY.keySet());
    mapped.remove("distributed.diloco"); // the table itself, named in a combination's message

    Set<String> expected = new TreeSet<>(mapped);
    expected.addAll(NOT_IN_THE_REQUEST);
    assertThat(keys).isEqualTo(expected);
    for (String field : TrainerKeys.FIELD_BY_KEY.values()) {
      assertThat(component(field)).as("request field %s", field).isNotNull();
    }
  }

  @Test
  void theRequestsBoundsAndChoicesAreTheTrainers() throws Exception {
    JsonNode rules = rules();
    List<String> disagreements = new ArrayList<>();
    for (Map.Entry<String, String> pair : TrainerKeys.FIELD_BY_KEY.entrySet()) {
      JsonNode rule = rules.get(pair.getKey());
      if (rule == null) {
        continue; // the diloco table
      }
      Field field = component(pair.getValue());
      String java = describe(field);
      String python = describe(rule);
      if (!java.equals(python)) {
        disagreements.add(pair.getValue() + ": " + java + " vs " + pair.getKey() + ": " + python);
      }
      if (rule.get("required").asBoolean() && field.getAnnotation(NotNull.class) == null) {
        disagreements.add(pair.getValue() + " is optional, the trainer requires " + pair.getKey());
      }
    }
    assertThat(disagreements).isEmpty();
  }

  @Test
  void theNormalizersDefaultsAreTheTrainers() throws Exception {
    JsonNode rules = rules();
    Map<String, JsonNode> filled = defaultsOfTheNormalizer();
    assertThat(filled).isNotEmpty();
    TrainerKeys.FIELD_BY_KEY.forEach(
        (key, field) -> {
          if (filled.containsKey(field)) {
            assertThat(filled.get(field).toString())
                .as(field)
                .isEqualTo(rules.get(key).get("default").toString());
          }
        });
  }

  @Test
  void theDocumentedDefaultsAreTheNormalizersOrElseTheTrainers() throws Exception {
    JsonNode rules = rules();
    Map<String, JsonNode> filled = defaultsOfTheNormalizer();
    Map<String, String> documented = documentedDefaults();
    Map<String, String> keyOf = new LinkedHashMap<>();
    TrainerKeys.FIELD_BY_KEY.forEach((key, field) -> keyOf.put(field, key));

    documented.forEach(
        (field, text) -> {
          JsonNode value =
              filled.containsKey(field)
                  ? filled.get(field)
                  : keyOf.containsKey(field) ? rules.get(keyOf.get(field)).get("default") : null;
          assertThat(value).as("where the default of %s (%s) is defined", field, text).isNotNull();
          assertThat(value.isTextual() ? '"' + value.asText() + '"' : value.toString())
              .as("documented default of %s", field)
              .isIn(text, '"' + text + '"');
        });
    // The model name's default is derived from the session's name; docs/api.md says how.
    filled.remove("modelName");
    assertThat(documented.keySet())
        .as("docs/api.md lists every default")
        .containsAll(filled.keySet());
  }

  /** The fields normalized() fills in a request that gives only what is required, with values. */
  private static Map<String, JsonNode> defaultsOfTheNormalizer() throws IOException {
    CreateSessionRequest minimal =
        JSON.readValue(
            """
            {"name": "n",
             "modelConfig": {"type": "llama2", "size": "debug", "precision": "fp32"},
             "trainingConfig": {"batchSize": 8, "learningRate": 0.003, "epochs": 1,
                                "optimizer": "adamw"},
             "distributedConfig": {"nodes": 1, "gpusPerNode": 1, "strategy": "ddp"}}
            """,
            CreateSessionRequest.class);
    Map<String, JsonNode> given = leaves(JSON.valueToTree(minimal));
    Map<String, JsonNode> filled = leaves(JSON.valueToTree(minimal.normalized()));
    filled.keySet().removeIf(field -> given.containsKey(field) || field.equals("owner"));
    return filled;
  }

  /** Field to its non-null value, by dotted path. */
  private static Map<String, JsonNode> leaves(JsonNode tree) {
    Map<String, JsonNode> out = new LinkedHashMap<>();
    collect("", tree, out);
    return out;
  }

  private static void collect(String prefix, JsonNode node, Map<String, JsonNode> out) {
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      String path = prefix + e.getKey();
      if (e.getValue().isObject()) {
        collect(path + ".", e.getValue(), out);
      } else if (!e.getValue().isNull()) {
        out.put(path, e.getValue());
      }
    }
  }

  /** Field to its default as docs/api.md's table of the create request writes it in backticks. */
  private static Map<String, String> documentedDefaults() throws IOException {
    String doc = Files.readString(Path.of("../docs/api.md"));
    String section = doc.substring(doc.indexOf("| Field | Rule | Default |"));
    section = section.substring(0, section.indexOf("\n\n"));
    Map<String, String> defaults = new LinkedHashMap<>();
    Matcher row =
        java.util.regex.Pattern.compile("(?m)^\\| `([A-Za-z.]+)` \\|.*\\| `([^`]*)` \\|$")
            .matcher(section);
    while (row.find()) {
      defaults.put(row.group(1), row.group(2));
    }
    return defaults;
  }

  /** The request's record field at a dotted JSON path, with its annotations. */
  private static Field component(String path) throws NoSuchFieldException {
    Class<?> type = CreateSessionRequest.class;
    String[] parts = path.split("\\.");
    for (int i = 0; i < parts.length - 1; i++) {
      type = componentType(type, parts[i]);
    }
    return type.getDeclaredField(parts[parts.length - 1]);
  }

  private static Class<?> componentType(Class<?> record, String name) {
    for (RecordComponent c : record.getRecordComponents()) {
      if (c.getName().equals(name)) {
        return c.getType();
      }
    }
    throw new AssertionError(record.getSimpleName() + " has no " + name);
  }

  /** Type, bounds and choices of a request field, written as for a trainer rule. */
  private static String describe(Field field) {
    Class<?> type = field.getType();
    String kind =
        type == Integer.class || type == Long.class
            ? "int"
            : type == Double.class ? "float" : type == Boolean.class ? "bool" : "str";
    StringBuilder out = new StringBuilder(kind);
    Min min = field.getAnnotation(Min.class);
    Max max = field.getAnnotation(Max.class);
    DecimalMin dmin = field.getAnnotation(DecimalMin.class);
    DecimalMax dmax = field.getAnnotation(DecimalMax.class);
    if (min != null) {
      out.append(" from ").append(min.value());
    }
    if (dmin != null) {
      out.append(dmin.inclusive() ? " from " : " above ").append(number(dmin.value()));
    }
    if (max != null) {
      out.append(" to ").append(max.value());
    }
    if (dmax != null) {
      out.append(dmax.inclusive() ? " to " : " below ").append(number(dmax.value()));
    }
    Pattern pattern = field.getAnnotation(Pattern.class);
    if (pattern != null && pattern.regexp().matches("[A-Za-z0-9|]+")) {
      out.append(" one of ").append(new TreeSet<>(List.of(pattern.regexp().split("\\|"))));
    }
    return out.toString();
  }

  /** The same for a trainer rule; an integer's exclusive bound is the next integer's inclusive. */
  private static String describe(JsonNode rule) {
    String kind = rule.get("type").asText();
    StringBuilder out = new StringBuilder(kind);
    boolean integer = kind.equals("int");
    if (rule.has("ge")) {
      out.append(" from ").append(number(rule.get("ge").asText()));
    }
    if (rule.has("gt")) {
      out.append(
          integer
              ? " from " + (rule.get("gt").asLong() + 1)
              : " above " + number(rule.get("gt").asText()));
    }
    if (rule.has("le")) {
      out.append(" to ").append(number(rule.get("le").asText()));
    }
    if (rule.has("lt")) {
      out.append(
          integer
              ? " to " + (rule.get("lt").asLong() - 1)
              : " below " + number(rule.get("lt").asText()));
    }
    if (rule.has("choices")) {
      Set<String> choices = new TreeSet<>();
      rule.get("choices").forEach(c -> choices.add(c.asText()));
      out.append(" one of ").append(choices);
    }
    return out.toString();
  }

  private static String number(String text) {
    return new BigDecimal(text).stripTrailingZeros().toPlainString();
  }
}
