//! End to end with the real binary and psql: pathological catalog queries end with a clear
//! error while other clients sign in and query; a catalog that changed by 2,000 rows (and one
//! restarted with them) still answers; and a user of one database reads nothing of another
//! through the `sys` tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{example, Server, ADMIN_PASSWORD};

/// psql in the background with `commands` (errors verbose, so they carry their SQLSTATE).
fn background(server: &Server, user: &str, db: &str, password: &str, sql: &str) -> Child {
    Command::new("psql")
        .arg(server.conninfo(user, db))
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", "\\set VERBOSITY verbose", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a background psql; answers (success, stderr).
fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn admin_count(server: &Server, sql: &str) -> usize {
    server.admin(&[sql]).parse().unwrap()
}

const FOREVER: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) FROM c";

#[test]
fn pathological_queries_end_clearly_while_another_client_signs_in_and_queries() {
    let server = Server::start();
    example(&server);
    server.admin(&[
        "CREATE USER carol@example_database PASSWORD = 'Carol-pass-1'",
        "ALTER GROUP analysts@example_database ADD USER carol",
    ]);
    // Two queries of alice's that really run (until the 5 s limit), and the two of the finding:
    // GLOB of a 16 MB string against a ~49,000-character pattern, and a recursive CTE of
    // zeroblobs.
    let alice = |sql: &str| {
        background(
            &server,
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            sql,
        )
    };
    let slow: Vec<Child> = (0..2).map(|_| alice(FOREVER)).collect();
    let pattern = format!("*{}", "a*".repeat(24_500));
    let glob = format!(
        "WITH RECURSIVE d(s, n) AS (SELECT 'a', 0 UNION ALL SELECT s || s, n + 1 FROM d \
         WHERE n < 24) SELECT count(*) FROM d WHERE n = 24 AND s GLOB '{pattern}'"
    );
    let blobs = "WITH RECURSIVE c(n, b) AS (SELECT 1, zeroblob(16000000) UNION ALL \
                 SELECT n + 1, b FROM c WHERE n < 1000) SELECT sum(length(b)) FROM c";
    let finding = [
        background(&server, "admin@system", "system", ADMIN_PASSWORD, &glob),
        background(&server, "admin@system", "system", ADMIN_PASSWORD, blobs),
    ];
    // Both slow queries are signed in (and so about to run or running).
    let started = Instant::now();
    while admin_count(
        &server,
        "SELECT count(*) FROM sys.sessions WHERE user = 'alice@example_database'",
    ) < 2
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no sessions");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));

    // Another client signs in and queries, and is answered while the slow ones still run.
    let started = Instant::now();
    let (ok, out, err) = server.psql(
        "carol@example_database",
        "example_database",
        "Carol-pass-1",
        &["SELECT 1"],
    );
    let answered = started.elapsed();
    assert!(ok, "{err}");
    assert_eq!(out, "1");
    let mut slow = slow;
    let still_running = slow.iter_mut().all(|c| c.try_wait().unwrap().is_none());
    assert!(
        still_running,
        "the slow queries ended before the client was answered"
    );
    // The issue asks for "within a second"; measured ~0.1 s here. The bound is looser so a
    // loaded CI machine cannot turn a slow psql start into a red run; the assertion above (the
    // slow queries were still running) is what shows nobody waited for them.
    assert!(
        answered < Duration::from_secs(3),
        "answered in {answered:?}"
    );
    eprintln!("the well-behaved client was answered in {answered:?}");

    let [glob, blobs] = finding;
    let (ok, err) = finish(glob);
    assert!(!ok && err.contains("54000"), "{err}");
    let (ok, err) = finish(blobs);
    assert!(
        !ok && err.contains("42501") && err.contains("zeroblob"),
        "{err}"
    );
    for child in slow {
        let (ok, err) = finish(child);
        assert!(
            !ok && err.contains("57014") && err.contains("time limit"),
            "{err}"
        );
    }
    // The server is fine afterwards.
    assert_eq!(server.admin(&["SELECT 2"]), "2");
}

#[test]
fn two_thousand_new_users_and_a_restart_leave_queries_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path().to_path_buf());
    example(&server);
    assert_eq!(server.admin(&["SELECT 1"]), "1");
    for batch in 0..20 {
        let statements: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    "CREATE USER u{batch}_{i}@example_database PASSWORD = 'Bulk-pass-{batch}-{i}'"
                )
            })
            .collect();
        server.admin(&[&statements.join("; ")]);
    }
    assert_eq!(server.admin(&["SELECT 1"]), "1");
    assert_eq!(admin_count(&server, "SELECT count(*) FROM sys.users"), 2002);
    let (ok, out, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["SELECT 1"],
    );
    assert!(ok && out == "1", "{err}");

    server.stop();
    let server = Server::start_in(dir.path().to_path_buf());
    assert_eq!(server.admin(&["SELECT 1"]), "1");
    assert_eq!(admin_count(&server, "SELECT count(*) FROM sys.users"), 2002);
}

#[test]
fn a_user_reads_nothing_of_another_database() {
    let server = Server::start();
    example(&server);
    server.admin(&[
        "CREATE DATABASE other_database",
        "CREATE USER bob@other_database PASSWORD = 'Bobby-pass-1', EMAIL = 'bob@other.example'",
        "CREATE GROUP staff@other_database",
        "ALTER GROUP staff@other_database ADD USER bob",
        "GRANT USE ON DATABASE other_database TO GROUP staff@other_database",
        "GRANT ROLE database_administrator@other_database TO USER bob@other_database",
        "ALTER DATABASE other_database SET password_minimum_length = 12",
        "ALTER GROUP staff@other_database SET password_no_repeat_count = 3",
    ]);
    // bob stays signed in (psql waiting on its input) while alice looks.
    let mut bob = Command::new("psql")
        .arg(server.conninfo("bob@other_database", "other_database"))
        .args(["-X", "-A", "-t"])
        .env("PGPASSWORD", "Bobby-pass-1")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while admin_count(
        &server,
        "SELECT count(*) FROM sys.sessions WHERE user = 'bob@other_database'",
    ) == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "bob never signed in"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let tables = [
        "users",
        "sessions",
        "privileges",
        "groups",
        "group_members",
        "databases",
        "roles",
        "role_members",
        "password_settings",
        "oidc_integrations",
        "connectivity_pools",
    ];
    let queries: Vec<String> = tables
        .iter()
        .map(|t| format!("SELECT * FROM sys.{t}"))
        .collect();
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    let (ok, out, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &refs,
    );
    assert!(ok, "{err}");
    for secret in ["other_database", "bob", "staff"] {
        assert!(!out.contains(secret), "alice reads {secret}:\n{out}");
    }
    // What alice does see: herself, her session, her group, her database.
    let (ok, out, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &[
            "SELECT fqun, email FROM sys.users",
            "SELECT user FROM sys.sessions",
            "SELECT fqgn FROM sys.groups",
            "SELECT group_name, user_name FROM sys.group_members",
            "SELECT name FROM sys.databases",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "alice@example_database|alice@example.com\nalice@example_database\n\
         analysts@example_database\nanalysts|alice@example_database\nexample_database"
    );
    // The administrator sees both databases' rows.
    assert_eq!(
        server.admin(&["SELECT count(*) FROM sys.users WHERE fqun IN ('bob@other_database', 'alice@example_database')"]),
        "2"
    );
    // bob (administrator of other_database) sees its rows, and nothing of example_database.
    bob.stdin
        .as_mut()
        .unwrap()
        .write_all(b"SELECT string_agg(fqun, ',') FROM sys.users;\nSELECT count(*) FROM sys.sessions WHERE database = 'example_database';\n\\q\n")
        .unwrap();
    let out = bob.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), "bob@other_database\n0", "{text}");
}
