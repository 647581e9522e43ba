//! Upstream sessions outlive their clients only safely (issue 12, items 2 and 5, and its bad
//! inputs): an idle upstream session goes back to the pool only for the same person and only
//! reset (`DISCARD ALL`, an open transaction rolled back); `SET ROLE`, `SET SESSION
//! AUTHORIZATION` and `set_config('role', …)` never reach another person's privileges; a client
//! that vanishes mid-COPY frees its upstream connection (the test counts upstream backends);
//! idle sessions close after `upstream_pool_idle_seconds` and when their person is dropped; an
//! upstream that restarts gives a clean error and the next sign-in works.
//! The server runs in the test's process with tokio-postgres as the client (issue 16, item 6);
//! psycopg 3 still drives the extended protocol's pipeline (several statements under one Sync,
//! which tokio-postgres never sends). The pool's counters come from the process's metrics
//! recorder, which these tests share and so take turns with (see [`Counted`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use futures::SinkExt;
use harness::inprocess::{error_text, rows, settings_in, start_with, InProcess};
use harness::postgres::{bound_in_process, upstream, Postgres, ADMIN_PASS};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const ALICE: &str = "Alice-pass-123";

/// Runs blocking work (psql against the upstream, stopping it, a Python client) without
/// holding up the async workers that serve the in-process server.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `psql` against the upstream itself, off the async workers.
fn upstream_sql(pg: &Postgres, database: &str, sql: &str) -> String {
    blocking(|| pg.sql(database, &[sql]))
}

/// [`bound_in_process`] with `upstream_pool_idle_seconds` set: a server with `sales` bound to
/// `pg`, and alice@sales in analysts@sales, which may USE it.
async fn bound_idle_seconds(pg: &Postgres, idle_seconds: u64) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.upstream_pool_idle_seconds = idle_seconds;
    let server = start_with(dir, settings).await.unwrap();
    let good = pg.url("portcullis_admin", ADMIN_PASS, "sales");
    server
        .admin_sql(&[
            &format!("CREATE DATABASE sales UPSTREAM '{good}'"),
            "CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'",
            "CREATE GROUP analysts@sales",
            "ALTER GROUP analysts@sales ADD USER alice@sales",
            "GRANT USE ON DATABASE sales TO GROUP analysts@sales",
        ])
        .await;
    server
}

/// alice@sales runs `commands` as `psql -c … -c …` would (the rows only).
async fn alice(server: &InProcess, commands: &[&str]) -> (bool, String, String) {
    server.sql("alice@sales", "sales", ALICE, commands).await
}

/// `notes`, readable and writable by analysts@sales (upstream).
fn with_notes(pg: &Postgres) {
    blocking(|| {
        pg.sql(
            "sales",
            &[
                "CREATE TABLE notes (id int)",
                "GRANT SELECT, INSERT ON notes TO \"analysts@sales\"",
            ],
        )
    });
}

/// Waits (up to 10 s) until `role` has no upstream backend left; answers how many it has.
fn backends_gone(pg: &Postgres, role: &str) -> String {
    blocking(|| {
        pg.wait_for(
            "sales",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'"),
            "0",
        )
    })
}

/// Waits until `role`'s only upstream session is idle in the pool (its last query the reset).
fn pooled(pg: &Postgres, role: &str) {
    let q = format!("SELECT string_agg(query, ',') FROM pg_stat_activity WHERE usename = '{role}'");
    assert_eq!(
        blocking(|| pg.wait_for("sales", &q, "DISCARD ALL")),
        "DISCARD ALL"
    );
}

/// The pool's counters (`portcullis_upstream_pool_total{result=…}`), as this test's server
/// counted them. A process has one metrics recorder and the first to install it keeps it: the
/// servers these tests start in this process would share it and only the first would answer
/// `/metrics`. So the tests install it themselves before any server starts, take turns (one
/// test at a time holds the turn for all it does, so what is counted is its own) and count
/// from where their turn began.
struct Counted {
    _turn: tokio::sync::MutexGuard<'static, ()>,
    at_start: serde_json::Value,
}

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static RECORDER: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();

/// Everything the process's recorder holds, parsed by prometheus_client as `/metrics` is.
fn samples() -> serde_json::Value {
    let text = RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("the tests install the metrics recorder before any server starts")
        })
        .render();
    blocking(|| harness::parse_metrics(&text))
}

fn value(samples: &serde_json::Value, name: &str) -> f64 {
    samples
        .get(name)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

impl Counted {
    /// Waits for this test's turn (before its server starts).
    async fn start() -> Self {
        let turn = TURN.lock().await;
        Self {
            _turn: turn,
            at_start: samples(),
        }
    }

    /// `name`'s count since the turn began.
    fn metric(&self, name: &str) -> f64 {
        value(&samples(), name) - value(&self.at_start, name)
    }
}

/// Runs a psycopg 3 `script` (the tests' virtual environment, [`harness::python`]) off the
/// async workers, its one argument a libpq connection string for `user` on `db` at the
/// in-process server; answers (stdout, stderr).
fn psycopg(
    server: &InProcess,
    (user, db, password): (&str, &str, &str),
    script: &str,
) -> (String, String) {
    let out = blocking(|| {
        std::process::Command::new(harness::python())
            .args(["-c", script])
            .arg(format!(
                "host=127.0.0.1 port={} user={user} dbname={db} password={password} \
                 sslmode=disable connect_timeout=10",
                server.sql_addr().port()
            ))
            .output()
            .unwrap()
    });
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_sessions_go_back_only_to_their_person_and_reset() {
    let counted = Counted::start().await;
    let pg = blocking(upstream);
    let server = bound_in_process(&pg).await;
    with_notes(&pg);
    server
        .admin_sql(&[
            "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'",
            "GRANT USE ON DATABASE sales TO USER bob@sales",
        ])
        .await;
    // A session that leaves everything behind it a session can: a temporary table, a setting,
    // a prepared statement, an advisory lock, a LISTEN, another role.
    let (ok, out, err) = alice(
        &server,
        &[
            "SELECT pg_backend_pid()",
            "CREATE TEMP TABLE scratch (a int)",
            "SET work_mem = '7MB'",
            "PREPARE p AS SELECT 1",
            "SELECT pg_advisory_lock(42)",
            "LISTEN news",
            "SET ROLE \"analysts@sales\"",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let pid = out.lines().next().unwrap().to_owned();
    pooled(&pg, "alice@sales");
    let look = "SELECT pg_backend_pid(), current_user, current_setting('work_mem'), \
        (SELECT count(*) FROM pg_prepared_statements), \
        (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'), \
        to_regclass('pg_temp.scratch') IS NULL, \
        (SELECT count(*) FROM pg_listening_channels())";
    let (ok, out, err) = alice(&server, &[look]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{pid}|alice@sales|4MB|0|0|t|0"),
        "the same upstream session, reset"
    );
    assert!(counted.metric("portcullis_upstream_pool_total{result=reused}") >= 1.0);
    // A client that leaves in the middle of a transaction: rolled back, then kept.
    pooled(&pg, "alice@sales");
    let (ok, _, err) = alice(&server, &["BEGIN", "INSERT INTO notes VALUES (1)"]).await;
    assert!(ok, "{err}");
    pooled(&pg, "alice@sales");
    let (ok, out, err) = alice(&server, &["SELECT pg_backend_pid(), count(*) FROM notes"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{pid}|0"),
        "the open transaction was rolled back"
    );
    // Another person never gets alice's session.
    pooled(&pg, "alice@sales");
    let (ok, out, err) = server
        .sql(
            "bob@sales",
            "sales",
            "Bob-pass-12345",
            &["SELECT pg_backend_pid(), current_user"],
        )
        .await;
    assert!(ok, "{err}");
    assert!(!out.starts_with(&format!("{pid}|")), "{out}");
    assert!(out.ends_with("|bob@sales"), "{out}");
    // Nobody reaches another role's privileges from inside their session.
    for (sql, needle) in [
        ("SET ROLE \"bob@sales\"", "permission denied to set role"),
        (
            "SET SESSION AUTHORIZATION \"bob@sales\"",
            "permission denied to set session authorization",
        ),
        (
            "SELECT set_config('role', 'bob@sales', false)",
            "permission denied to set role",
        ),
        ("SET ROLE portcullis_admin", "permission denied to set role"),
        ("SET ROLE postgres", "permission denied to set role"),
        (
            "SELECT set_config('session_authorization', 'postgres', false)",
            "permission denied to set session authorization",
        ),
    ] {
        let (ok, _, err) = alice(&server, &[sql]).await;
        assert!(!ok, "{sql} was allowed");
        assert!(err.contains(needle), "{sql}: {err}");
    }
    // (psql printed the command tags SET and RESET between the rows; `ok` says both ran.)
    let (ok, out, err) = alice(
        &server,
        &[
            "SET ROLE \"analysts@sales\"",
            "SELECT current_user",
            "RESET ROLE",
            "SELECT current_user, session_user",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "analysts@sales\nalice@sales|alice@sales");
    // Dropping the person closes their idle upstream sessions (and drops their role).
    pooled(&pg, "alice@sales");
    server.admin_sql(&["DROP USER alice@sales"]).await;
    assert_eq!(backends_gone(&pg, "alice@sales"), "0");
    assert_eq!(
        upstream_sql(
            &pg,
            "sales",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'alice@sales'"
        ),
        "0"
    );
}

/// carol@sales signed in, in the middle of `COPY notes FROM STDIN` (tokio-postgres's: the
/// extended protocol), `data` sent: her client, its connection task and the open COPY.
async fn carol_copies(
    server: &InProcess,
    data: Vec<u8>,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    std::pin::Pin<Box<tokio_postgres::CopyInSink<std::io::Cursor<Vec<u8>>>>>,
) {
    let (copier, connection) =
        InProcess::connect_at(server.sql_addr(), "carol@sales", "sales", "Carol-pass-123")
            .await
            .unwrap();
    let mut sink = Box::pin(
        copier
            .copy_in::<_, std::io::Cursor<Vec<u8>>>("COPY notes FROM STDIN")
            .await
            .unwrap(),
    );
    sink.send(std::io::Cursor::new(data)).await.unwrap();
    (copier, connection, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sessions_are_freed_when_clients_vanish_or_sit_idle() {
    let counted = Counted::start().await;
    let pg = blocking(upstream);
    let server = bound_idle_seconds(&pg, 2).await;
    with_notes(&pg);
    server
        .admin_sql(&[
            "CREATE USER \"carol@sales\" PASSWORD = 'Carol-pass-123'",
            "ALTER GROUP analysts@sales ADD USER carol@sales",
        ])
        .await;
    // A client that vanishes in the middle of a COPY: its upstream connection is closed, not
    // kept, and nothing it sent is committed. (tokio-postgres's COPY is the extended
    // protocol's — Bind, Execute, Sync, then the data — where psql's was a simple Query.)
    let lines: String = (0..1000).map(|i| format!("{i}\n")).collect();
    let (copier, connection, sink) = carol_copies(&server, lines.into_bytes()).await;
    let copying = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'carol@sales' \
        AND query = 'COPY notes FROM STDIN' AND state = 'active'";
    assert_eq!(blocking(|| pg.wait_for("sales", copying, "1")), "1");
    // The connection goes first, its socket closed with the COPY open: dropping the sink while
    // it ran would send CopyFail, a clean end rather than a client that vanished.
    connection.abort();
    assert!(connection.await.unwrap_err().is_cancelled());
    drop(sink);
    drop(copier);
    assert_eq!(
        backends_gone(&pg, "carol@sales"),
        "0",
        "the upstream connection outlived its client"
    );
    assert_eq!(
        counted.metric("portcullis_upstream_pool_total{result=not_at_rest}"),
        1.0
    );
    assert_eq!(
        upstream_sql(&pg, "sales", "SELECT count(*) FROM notes"),
        "0"
    );
    // A COPY through the extended protocol (tokio-postgres: Bind, Execute, Sync, the data,
    // CopyDone, Sync) that ends cleanly: whether PostgreSQL answers the first Sync depends on
    // whether an error ended copy-in mode before it, which the relay cannot tell. The session
    // works on, and is closed when its client leaves, never kept.
    let (copier, connection, mut sink) = carol_copies(&server, b"7\n".to_vec()).await;
    assert_eq!(sink.as_mut().finish().await.unwrap(), 1);
    let counted_rows = copier
        .query_one("SELECT count(*)::int4 FROM notes", &[])
        .await
        .unwrap();
    assert_eq!(counted_rows.get::<_, i32>(0), 1);
    drop(copier);
    connection.await.unwrap().unwrap();
    assert_eq!(
        backends_gone(&pg, "carol@sales"),
        "0",
        "the session of an extended-protocol COPY was kept"
    );
    assert_eq!(
        counted.metric("portcullis_upstream_pool_total{result=not_at_rest}"),
        2.0
    );
    // An idle session is closed after upstream_pool_idle_seconds.
    let (ok, _, err) = server
        .sql("carol@sales", "sales", "Carol-pass-123", &["SELECT 1"])
        .await;
    assert!(ok, "{err}");
    pooled(&pg, "carol@sales");
    assert_eq!(
        backends_gone(&pg, "carol@sales"),
        "0",
        "the idle session was not closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_restart_gives_a_clean_error_and_the_next_sign_in_works() {
    let counted = Counted::start().await;
    let pg = blocking(upstream);
    let server = bound_in_process(&pg).await;
    with_notes(&pg);
    // The upstream restarts under a connected client and an idle pooled session.
    let (live, connection) =
        InProcess::connect_at(server.sql_addr(), "alice@sales", "sales", ALICE)
            .await
            .unwrap();
    assert_eq!(rows(&live, "SELECT count(*) FROM notes").await, ["0"]);
    let (ok, _, err) = alice(&server, &["SELECT 1"]).await;
    assert!(ok, "{err}");
    let idle = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice@sales' \
        AND query = 'DISCARD ALL'";
    assert_eq!(blocking(|| pg.wait_for("sales", idle, "1")), "1");
    blocking(|| {
        pg.stop();
        pg.start_again();
    });
    // What the client is told, as psql printed it: the error of its next statement, or, if
    // the server told it while it sat idle (which ends tokio-postgres's connection), how its
    // connection ended.
    let out = match live.simple_query("SELECT count(*) FROM notes").await {
        Ok(m) => panic!("the statement ran over an upstream that restarted: {m:?}"),
        Err(e) if e.as_db_error().is_some() => error_text(&e),
        Err(e) => {
            let ended = tokio::time::timeout(std::time::Duration::from_secs(10), connection)
                .await
                .expect("the client's connection was not ended")
                .unwrap();
            match ended {
                Err(end) => format!("{}\n{}", error_text(&e), error_text(&end)),
                Ok(()) => format!("{}\nclosed without a word", error_text(&e)),
            }
        }
    };
    assert!(
        out.contains("terminating connection due to administrator command")
            || out.contains("the upstream database ended the session"),
        "{out}"
    );
    drop(live);
    let (ok, out, err) = alice(&server, &["SELECT current_user, count(*) FROM notes"]).await;
    assert!(ok, "the next sign-in after the restart: {err}");
    assert_eq!(out, "alice@sales|0");
    assert_eq!(
        counted.metric("portcullis_upstream_pool_total{result=dead}"),
        1.0,
        "the pooled session the restart ended was found dead and passed over"
    );
}

/// The vendor's object grants go upstream with their grantees resolved to the upstream roles of
/// the session's own database; a grantee from elsewhere, or none, is refused before anything
/// reaches PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_grants_reach_the_upstream_with_their_grantees_resolved() {
    let _counted = Counted::start().await;
    let pg = blocking(upstream);
    let server = bound_in_process(&pg).await;
    server
        .admin_sql(&[
            "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'",
            "CREATE USER \"carol@sales\" PASSWORD = 'Carol-pass-123'",
            "CREATE GROUP readers@sales",
            "ALTER GROUP readers@sales ADD USER bob@sales",
            "GRANT USE ON DATABASE sales TO GROUP readers@sales",
            "GRANT USE ON DATABASE sales TO USER carol@sales",
            "CREATE DATABASE other",
            "CREATE GROUP readers@other",
        ])
        .await;
    upstream_sql(
        &pg,
        "sales",
        "GRANT CREATE ON SCHEMA public TO \"analysts@sales\"",
    );
    let bob = || {
        server.sql(
            "bob@sales",
            "sales",
            "Bob-pass-12345",
            &["SELECT count(*) FROM reports"],
        )
    };
    let carol = |sql| server.sql("carol@sales", "sales", "Carol-pass-123", sql);
    let (ok, _, err) = alice(
        &server,
        &[
            "CREATE TABLE reports (id int)",
            "INSERT INTO reports VALUES (1), (2)",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = bob().await;
    assert!(
        !ok && err.contains("permission denied for table reports"),
        "{err}"
    );
    for (grant, needle) in [
        (
            "GRANT SELECT ON TABLE reports TO GROUP nosuch",
            "does not exist",
        ),
        (
            "GRANT SELECT ON TABLE reports TO GROUP readers@other",
            "is not of database \"sales\"",
        ),
        (
            "GRANT SELECT ON TABLE reports TO USER admin@system",
            "is not of database \"sales\"",
        ),
    ] {
        let (ok, _, err) = alice(&server, &[grant]).await;
        assert!(!ok && err.contains(needle), "{grant}: {err}");
    }
    let (ok, _, err) = bob().await;
    assert!(!ok, "a refused grant changed something: {err}");
    // (psql printed the command tag GRANT: accepted, and no rows.)
    let (ok, out, err) = alice(&server, &["GRANT SELECT ON TABLE reports TO GROUP readers"]).await;
    assert!(ok && out.is_empty(), "{out}{err}");
    assert_eq!(
        upstream_sql(
            &pg,
            "sales",
            "SELECT grantee FROM information_schema.role_table_grants \
             WHERE table_name = 'reports' AND privilege_type = 'SELECT' \
             AND grantee <> 'alice@sales'"
        ),
        "readers@sales"
    );
    let (ok, out, err) = bob().await;
    assert!(ok && out == "2", "{out}{err}");
    let (ok, _, err) = carol(&["SELECT count(*) FROM reports"]).await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    // Carol owns nothing: PostgreSQL refuses her grant (checked upstream, as her).
    let (ok, _, err) = carol(&["GRANT SELECT ON TABLE reports TO USER carol"]).await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    let (ok, _, err) = alice(
        &server,
        &["REVOKE SELECT ON TABLE reports FROM GROUP readers@sales"],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = bob().await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    // The extended protocol (psycopg 3's pipeline: Parse/Bind/Execute, one Sync): the same
    // resolution; a refused grant errs in its place with its SQLSTATE and the rest of the
    // batch is skipped, as PostgreSQL does.
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    try:
        with conn.pipeline():
            conn.execute("GRANT SELECT ON TABLE reports TO GROUP readers@other")
            conn.execute("GRANT SELECT ON TABLE reports TO GROUP readers")
    except psycopg.Error as e:
        print("refused", e.sqlstate, e.diag.message_primary)
    print(conn.execute(
        "SELECT has_table_privilege('readers@sales', 'reports', 'SELECT')").fetchone()[0])
    with conn.pipeline():
        conn.execute("SELECT %s::int", (1,))
        conn.execute("GRANT SELECT ON TABLE reports TO GROUP readers")
    print(conn.execute("SELECT current_user").fetchone()[0])
"#;
    let (out, err) = psycopg(&server, ("alice@sales", "sales", ALICE), script);
    assert_eq!(
        out,
        "refused 42501 grantee \"readers@other\" is not of database \"sales\": objects here are \
         granted only to its own users, groups and roles\nFalse\nalice@sales\n",
        "{err}"
    );
    let (ok, out, err) = bob().await;
    assert!(ok && out == "2", "{out}{err}");
}
