package dev.cotrain.api.session;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cotrain.schema.SessionTransitions;
import dev.cotrain.schema.Transactions;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import javax.sql.DataSource;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** The sessions, metrics and session_events tables, as the API reads and writes them. */
@Repository
public class SessionRepository {

  private static final String SELECT_SESSION =
      """
      SELECT s.id, s.workflow_id, s.name, s.description, s.request::text AS request, s.status,
             s.progress, s.latest_step, s.total_steps, s.latest_loss, s.latest_accuracy,
             s.learning_rate, m.epoch AS latest_epoch, m.tokens_per_s AS latest_tokens_per_s,
             s.final_model_path, s.error, s.attempt, s.created_at, s.updated_at, s.finished_at,
             s.priority, s.owner, q.position AS queue_position, q.reason AS queue_reason
        FROM sessions s
        LEFT JOIN metrics m ON m.session_id = s.id AND m.step = s.latest_step
        LEFT JOIN queue q ON q.session_id = s.id
      """;

  private static final ObjectMapper JSON = new ObjectMapper();

  private final JdbcClient jdbc;
  private final DataSource dataSource;

  SessionRepository(JdbcClient jdbc, DataSource dataSource) {
    this.jdbc = jdbc;
    this.dataSource = dataSource;
  }

  /** Inserts the session as QUEUED with its created event unless it exists; true if inserted. */
  boolean insertQueued(
      UUID id, String workflowId, String name, String description, String request) {
    return Transactions.call(
        dataSource,
        c -> SessionTransitions.insertQueued(c, id, workflowId, name, description, request));
  }

  /** Applies a transition decided by the API (the reconciler); see {@link SessionTransitions}. */
  boolean apply(SessionTransitions.Transition transition) {
    return Transactions.call(dataSource, c -> SessionTransitions.apply(c, transition));
  }

  /**
   * Sets the priority of a session that has not ended; answers the number of rows changed (0: it
   * has ended or does not exist).
   */
  int setPriority(UUID id, int priority) {
    return jdbc.sql(
            """
            UPDATE sessions SET priority = :priority, updated_at = now()
             WHERE id = :id AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
            """)
        .param("priority", priority)
        .param("id", id)
        .update();
  }

  /**
   * The waiting sessions in queue order, as the allocator's last pass left them; only {@code
   * owner}'s unless it is null (positions stay those in the whole queue).
   */
  List<QueueEntry> queue(String owner) {
    return jdbc.sql(
            """
            SELECT q.position, q.session_id, s.name, s.owner, s.priority, q.gpus_per_node,
                   q.since, q.reason
              FROM queue q JOIN sessions s ON s.id = q.session_id
             WHERE (CAST(:owner AS text) IS NULL OR s.owner = :owner)
             ORDER BY q.position NULLS LAST, s.created_at, q.session_id
            """)
        .param("owner", owner)
        .query(
            (rs, n) ->
                new QueueEntry(
                    rs.getObject("position", Integer.class),
                    rs.getObject("session_id", UUID.class),
                    rs.getString("name"),
                    rs.getString("owner"),
                    rs.getInt("priority"),
                    rs.getInt("gpus_per_node"),
                    instant(rs, "since"),
                    rs.getString("reason")))
        .list();
  }

  /** Sessions not in a final status, least recently updated first. */
  List<SessionRow> open(int limit) {
    return jdbc.sql(
            SELECT_SESSION
                + " WHERE s.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"
                + " ORDER BY s.updated_at LIMIT :limit")
        .param("limit", limit)
        .query(SessionRepository::session)
        .list();
  }

  /** The session's transitions after {@code afterId}, oldest first, at most {@code limit}. */
  List<SessionEventRow> events(UUID id, long afterId, int limit) {
    return jdbc.sql(
            """
            SELECT id, at, status, previous_status, cause, attempt, message
              FROM session_events
             WHERE session_id = :id AND id > :afterId
             ORDER BY id
             LIMIT :limit
            """)
        .param("id", id)
        .param("afterId", afterId)
        .param("limit", limit)
        .query(SessionRepository::event)
        .list();
  }

  /** Machine samples in the order they were taken, at most {@code limit} after {@code skip}. */
  List<SystemSampleRow> systemSamples(UUID id, int limit, long skip) {
    return jdbc.sql(
            """
            SELECT attempt, node, sample, step, cpu_percent, rss_bytes, disk_read_bytes,
                   disk_write_bytes, net_sent_bytes, net_recv_bytes, gpus::text AS gpus,
                   recorded_at
              FROM system_metrics WHERE session_id = :id
             ORDER BY recorded_at, attempt, node, sample
             LIMIT :limit OFFSET :skip
            """)
        .param("id", id)
        .param("limit", limit)
        .param("skip", skip)
        .query(
            (rs, n) ->
                new SystemSampleRow(
                    rs.getInt("attempt"),
                    rs.getInt("node"),
                    rs.getInt("sample"),
                    rs.getLong("step"),
                    rs.getObject("cpu_percent", Double.class),
                    rs.getObject("rss_bytes", Long.class),
                    rs.getObject("disk_read_bytes", Long.class),
                    rs.getObject("disk_write_bytes", Long.class),
                    rs.getObject("net_sent_bytes", Long.class),
                    rs.getObject("net_recv_bytes", Long.class),
                    gpus(rs.getString("gpus")),
                    instant(rs, "recorded_at")))
        .list();
  }

  /** DiLoCo outer steps after {@code afterOuterStep}, in order, at most {@code limit}. */
  List<SyncRow> syncs(UUID id, long afterOuterStep, int limit) {
    return jdbc.sql(
            """
            SELECT outer_step, step, participants, bytes, seconds, recorded_at
              FROM sync_events WHERE session_id = :id AND outer_step > :after
             ORDER BY outer_step LIMIT :limit
            """)
        .param("id", id)
        .param("after", afterOuterStep)
        .param("limit", limit)
        .query(
            (rs, n) ->
                new SyncRow(
                    rs.getLong("outer_step"),
                    rs.getLong("step"),
                    rs.getInt("participants"),
                    rs.getLong("bytes"),
                    rs.getDouble("seconds"),
                    instant(rs, "recorded_at")))
        .list();
  }

  private static List<SystemSampleRow.Gpu> gpus(String text) {
    if (text == null) {
      return List.of();
    }
    try {
      return List.of(JSON.readValue(text, SystemSampleRow.Gpu[].class));
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a stored sample's gpus do not parse", e);
    }
  }

  /**
   * Makes {@code owner} the owner of the model {@code name} unless it has one; true when the model
   * is (now) theirs.
   */
  boolean reserveModel(String name, String owner) {
    jdbc.sql(
            "INSERT INTO models (name, owner) VALUES (:name, :owner) ON CONFLICT (name) DO NOTHING")
        .param("name", name)
        .param("owner", owner)
        .update();
    return owner.equals(
        jdbc.sql("SELECT owner FROM models WHERE name = :name")
            .param("name", name)
            .query(String.class)
            .single());
  }

  /** The session's newest transition, if any. */
  public Optional<SessionEventRow> latestEvent(UUID id) {
    return jdbc.sql(
            """
            SELECT id, at, status, previous_status, cause, attempt, message
              FROM session_events WHERE session_id = :id ORDER BY id DESC LIMIT 1
            """)
        .param("id", id)
        .query(SessionRepository::event)
        .optional();
  }

  private static SessionEventRow event(ResultSet rs, int n) throws SQLException {
    return new SessionEventRow(
        rs.getLong("id"),
        instant(rs, "at"),
        rs.getString("status"),
        rs.getString("previous_status"),
        rs.getString("cause"),
        rs.getInt("attempt"),
        rs.getString("message"));
  }

  public Optional<SessionRow> find(UUID id) {
    return jdbc.sql(SELECT_SESSION + " WHERE s.id = :id")
        .param("id", id)
        .query(SessionRepository::session)
        .optional();
  }

  /** Newest first. */
  /** One page of a list: its rows, whether more follow, and how many match in all. */
  record Page(List<SessionRow> rows, boolean more, long total) {}

  /**
   * The sessions matching {@code query}, one page of them after its cursor, in its order; only
   * {@code scope}'s sessions unless it is null (an admin).
   */
  Page list(SessionQuery query, String scope) {
    StringBuilder where = new StringBuilder(" WHERE true");
    Map<String, Object> params = new HashMap<>();
    if (scope != null) {
      where.append(" AND s.owner = :scope");
      params.put("scope", scope);
    }
    if (query.owner() != null) {
      where.append(" AND s.owner = :owner");
      params.put("owner", query.owner());
    }
    if (!query.statuses().isEmpty()) {
      where.append(" AND s.status IN (:statuses)");
      params.put("statuses", query.statuses());
    }
    if (query.modelType() != null) {
      where.append(" AND s.request->'modelConfig'->>'type' = :modelType");
      params.put("modelType", query.modelType());
    }
    if (query.strategy() != null) {
      where.append(" AND s.request->'distributedConfig'->>'strategy' = :strategy");
      params.put("strategy", query.strategy());
    }
    if (query.nameContains() != null) {
      where.append(" AND strpos(lower(s.name), lower(:q)) > 0");
      params.put("q", query.nameContains());
    }
    long total =
        jdbc.sql("SELECT count(*) FROM sessions s" + where)
            .params(params)
            .query(Long.class)
            .single();
    SessionQuery.Sort sort = query.sort();
    if (query.after() != null) {
      String value =
          sort.column.equals("s.created_at") ? "CAST(:afterValue AS timestamptz)" : ":afterValue";
      where
          .append(" AND (")
          .append(sort.column)
          .append(", s.id) ")
          .append(sort.descending ? "<" : ">")
          .append(" (")
          .append(value)
          .append(", :afterId)");
      params.put("afterValue", query.after().value());
      params.put("afterId", query.after().id());
    }
    String direction = sort.descending ? " DESC" : " ASC";
    params.put("limit", query.limit() + 1);
    List<SessionRow> rows =
        jdbc.sql(
                SELECT_SESSION
                    + where
                    + " ORDER BY "
                    + sort.column
                    + direction
                    + ", s.id"
                    + direction
                    + " LIMIT :limit")
            .params(params)
            .query(SessionRepository::session)
            .list();
    boolean more = rows.size() > query.limit();
    return new Page(more ? rows.subList(0, query.limit()) : rows, more, total);
  }

  /**
   * The steps {@code fromStep}..{@code toStep} in at most {@code points} buckets of equal step
   * width (over the steps that exist), in step order.
   */
  public List<MetricBucket> downsampledMetrics(UUID id, long fromStep, long toStep, int points) {
    return jdbc.sql(
            """
            WITH r AS (
                SELECT * FROM metrics
                 WHERE session_id = :id AND step BETWEEN :fromStep AND :toStep),
            span AS (SELECT min(step) AS lo, max(step) AS hi FROM r)
            SELECT min(step) AS from_step, max(step) AS to_step, count(*) AS steps,
                   min(loss) AS min_loss, max(loss) AS max_loss,
                   (array_agg(loss ORDER BY step DESC))[1] AS last_loss,
                   (array_agg(accuracy ORDER BY step DESC))[1] AS last_accuracy,
                   (array_agg(learning_rate ORDER BY step DESC))[1] AS last_lr,
                   (array_agg(tokens_per_s ORDER BY step DESC))[1] AS last_tps
              FROM r, span
             GROUP BY width_bucket(step, span.lo, span.hi + 1, :points)
             ORDER BY from_step
            """)
        .param("id", id)
        .param("fromStep", fromStep)
        .param("toStep", toStep)
        .param("points", points)
        .query(
            (rs, n) ->
                new MetricBucket(
                    rs.getLong("from_step"),
                    rs.getLong("to_step"),
                    rs.getInt("steps"),
                    rs.getDouble("min_loss"),
                    rs.getDouble("max_loss"),
                    rs.getDouble("last_loss"),
                    rs.getObject("last_accuracy", Double.class),
                    rs.getObject("last_lr", Double.class),
                    rs.getObject("last_tps", Double.class)))
        .list();
  }

  /** The session's checkpoints in step order. */
  List<CheckpointsResponse.Checkpoint> checkpoints(UUID id) {
    return jdbc.sql(
            "SELECT step, path, bytes, created_at, eval_loss, deleted_at FROM checkpoints"
                + " WHERE session_id = :id ORDER BY step")
        .param("id", id)
        .query(
            (rs, n) ->
                new CheckpointsResponse.Checkpoint(
                    rs.getLong("step"),
                    rs.getString("path"),
                    rs.getLong("bytes"),
                    instant(rs, "created_at"),
                    rs.getObject("eval_loss", Double.class),
                    rs.getTimestamp("deleted_at") == null ? null : instant(rs, "deleted_at")))
        .list();
  }

  /** Steps after {@code afterStep}, in step order, at most {@code limit}. */
  public List<MetricRow> metrics(UUID id, long afterStep, int limit) {
    return jdbc.sql(
            """
            SELECT step, total_steps, epoch, loss, accuracy, learning_rate, grad_norm,
                   tokens_per_s, recorded_at
              FROM metrics
             WHERE session_id = :id AND step > :afterStep
             ORDER BY step
             LIMIT :limit
            """)
        .param("id", id)
        .param("afterStep", afterStep)
        .param("limit", limit)
        .query(
            (rs, n) ->
                new MetricRow(
                    rs.getLong("step"),
                    rs.getLong("total_steps"),
                    rs.getInt("epoch"),
                    rs.getDouble("loss"),
                    rs.getObject("accuracy", Double.class),
                    rs.getObject("learning_rate", Double.class),
                    rs.getObject("grad_norm", Double.class),
                    rs.getObject("tokens_per_s", Double.class),
                    instant(rs, "recorded_at")))
        .list();
  }

  private static SessionRow session(ResultSet rs, int n) throws SQLException {
    return new SessionRow(
        rs.getObject("id", UUID.class),
        rs.getString("workflow_id"),
        rs.getString("name"),
        rs.getString("description"),
        rs.getString("request"),
        rs.getString("status"),
        rs.getDouble("progress"),
        rs.getObject("latest_step", Long.class),
        rs.getObject("total_steps", Long.class),
        rs.getObject("latest_loss", Double.class),
        rs.getObject("latest_accuracy", Double.class),
        rs.getObject("learning_rate", Double.class),
        rs.getObject("latest_epoch", Integer.class),
        rs.getObject("latest_tokens_per_s", Double.class),
        rs.getString("final_model_path"),
        rs.getString("error"),
        rs.getInt("attempt"),
        instant(rs, "created_at"),
        instant(rs, "updated_at"),
        instant(rs, "finished_at"),
        rs.getInt("priority"),
        rs.getString("owner"),
        rs.getObject("queue_position", Integer.class),
        rs.getString("queue_reason"));
  }

  private static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime value = rs.getObject(column, OffsetDateTime.class);
    return value == null ? null : value.toInstant();
  }
}
