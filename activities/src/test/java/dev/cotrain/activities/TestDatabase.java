package dev.cotrain.activities;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The real PostgreSQL the test command starts ({@code COTRAIN_TEST_JDBC_URL}, user and password
 * cotrain), migrated once with the project's Flyway migrations.
 */
public final class TestDatabase {

  private static TestDatabase instance;

  private final PGSimpleDataSource dataSource = new PGSimpleDataSource();

  private TestDatabase() {
    dataSource.setURL(
        System.getenv()
            .getOrDefault("COTRAIN_TEST_JDBC_URL", "jdbc:postgresql://127.0.0.1:55432/cotrain"));
    dataSource.setUser("cotrain");
    dataSource.setPassword("cotrain");
    Flyway.configure().dataSource(dataSource).load().migrate();
  }

  public static synchronized TestDatabase get() {
    if (instance == null) {
      instance = new TestDatabase();
    }
    return instance;
  }

  public DataSource dataSource() {
    return dataSource;
  }

  public void insertSession(String id) {
    update(
        "INSERT INTO sessions (id, workflow_id, name, request, status) "
            + "VALUES (?, 'session-' || ?, 'test', '{}'::jsonb, 'RUNNING')",
        UUID.fromString(id),
        id);
  }

  public List<Long> metricSteps(String id) {
    return query("SELECT step FROM metrics WHERE session_id = ? ORDER BY step", id);
  }

  public List<String> checkpointPaths(String id) {
    return query("SELECT path FROM checkpoints WHERE session_id = ? ORDER BY step", id);
  }

  public double progress(String id) {
    List<Double> values = query("SELECT progress FROM sessions WHERE id = ?", id);
    return values.get(0);
  }

  public <T> List<T> query(String sql, String id) {
    try (Connection c = dataSource.getConnection();
        PreparedStatement s = c.prepareStatement(sql)) {
      s.setObject(1, UUID.fromString(id));
      List<T> rows = new ArrayList<>();
      try (ResultSet r = s.executeQuery()) {
        while (r.next()) {
          @SuppressWarnings("unchecked")
          T value = (T) r.getObject(1);
          rows.add(value);
        }
      }
      return rows;
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The first row of {@code sql} with {@code args}, column by column. */
  public List<Object> row(String sql, Object... args) {
    try (Connection c = dataSource.getConnection();
        PreparedStatement s = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        s.setObject(i + 1, args[i]);
      }
      try (ResultSet r = s.executeQuery()) {
        List<Object> row = new ArrayList<>();
        if (r.next()) {
          for (int i = 1; i <= r.getMetaData().getColumnCount(); i++) {
            row.add(r.getObject(i));
          }
        }
        return row;
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }

  private void update(String sql, Object... args) {
    try (Connection c = dataSource.getConnection();
        PreparedStatement s = c.prepareStatement(sql)) {
      for (int i = 0; i < args.length; i++) {
        s.setObject(i + 1, args[i]);
      }
      s.executeUpdate();
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }
}
