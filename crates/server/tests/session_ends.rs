//! Sessions end when their credential does (issue 13, first part): a session signed in with a
//! token ends at the token's `exp` — an idle psql connection is told why and closed at once, and
//! an HTTP token answers 401 — and the session is gone from `sys.sessions`; and an
//! administrator ends any session of a database they administer with
//! `ALTER SYSTEM END SESSION 'id'`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{rogue_id_token, NodeServer};
use harness::web::Web;
use harness::{LivePsql, Server};
use serde_json::json;

#[test]
fn a_token_session_ends_when_the_token_expires() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    harness::example(&server);
    harness::idp::rogue_example_integration(&server, &rogue, "analysts", "");
    let token = rogue_id_token(&rogue, "u1", 5, json!({}));
    let sso_sessions =
        || server.admin(&["SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL"]);
    let mut psql = LivePsql::connect(&server, "id_token", "example_database", &token);
    assert_eq!(psql.run("SELECT CURRENT_USER()"), "u1@example.com");
    let web = Web::new();
    let r = web.post_json(
        &server.http("/v1/sso_token"),
        &json!({"database": "example_database", "id_token": token}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ours: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let bearer = format!(
        "Authorization: Bearer {}",
        ours["access_token"].as_str().unwrap()
    );
    let select = |web: &Web| {
        web.post_json_with(
            &server.http("/v1/execute/example_database"),
            &json!({"statement": "SELECT 1"}),
            &[&bearer],
        )
    };
    assert_eq!(select(&web).status, 200);
    assert_eq!(sso_sessions(), "2");
    std::thread::sleep(std::time::Duration::from_secs(7));
    // The idle connection was ended at exp, before the client said anything.
    assert_eq!(sso_sessions(), "0", "the sessions outlived the token");
    let out = psql.run("SELECT 'still here'");
    assert!(!out.contains("still here"), "{out}");
    assert!(
        out.contains("FATAL") && out.contains("the sign-in token expired at"),
        "{out}"
    );
    let r = select(&web);
    assert_eq!(r.status, 401, "{}", r.body);
}

#[test]
fn an_administrator_ends_a_session_by_id() {
    let server = Server::start();
    harness::example(&server);
    server.admin(&[
        "CREATE DATABASE other",
        "CREATE USER \"olga@other\" PASSWORD = 'Olga-pass-123'",
        "GRANT ROLE database_administrator@other TO USER olga@other",
        "GRANT USE ON DATABASE other TO USER olga@other",
    ]);
    let mut alice = LivePsql::connect(
        &server,
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    );
    let id = server.admin(&["SELECT id FROM sys.sessions WHERE user = 'alice@example_database'"]);
    assert_eq!(id.len(), 32, "{id}");
    // Another database's administrator neither ends it nor learns that it exists.
    let (ok, _, err) = server.psql(
        "olga@other",
        "other",
        "Olga-pass-123",
        &[&format!("ALTER SYSTEM END SESSION '{id}'")],
    );
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert_eq!(alice.run("SELECT 'alive'"), "alive");
    // Not through a GET either (a link must not end anyone's session).
    let web = Web::new();
    let r = web.get(&format!(
        "{}?statement=ALTER%20SYSTEM%20END%20SESSION%20%27{id}%27",
        server.http("/v1/execute/system")
    ));
    assert_ne!(r.status, 200, "{}", r.body);
    // The system's administrator ends it: the idle connection is told at once.
    server.admin(&[&format!("ALTER SYSTEM END SESSION '{id}'")]);
    let out = alice.run("SELECT 'still here'");
    assert!(!out.contains("still here"), "{out}");
    assert!(
        out.contains("FATAL") && out.contains("ended by an administrator (admin@system)"),
        "{out}"
    );
    assert_eq!(
        server.admin(&["SELECT count(*) FROM sys.sessions WHERE user = 'alice@example_database'"]),
        "0"
    );
    let err = server.admin_fails("ALTER SYSTEM END SESSION 'no-such-session'");
    assert!(err.contains("does not exist"), "{err}");
}
