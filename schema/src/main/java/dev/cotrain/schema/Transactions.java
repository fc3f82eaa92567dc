package dev.cotrain.schema;

import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;

/** One JDBC transaction: committed when the work returns, rolled back when it throws. */
public final class Transactions {

  /** Work that answers a value. */
  public interface Work<T> {
    T run(Connection c) throws SQLException;
  }

  /** Work that answers nothing. */
  public interface Statements {
    void run(Connection c) throws SQLException;
  }

  private Transactions() {}

  /** Runs {@code work} in a transaction; a database error becomes an IllegalStateException. */
  public static <T> T call(DataSource dataSource, Work<T> work) {
    try (Connection c = dataSource.getConnection()) {
      c.setAutoCommit(false);
      try {
        T result = work.run(c);
        c.commit();
        return result;
      } catch (SQLException | RuntimeException e) {
        c.rollback();
        throw e;
      }
    } catch (SQLException e) {
      throw new IllegalStateException("database write failed: " + e.getMessage(), e);
    }
  }

  public static void run(DataSource dataSource, Statements work) {
    call(
        dataSource,
        c -> {
          work.run(c);
          return null;
        });
  }
}
