// pgjdbc (Debian's libpostgresql-jdbc-java) as an unmodified client for the tests: connects,
// prints the connection's warnings (the server's startup notices) on stderr, runs one statement
// and prints each row's columns joined by '|' on stdout ("updated N" for a statement without rows).
//
//   java -cp /usr/share/java/postgresql.jar tests/jdbc/JdbcClient.java URL USER PASSWORD SQL
//
// PASSWORD "-" sends none. Exit status 1 with "ERROR: <SQLState> <message>" on stderr when the
// connection or the query fails.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.Properties;

public class JdbcClient {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        if (!args[2].equals("-")) {
            props.setProperty("password", args[2]);
        }
        props.setProperty("sslmode", "disable");
        props.setProperty("connectTimeout", "120");
        props.setProperty("loginTimeout", "120");
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            for (SQLWarning w = conn.getWarnings(); w != null; w = w.getNextWarning()) {
                System.err.println("WARNING: " + w.getMessage());
            }
            try (Statement st = conn.createStatement()) {
                if (!st.execute(args[3])) {
                    System.out.println("updated " + st.getUpdateCount());
                    return;
                }
                try (ResultSet rs = st.getResultSet()) {
                    int n = rs.getMetaData().getColumnCount();
                    while (rs.next()) {
                        StringBuilder line = new StringBuilder();
                        for (int i = 1; i <= n; i++) {
                            if (i > 1) line.append('|');
                            line.append(rs.getString(i));
                        }
                        System.out.println(line);
                    }
                }
            }
        } catch (SQLException e) {
            System.err.println("ERROR: " + e.getSQLState() + " " + e.getMessage());
            System.exit(1);
        }
    }
}
