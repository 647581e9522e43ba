//! The audit trail (issue 13): `sys.authentication_events` records every sign-in attempt and
//! every session end with its reason code — never a token or password — and keeps them across
//! a restart; the JSON audit log says the same; the idle timeout and the maximum session age end
//! sessions and tell the connection why; `/metrics` (parsed by prometheus_client's own parser)
//! counts what the test did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{rogue_id_token, NodeServer};
use harness::web::Web;
use harness::{LivePsql, Server};
use serde_json::json;

const EVENTS: &str = "SELECT event || '|' || method || '|' || identity || '|' || result || '|' \
     || coalesce(reason, '') || '|' || coalesce(application, '') || '|' || coalesce(token_id, '') \
     FROM sys.authentication_events ORDER BY id";

#[test]
fn sign_ins_and_session_ends_are_recorded_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let audit_log = dir.path().join("audit.jsonl");
    let data = dir.path().join("data");
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start_in_env(
        data.clone(),
        &[("PORTCULLIS_AUDIT_LOG", audit_log.to_str().unwrap())],
    );
    harness::example(&server);
    harness::idp::rogue_example_integration(&server, &rogue, "analysts", "");
    // A wrong password, and one that works.
    let (ok, _, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Wrong-pass-1",
        &["SELECT 1"],
    );
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    assert!(
        server
            .psql(
                "alice@example_database",
                "example_database",
                "Alice-pass-1",
                &["SELECT 1"]
            )
            .0
    );
    // A token that expires in 5 s, and a forged one.
    let token = rogue_id_token(&rogue, "u1", 5, json!({"jti": "jti-audit-1"}));
    let mut psql = LivePsql::connect(&server, "id_token", "example_database", &token);
    let mut parts: Vec<&str> = token.split('.').collect();
    // One character of the signature changed (still base64url).
    let sig = parts[2];
    let flipped = if &sig[10..11] == "A" { "B" } else { "A" };
    let forged_sig = format!("{}{flipped}{}", &sig[..10], &sig[11..]);
    parts[2] = &forged_sig;
    let forged = parts.join(".");
    let (ok, _, err) = server.psql("id_token", "example_database", &forged, &["SELECT 1"]);
    assert!(!ok && err.contains("signature"), "{err}");
    // The same token over HTTP, then the token expires: both sessions end with that cause.
    let web = Web::new();
    let r = web.post_json(
        &server.http("/v1/sso_token"),
        &json!({"database": "example_database", "id_token": token}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(std::time::Duration::from_secs(7));
    let out = psql.run("SELECT 'still here'");
    assert!(out.contains("the sign-in token expired at"), "{out}");

    let events = server.admin(&[EVENTS]);
    let rows: Vec<&str> = events.lines().collect();
    let expect = [
        "sign_in|password|alice@example_database|failure|bad_password|psql|",
        "sign_in|password|alice@example_database|success||psql|",
        "session_end|password|alice@example_database|ended|client_disconnected|psql|",
        "sign_in|token|u1@example.com|success||psql|jti-audit-1",
        "sign_in|token||failure|token_signature|psql|sha256:",
        "sign_in|token|u1@example.com|success||",
        "session_end|token|u1@example.com|ended|token_expired|",
    ];
    let mut at = 0;
    for want in expect {
        let found = rows[at..].iter().position(|r| r.starts_with(want));
        let Some(i) = found else {
            panic!("no event {want:?} after row {at} in\n{events}");
        };
        at += i + 1;
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.starts_with("session_end|token|u1@example.com|ended|token_expired"))
            .count(),
        2,
        "{events}"
    );
    // Never a token or a password, in the table or the audit log.
    let all = server.admin(&["SELECT * FROM sys.authentication_events"]);
    let log = std::fs::read_to_string(&audit_log).unwrap();
    for secret in [
        token.as_str(),
        forged.as_str(),
        "Alice-pass-1",
        "Wrong-pass-1",
        parts[1],
    ] {
        assert!(!all.contains(secret), "a secret in the table");
        assert!(!log.contains(secret), "a secret in the audit log");
    }
    // The audit log: one JSON object per line, the same events.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["event"] == "sign_in"
        && l["reason"] == "token_signature"
        && l["result"] == "failure"));
    assert!(lines
        .iter()
        .any(|l| l["event"] == "session_end" && l["reason"] == "token_expired"));
    // A non-administrator sees only their own events.
    let (ok, out, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["SELECT DISTINCT identity FROM sys.authentication_events"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "alice@example_database");
    // Kept across a restart: written to the store in batches every quarter second (the
    // harness stops the server with SIGKILL, so the test waits for one batch first).
    let before =
        server.admin(&["SELECT count(*) || '|' || max(id) FROM sys.authentication_events"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    drop(server);
    let server = Server::start_in(data);
    let (count, last) = before.split_once('|').unwrap();
    let after = server.admin(&[&format!(
        "SELECT count(*) FROM sys.authentication_events WHERE id <= {last}"
    )]);
    assert_eq!(after, count, "events lost across the restart");
    // Ids go on where they left off: this session's sign-in is numbered after them.
    let newer = server.admin(&[&format!(
        "SELECT count(*) FROM sys.authentication_events WHERE id > {last} \
         AND identity = 'admin@system' AND event = 'sign_in'"
    )]);
    assert_ne!(newer, "0");
}

#[test]
fn idle_and_old_sessions_end_and_are_told_why() {
    let server = Server::start();
    harness::example(&server);
    server.admin(&["ALTER DATABASE example_database SET session_idle_timeout_seconds = 2"]);
    let mut idle = LivePsql::connect(
        &server,
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let out = idle.run("SELECT 'still here'");
    assert!(!out.contains("still here"), "{out}");
    assert!(
        out.contains("FATAL") && out.contains("after 2 s without activity"),
        "{out}"
    );
    // Another database's sessions are not affected; the system's maximum age is.
    server.admin(&[
        "ALTER DATABASE example_database RESET session_idle_timeout_seconds",
        "ALTER SYSTEM SET session_max_age_seconds = 3",
    ]);
    let mut busy = LivePsql::connect(
        &server,
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    );
    let mut ended = String::new();
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(700));
        let out = busy.run("SELECT 'busy'");
        if out != "busy" {
            ended = out;
            break;
        }
    }
    assert!(
        ended.contains("maximum session age of 3 s"),
        "a busy session outlived the maximum age: {ended:?}"
    );
    server.admin(&["ALTER SYSTEM RESET session_max_age_seconds"]);
    let reasons = server.admin(&[
        "SELECT reason FROM sys.authentication_events WHERE event = 'session_end' \
         AND identity = 'alice@example_database' ORDER BY id",
    ]);
    assert_eq!(reasons, "idle_timeout\nmax_session_age", "{reasons}");
    // Out of range: refused, nothing changed.
    let err = server.admin_fails("ALTER SYSTEM SET session_idle_timeout_seconds = -1");
    assert!(err.contains("between 0 and"), "{err}");
}

#[test]
fn metrics_count_what_happened() {
    let server = Server::start();
    harness::example(&server);
    for _ in 0..3 {
        server.psql(
            "alice@example_database",
            "example_database",
            "Wrong-pass-1",
            &["SELECT 1"],
        );
    }
    assert!(
        server
            .psql(
                "alice@example_database",
                "example_database",
                "Alice-pass-1",
                &["SELECT 1"]
            )
            .0
    );
    let web = Web::new();
    let r = web.get(&server.http("/metrics"));
    assert_eq!(r.status, 200, "{}", r.body);
    let samples = harness::parse_metrics(&r.body);
    let value = |k: &str| {
        samples
            .get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("no sample {k} in {samples}"))
    };
    assert_eq!(
        value("portcullis_sign_ins_total{method=password,reason=bad_password,result=failure}"),
        3.0
    );
    // admin@system's sign-ins (harness::example) and alice's.
    assert!(value("portcullis_sign_ins_total{method=password,reason=,result=success}") >= 2.0);
    assert!(
        value("portcullis_session_ends_total{cause=client_disconnected,method=password}") >= 2.0
    );
    assert!(value("portcullis_sign_in_seconds_count{method=password,result=failure}") >= 3.0);
    assert_eq!(value("portcullis_sessions_open{method=password}"), 0.0);
    // /healthz is liveness only.
    let h = web.get(&server.http("/healthz"));
    assert_eq!(h.status, 200);
    assert!(!h.body.contains("provider_requests"), "{}", h.body);
}

#[test]
fn disabling_an_integration_ends_its_sessions_at_once_with_that_cause() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    harness::example(&server);
    harness::idp::rogue_example_integration(&server, &rogue, "analysts", "");
    let token = rogue_id_token(&rogue, "u9", 300, json!({}));
    let mut psql = LivePsql::connect(&server, "id_token", "example_database", &token);
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        harness::ADMIN_PASSWORD,
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = true"],
    );
    assert!(ok, "{err}");
    let out = psql.run("SELECT 'still here'");
    assert!(
        out.contains("FATAL") && out.contains("integration of the sign-in was disabled"),
        "{out}"
    );
    let reason = server.admin(&[
        "SELECT reason FROM sys.authentication_events WHERE event = 'session_end' \
         AND identity = 'u9@example.com'",
    ]);
    assert_eq!(reason, "integration_disabled");
}
