//! End to end: pathological catalog queries end with a clear error while other clients sign in
//! and query; a catalog that changed by 2,000 rows (and one restarted with them) still answers;
//! and a user of one database reads nothing of another through the `sys` tables.
//! The server runs in the test's process; tokio-postgres is the client (issue 16, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::{Duration, Instant};

use harness::inprocess::{example, rows, start, InProcess};
use harness::ADMIN_PASSWORD;
use tokio::task::JoinHandle;

/// `sql` run by `user` on a connection of its own, in a task: (success, the error's
/// `SEVERITY SQLSTATE message`).
fn background(
    server: &InProcess,
    user: &str,
    db: &str,
    password: &str,
    sql: &str,
) -> JoinHandle<(bool, String)> {
    let addr = server.sql_addr();
    let (user, db, password, sql) = (
        user.to_owned(),
        db.to_owned(),
        password.to_owned(),
        sql.to_owned(),
    );
    tokio::spawn(async move {
        let (client, _) = InProcess::connect_at(addr, &user, &db, &password)
            .await
            .unwrap();
        match client.simple_query(&sql).await {
            Ok(_) => (true, String::new()),
            Err(e) => (false, harness::inprocess::error_text(&e)),
        }
    })
}

async fn admin_count(server: &InProcess, sql: &str) -> usize {
    server.admin_sql(&[sql]).await.parse().unwrap()
}

const FOREVER: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) FROM c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_queries_end_clearly_while_another_client_signs_in_and_queries() {
    let server = start().await;
    example(&server).await;
    server
        .admin_sql(&[
            "CREATE USER carol@example_database PASSWORD = 'Carol-pass-1'",
            "ALTER GROUP analysts@example_database ADD USER carol",
        ])
        .await;
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
    let slow: Vec<_> = (0..2).map(|_| alice(FOREVER)).collect();
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
    )
    .await
        < 2
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no sessions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another client signs in and queries, and is answered while the slow ones still run.
    let started = Instant::now();
    let (ok, out, err) = server
        .sql(
            "carol@example_database",
            "example_database",
            "Carol-pass-1",
            &["SELECT 1"],
        )
        .await;
    let answered = started.elapsed();
    assert!(ok, "{err}");
    assert_eq!(out, "1");
    assert!(
        slow.iter().all(|query| !query.is_finished()),
        "the slow queries ended before the client was answered"
    );
    // The issue asks for "within a second"; measured ~0.1 s here. The bound is looser so a
    // loaded CI machine cannot turn a slow start into a red run; the assertion above (the slow
    // queries were still running) is what shows nobody waited for them.
    assert!(
        answered < Duration::from_secs(3),
        "answered in {answered:?}"
    );
    eprintln!("the well-behaved client was answered in {answered:?}");

    let [glob, blobs] = finding;
    let (ok, err) = glob.await.unwrap();
    assert!(!ok && err.contains("54000"), "{err}");
    let (ok, err) = blobs.await.unwrap();
    assert!(
        !ok && err.contains("42501") && err.contains("zeroblob"),
        "{err}"
    );
    for query in slow {
        let (ok, err) = query.await.unwrap();
        assert!(
            !ok && err.contains("57014") && err.contains("time limit"),
            "{err}"
        );
    }
    // The server is fine afterwards.
    assert_eq!(server.admin_sql(&["SELECT 2"]).await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_new_users_and_a_restart_leave_queries_working() {
    let server = start().await;
    example(&server).await;
    assert_eq!(server.admin_sql(&["SELECT 1"]).await, "1");
    for batch in 0..20 {
        let statements: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    "CREATE USER u{batch}_{i}@example_database PASSWORD = 'Bulk-pass-{batch}-{i}'"
                )
            })
            .collect();
        server.admin_sql(&[&statements.join("; ")]).await;
    }
    assert_eq!(server.admin_sql(&["SELECT 1"]).await, "1");
    assert_eq!(
        admin_count(&server, "SELECT count(*) FROM sys.users").await,
        2002
    );
    let (ok, out, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["SELECT 1"],
        )
        .await;
    assert!(ok && out == "1", "{err}");

    let server = server.restart().await;
    assert_eq!(server.admin_sql(&["SELECT 1"]).await, "1");
    assert_eq!(
        admin_count(&server, "SELECT count(*) FROM sys.users").await,
        2002
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reads_nothing_of_another_database() {
    let server = start().await;
    example(&server).await;
    server
        .admin_sql(&[
            "CREATE DATABASE other_database",
            "CREATE USER bob@other_database PASSWORD = 'Bobby-pass-1', EMAIL = 'bob@other.example'",
            "CREATE GROUP staff@other_database",
            "ALTER GROUP staff@other_database ADD USER bob",
            "GRANT USE ON DATABASE other_database TO GROUP staff@other_database",
            "GRANT ROLE database_administrator@other_database TO USER bob@other_database",
            "ALTER DATABASE other_database SET password_minimum_length = 12",
            "ALTER GROUP staff@other_database SET password_no_repeat_count = 3",
        ])
        .await;
    // bob stays signed in while alice looks.
    let bob = server
        .connect("bob@other_database", "other_database", "Bobby-pass-1")
        .await
        .unwrap();
    assert_eq!(
        admin_count(
            &server,
            "SELECT count(*) FROM sys.sessions WHERE user = 'bob@other_database'",
        )
        .await,
        1
    );

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
    let (ok, out, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &refs,
        )
        .await;
    assert!(ok, "{err}");
    assert!(!out.is_empty(), "alice reads nothing at all");
    for secret in ["other_database", "bob", "staff"] {
        assert!(!out.contains(secret), "alice reads {secret}:\n{out}");
    }
    // What alice does see: herself, her session, her group, her database.
    let (ok, out, err) = server
        .sql(
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
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "alice@example_database|alice@example.com\nalice@example_database\n\
         analysts@example_database\nanalysts|alice@example_database\nexample_database"
    );
    // The administrator sees both databases' rows.
    assert_eq!(
        server
            .admin_sql(&["SELECT count(*) FROM sys.users WHERE fqun IN ('bob@other_database', 'alice@example_database')"])
            .await,
        "2"
    );
    // bob (administrator of other_database) sees its rows, and nothing of example_database.
    assert_eq!(
        rows(&bob, "SELECT string_agg(fqun, ',') FROM sys.users").await,
        ["bob@other_database"]
    );
    assert_eq!(
        rows(
            &bob,
            "SELECT count(*) FROM sys.sessions WHERE database = 'example_database'"
        )
        .await,
        ["0"]
    );
}
