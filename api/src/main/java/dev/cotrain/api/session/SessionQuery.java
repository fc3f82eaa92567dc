package dev.cotrain.api.session;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.api.error.ApiException;
import dev.cotrain.workflows.session.SessionStatus;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

/**
 * What {@code GET /api/sessions} asks for, validated: filters, a sort, a page size and the cursor
 * after which the page starts. Every bad parameter is a 400 naming it.
 */
record SessionQuery(
    List<String> statuses,
    String owner,
    String modelType,
    String strategy,
    String nameContains,
    Sort sort,
    int limit,
    Cursor after) {

  static final int MAX_LIMIT = 200;

  private static final String STATUS =
      "(QUEUED|STARTING|RUNNING|PAUSING|PAUSED|CANCELLING|EVALUATING|COMPLETED|FAILED|CANCELLED)";

  /** An owner's name, as tokens give it. */
  static final String OWNER_PATTERN = "^[A-Za-z0-9._@-]{1,64}$";

  /** Any text but the NUL character (PostgreSQL cannot hold it). */
  static final String TEXT_PATTERN = "^[^\\u0000]*$";

  /** What {@code status} accepts (the OpenAPI document says it): blank, or statuses and commas. */
  static final String STATUSES_PATTERN =
      "^\\s*$|^\\s*" + STATUS + "\\s*(,\\s*" + STATUS + "\\s*)*$";

  /** A sort key and direction; ties are broken by id, so pages never overlap or skip. */
  enum Sort {
    CREATED_DESC("-createdAt", "s.created_at", true),
    CREATED_ASC("createdAt", "s.created_at", false),
    NAME_ASC("name", "s.name", false),
    NAME_DESC("-name", "s.name", true);

    final String parameter;
    final String column;
    final boolean descending;

    Sort(String parameter, String column, boolean descending) {
      this.parameter = parameter;
      this.column = column;
      this.descending = descending;
    }

    /** The row's value of this sort key, as a cursor carries it. */
    String valueOf(SessionRow row) {
      return column.equals("s.name") ? row.name() : row.createdAt().toString();
    }
  }

  /** The last row of a page: its sort value and id (opaque to clients, base64url JSON). */
  record Cursor(String sort, String value, UUID id) {

    private static final ObjectMapper JSON = new ObjectMapper();

    String encode() {
      try {
        return Base64.getUrlEncoder()
            .withoutPadding()
            .encodeToString(
                JSON.writeValueAsBytes(Map.of("sort", sort, "value", value, "id", id.toString())));
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
    }

    static Cursor decode(String text, Sort sort) {
      try {
        JsonNode node =
            JSON.readTree(new String(Base64.getUrlDecoder().decode(text), StandardCharsets.UTF_8));
        Cursor cursor =
            new Cursor(
                node.path("sort").asText(),
                node.path("value").asText(),
                UUID.fromString(node.path("id").asText()));
        if (!cursor.sort().equals(sort.parameter)) {
          throw ApiException.badField("cursor", "was made for sort " + cursor.sort());
        }
        if (sort.column.equals("s.created_at")) {
          Instant.parse(cursor.value());
        }
        return cursor;
      } catch (ApiException e) {
        throw e;
      } catch (RuntimeException | java.io.IOException e) {
        throw ApiException.badField("cursor", "must be a nextCursor this API returned");
      }
    }
  }

  private static final Set<String> MODEL_TYPES = Set.of("llama2", "llama3", "bert");
  private static final Set<String> STRATEGIES = Set.of("ddp", "fsdp", "diloco");

  static SessionQuery of(
      String status,
      String owner,
      String modelType,
      String strategy,
      String q,
      String sort,
      int limit,
      String cursor) {
    List<String> statuses = new ArrayList<>();
    if (status != null && !status.isBlank()) {
      for (String s : status.split(",", -1)) {
        try {
          statuses.add(SessionStatus.valueOf(s.strip()).name());
        } catch (IllegalArgumentException e) {
          throw ApiException.badField(
              "status",
              "must be statuses separated by commas, e.g. RUNNING,QUEUED; got " + s.strip());
        }
      }
    }
    if (modelType != null && !MODEL_TYPES.contains(modelType)) {
      throw ApiException.badField("modelType", "must be one of llama2, llama3, bert");
    }
    if (strategy != null && !STRATEGIES.contains(strategy)) {
      throw ApiException.badField("strategy", "must be one of ddp, fsdp, diloco");
    }
    if (q != null && q.length() > 200) {
      throw ApiException.badField("q", "must be at most 200 characters");
    }
    if (q != null && q.indexOf('\0') >= 0) {
      throw ApiException.badField("q", "must not contain the NUL character");
    }
    if (owner != null && !owner.matches(OWNER_PATTERN)) {
      throw ApiException.badField("owner", "must be 1 to 64 letters, digits, '.', '_', '@' or '-'");
    }
    Sort order = null;
    for (Sort s : Sort.values()) {
      if (s.parameter.equals(sort)) {
        order = s;
      }
    }
    if (order == null) {
      throw ApiException.badField("sort", "must be one of -createdAt, createdAt, name, -name");
    }
    return new SessionQuery(
        List.copyOf(statuses),
        owner,
        modelType,
        strategy,
        q == null || q.isEmpty() ? null : q,
        order,
        limit,
        cursor == null || cursor.isEmpty() ? null : Cursor.decode(cursor, order));
  }
}
