import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;

/**
 * ragstore's embedded Neo4j Community server: Bolt only, configured by a properties file that
 * ragstore_cli/embedded/neo4j.py writes. Usage: RagstoreNeo4j HOME CONFIG, the password for the
 * `neo4j` user in the environment variable RAGSTORE_NEO4J_PASSWORD (never on the command line).
 * Prints "RAGSTORE_NEO4J_READY" once Bolt serves the default database, or "RAGSTORE_NEO4J_FAILED msg"
 * and exits 1; SIGTERM shuts the databases down cleanly (data stays in HOME).
 */
public final class RagstoreNeo4j {
    private RagstoreNeo4j() {}

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 2) {
            fail("usage: RagstoreNeo4j HOME CONFIG");
        }
        String password = System.getenv("RAGSTORE_NEO4J_PASSWORD");
        if (password == null || password.isEmpty()) {
            fail("RAGSTORE_NEO4J_PASSWORD is not set");
        }
        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(Path.of(args[0]))
                    .loadPropertiesFromFile(Path.of(args[1]))
                    .build();
        } catch (RuntimeException e) {
            fail(rootMessage(e));
            return;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }, "ragstore-neo4j-shutdown"));
        try {
            setPassword(dbms.database("system"), password);
            GraphDatabaseService db = dbms.database("neo4j");
            if (!db.isAvailable(TimeUnit.MINUTES.toMillis(5))) {
                fail("the default database did not become available");
            }
        } catch (RuntimeException e) {
            fail(rootMessage(e));
        }
        System.out.println("RAGSTORE_NEO4J_READY");
        System.out.flush();
        stopped.await();
    }

    /** The `neo4j` user's password, set on every start (the system database keeps it anyway). */
    private static void setPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally("ALTER USER neo4j SET PASSWORD $p CHANGE NOT REQUIRED", Map.of("p", password));
        } catch (RuntimeException e) {
            // Neo4j refuses to "change" a password to the one it already has: nothing to do.
            if (!rootMessage(e).contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getMessage() == null ? root.getClass().getName() : root.getMessage();
        return message.replace('\n', ' ');
    }

    private static void fail(String message) {
        System.out.println("RAGSTORE_NEO4J_FAILED " + message);
        System.out.flush();
        Runtime.getRuntime().halt(1);
    }
}
