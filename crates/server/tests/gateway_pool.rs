//! Upstream sessions outlive their clients only safely (issue 12, items 2 and 5, and its bad
//! inputs): an idle upstream session goes back to the pool only for the same person and only
//! reset (`DISCARD ALL`, an open transaction rolled back); `SET ROLE`, `SET SESSION
//! AUTHORIZATION` and `set_config('role', …)` never reach another person's privileges; a client
//! that vanishes mid-COPY frees its upstream connection (the test counts upstream backends);
//! idle sessions close after `upstream_pool_idle_seconds` and when their person is dropped; an
//! upstream that restarts gives a clean error and the next sign-in works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::postgres::{bound, bound_with, upstream, Postgres};
use harness::web::Web;
use harness::Server;

const ALICE: &str = "Alice-pass-123";

/// `notes`, readable and writable by analysts@sales (upstream).
fn with_notes(pg: &Postgres) {
    pg.sql(
        "sales",
        &[
            "CREATE TABLE notes (id int)",
            "GRANT SELECT, INSERT ON notes TO \"analysts@sales\"",
        ],
    );
}

/// Waits (up to 10 s) until `role` has no upstream backend left; answers how many it has.
fn backends_gone(pg: &Postgres, role: &str) -> String {
    pg.wait_for(
        "sales",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'"),
        "0",
    )
}

/// Waits until `role`'s only upstream session is idle in the pool (its last query the reset).
fn pooled(pg: &Postgres, role: &str) {
    let q = format!("SELECT string_agg(query, ',') FROM pg_stat_activity WHERE usename = '{role}'");
    assert_eq!(pg.wait_for("sales", &q, "DISCARD ALL"), "DISCARD ALL");
}

fn metric(server: &Server, name: &str) -> f64 {
    let samples = harness::parse_metrics(&Web::new().get(&server.http("/metrics")).body);
    samples
        .get(name)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

#[test]
fn idle_upstream_sessions_go_back_only_to_their_person_and_reset() {
    let pg = upstream();
    let server = bound(&pg);
    with_notes(&pg);
    server.admin(&[
        "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'",
        "GRANT USE ON DATABASE sales TO USER bob@sales",
    ]);
    let alice = |c: &[&str]| server.psql("alice@sales", "sales", ALICE, c);
    // A session that leaves everything behind it a session can: a temporary table, a setting,
    // a prepared statement, an advisory lock, a LISTEN, another role.
    let (ok, out, err) = alice(&[
        "SELECT pg_backend_pid()",
        "CREATE TEMP TABLE scratch (a int)",
        "SET work_mem = '7MB'",
        "PREPARE p AS SELECT 1",
        "SELECT pg_advisory_lock(42)",
        "LISTEN news",
        "SET ROLE \"analysts@sales\"",
    ]);
    assert!(ok, "{err}");
    let pid = out.lines().next().unwrap().to_owned();
    pooled(&pg, "alice@sales");
    let look = "SELECT pg_backend_pid(), current_user, current_setting('work_mem'), \
        (SELECT count(*) FROM pg_prepared_statements), \
        (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'), \
        to_regclass('pg_temp.scratch') IS NULL, \
        (SELECT count(*) FROM pg_listening_channels())";
    let (ok, out, err) = alice(&[look]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{pid}|alice@sales|4MB|0|0|t|0"),
        "the same upstream session, reset"
    );
    assert!(metric(&server, "portcullis_upstream_pool_total{result=reused}") >= 1.0);
    // A client that leaves in the middle of a transaction: rolled back, then kept.
    pooled(&pg, "alice@sales");
    let (ok, _, err) = alice(&["BEGIN", "INSERT INTO notes VALUES (1)"]);
    assert!(ok, "{err}");
    pooled(&pg, "alice@sales");
    let (ok, out, err) = alice(&["SELECT pg_backend_pid(), count(*) FROM notes"]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{pid}|0"),
        "the open transaction was rolled back"
    );
    // Another person never gets alice's session.
    pooled(&pg, "alice@sales");
    let (ok, out, err) = server.psql(
        "bob@sales",
        "sales",
        "Bob-pass-12345",
        &["SELECT pg_backend_pid(), current_user"],
    );
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
        let (ok, _, err) = alice(&[sql]);
        assert!(!ok, "{sql} was allowed");
        assert!(err.contains(needle), "{sql}: {err}");
    }
    let (ok, out, err) = alice(&[
        "SET ROLE \"analysts@sales\"",
        "SELECT current_user",
        "RESET ROLE",
        "SELECT current_user, session_user",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "SET\nanalysts@sales\nRESET\nalice@sales|alice@sales");
    // Dropping the person closes their idle upstream sessions (and drops their role).
    pooled(&pg, "alice@sales");
    server.admin(&["DROP USER alice@sales"]);
    assert_eq!(backends_gone(&pg, "alice@sales"), "0");
    assert_eq!(
        pg.sql(
            "sales",
            &["SELECT count(*) FROM pg_roles WHERE rolname = 'alice@sales'"]
        ),
        "0"
    );
}

#[test]
fn upstream_sessions_are_freed_when_clients_vanish_or_sit_idle() {
    let pg = upstream();
    let server = bound_with(&pg, &[("PORTCULLIS_UPSTREAM_POOL_IDLE_SECONDS", "2")]);
    with_notes(&pg);
    server.admin(&[
        "CREATE USER \"carol@sales\" PASSWORD = 'Carol-pass-123'",
        "ALTER GROUP analysts@sales ADD USER carol@sales",
    ]);
    // A client killed in the middle of a COPY: its upstream connection is closed, not kept,
    // and nothing it sent is committed.
    let mut copy = std::process::Command::new("psql")
        .arg(server.conninfo("carol@sales", "sales"))
        .args(["-X", "-c", "COPY notes FROM STDIN"])
        .env("PGPASSWORD", "Carol-pass-123")
        .env("PGSSLMODE", "disable")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = copy.stdin.as_mut().unwrap();
        for i in 0..1000 {
            writeln!(stdin, "{i}").unwrap();
        }
        stdin.flush().unwrap();
    }
    let copying = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'carol@sales' \
        AND query = 'COPY notes FROM STDIN' AND state = 'active'";
    assert_eq!(pg.wait_for("sales", copying, "1"), "1");
    copy.kill().unwrap();
    let _ = copy.wait();
    assert_eq!(
        backends_gone(&pg, "carol@sales"),
        "0",
        "the upstream connection outlived its client"
    );
    assert_eq!(
        metric(
            &server,
            "portcullis_upstream_pool_total{result=not_at_rest}"
        ),
        1.0
    );
    assert_eq!(pg.sql("sales", &["SELECT count(*) FROM notes"]), "0");
    // An idle session is closed after upstream_pool_idle_seconds.
    let (ok, _, err) = server.psql("carol@sales", "sales", "Carol-pass-123", &["SELECT 1"]);
    assert!(ok, "{err}");
    pooled(&pg, "carol@sales");
    assert_eq!(
        backends_gone(&pg, "carol@sales"),
        "0",
        "the idle session was not closed"
    );
}

#[test]
fn an_upstream_restart_gives_a_clean_error_and_the_next_sign_in_works() {
    let pg = upstream();
    let server = bound(&pg);
    with_notes(&pg);
    // The upstream restarts under a connected client and an idle pooled session.
    let mut live = harness::LivePsql::connect(&server, "alice@sales", "sales", ALICE);
    assert_eq!(live.run("SELECT count(*) FROM notes"), "0");
    let (ok, _, err) = server.psql("alice@sales", "sales", ALICE, &["SELECT 1"]);
    assert!(ok, "{err}");
    let idle = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice@sales' \
        AND query = 'DISCARD ALL'";
    assert_eq!(pg.wait_for("sales", idle, "1"), "1");
    pg.stop();
    pg.start_again();
    let out = live.run("SELECT count(*) FROM notes");
    assert!(
        out.contains("terminating connection due to administrator command")
            || out.contains("the upstream database ended the session"),
        "{out}"
    );
    drop(live);
    let (ok, out, err) = server.psql(
        "alice@sales",
        "sales",
        ALICE,
        &["SELECT current_user, count(*) FROM notes"],
    );
    assert!(ok, "the next sign-in after the restart: {err}");
    assert_eq!(out, "alice@sales|0");
    assert_eq!(
        metric(&server, "portcullis_upstream_pool_total{result=dead}"),
        1.0,
        "the pooled session the restart ended was found dead and passed over"
    );
}

/// The vendor's object grants go upstream with their grantees resolved to the upstream roles of
/// the session's own database; a grantee from elsewhere, or none, is refused before anything
/// reaches PostgreSQL.
#[test]
fn object_grants_reach_the_upstream_with_their_grantees_resolved() {
    let pg = upstream();
    let server = bound(&pg);
    server.admin(&[
        "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'",
        "CREATE USER \"carol@sales\" PASSWORD = 'Carol-pass-123'",
        "CREATE GROUP readers@sales",
        "ALTER GROUP readers@sales ADD USER bob@sales",
        "GRANT USE ON DATABASE sales TO GROUP readers@sales",
        "GRANT USE ON DATABASE sales TO USER carol@sales",
        "CREATE DATABASE other",
        "CREATE GROUP readers@other",
    ]);
    pg.sql(
        "sales",
        &["GRANT CREATE ON SCHEMA public TO \"analysts@sales\""],
    );
    let alice = |c: &[&str]| server.psql("alice@sales", "sales", ALICE, c);
    let bob = || {
        server.psql(
            "bob@sales",
            "sales",
            "Bob-pass-12345",
            &["SELECT count(*) FROM reports"],
        )
    };
    let (ok, _, err) = alice(&[
        "CREATE TABLE reports (id int)",
        "INSERT INTO reports VALUES (1), (2)",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = bob();
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
        let (ok, _, err) = alice(&[grant]);
        assert!(!ok && err.contains(needle), "{grant}: {err}");
    }
    let (ok, _, err) = bob();
    assert!(!ok, "a refused grant changed something: {err}");
    let (ok, out, err) = alice(&["GRANT SELECT ON TABLE reports TO GROUP readers"]);
    assert!(ok && out == "GRANT", "{out}{err}");
    assert_eq!(
        pg.sql(
            "sales",
            &["SELECT grantee FROM information_schema.role_table_grants \
               WHERE table_name = 'reports' AND privilege_type = 'SELECT' \
               AND grantee <> 'alice@sales'"]
        ),
        "readers@sales"
    );
    let (ok, out, err) = bob();
    assert!(ok && out == "2", "{out}{err}");
    let (ok, _, err) = server.psql(
        "carol@sales",
        "sales",
        "Carol-pass-123",
        &["SELECT count(*) FROM reports"],
    );
    assert!(!ok && err.contains("permission denied"), "{err}");
    // Carol owns nothing: PostgreSQL refuses her grant (checked upstream, as her).
    let (ok, _, err) = server.psql(
        "carol@sales",
        "sales",
        "Carol-pass-123",
        &["GRANT SELECT ON TABLE reports TO USER carol"],
    );
    assert!(!ok && err.contains("permission denied"), "{err}");
    let (ok, _, err) = alice(&["REVOKE SELECT ON TABLE reports FROM GROUP readers@sales"]);
    assert!(ok, "{err}");
    let (ok, _, err) = bob();
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
    let (out, err) = harness::python_client(
        &harness::python(),
        &server,
        ("alice@sales", "sales", ALICE),
        script,
    );
    assert_eq!(
        out,
        "refused 42501 grantee \"readers@other\" is not of database \"sales\": objects here are \
         granted only to its own users, groups and roles\nFalse\nalice@sales\n",
        "{err}"
    );
    let (ok, out, err) = bob();
    assert!(ok && out == "2", "{out}{err}");
}
