//! Sessions end when their credential does (issue 13, first part): a session signed in with a
//! token ends at the token's `exp` — an idle connection is told why and closed at once, and an
//! HTTP token answers 401 — and the session is gone from `sys.sessions`; and an administrator
//! ends any session of a database they administer with `ALTER SYSTEM END SESSION 'id'`.
//! The server runs in the test's process; tokio-postgres is the client (issue 16, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{rogue_id_token, NodeServer};
use harness::inprocess::{db_error, refused, rows, start, InProcess};
use harness::ADMIN_PASSWORD;
use serde_json::json;

/// `example_database` with alice in analysts, who may use it; `admin@system` connected there.
async fn example(server: &InProcess) -> tokio_postgres::Client {
    server
        .admin()
        .await
        .batch_execute(
            "CREATE DATABASE example_database; \
             CREATE USER \"alice@example_database\" PASSWORD = 'Alice-pass-1'; \
             CREATE GROUP analysts@example_database; \
             ALTER GROUP analysts@example_database ADD USER alice; \
             GRANT USE ON DATABASE example_database TO GROUP analysts@example_database",
        )
        .await
        .unwrap();
    server
        .connect("admin@system", "example_database", ADMIN_PASSWORD)
        .await
        .unwrap()
}

/// How the server ended a connection that was idle: the error its connection task ended with.
async fn ended(connection: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>) -> String {
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), connection)
        .await
        .expect("the idle connection was not ended")
        .unwrap();
    match result {
        Err(e) => db_error(&e),
        Ok(()) => "closed without a word".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_session_ends_when_the_token_expires() {
    let rogue = NodeServer::rogue(&[]);
    let server = start().await;
    let admin = example(&server).await;
    admin
        .simple_query(&format!(
            "ALTER DATABASE example_database SET SSO INTEGRATION oidc issuer = \"{}\", \
             client_id = app, default_group = analysts",
            rogue.url
        ))
        .await
        .unwrap();
    let token = rogue_id_token(&rogue, "u1", 5, json!({}));
    let (psql, connection) =
        InProcess::connect_at(server.sql_addr(), "id_token", "example_database", &token)
            .await
            .unwrap();
    assert_eq!(
        rows(&psql, "SELECT CURRENT_USER()").await,
        ["u1@example.com"]
    );
    let web = reqwest::Client::new();
    let r = web
        .post(server.http("/v1/sso_token"))
        .json(&json!({"database": "example_database", "id_token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ours: serde_json::Value = r.json().await.unwrap();
    let bearer = format!("Bearer {}", ours["access_token"].as_str().unwrap());
    let select = || {
        web.post(server.http("/v1/execute/example_database"))
            .header("Authorization", &bearer)
            .json(&json!({"statement": "SELECT 1"}))
            .send()
    };
    assert_eq!(select().await.unwrap().status(), 200);
    let sso_sessions = "SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL";
    assert_eq!(rows(&admin, sso_sessions).await, ["2"]);
    // The idle connection is ended at exp, before the client says anything: its end is
    // awaited without sending a statement.
    let said = ended(connection).await;
    assert!(said.contains("the sign-in token expired at"), "{said}");
    assert_eq!(
        rows(&admin, sso_sessions).await,
        ["0"],
        "the sessions outlived the token"
    );
    assert!(psql.simple_query("SELECT 'still here'").await.is_err());
    assert_eq!(select().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_ends_a_session_by_id() {
    let server = start().await;
    let admin = example(&server).await;
    admin
        .batch_execute(
            "CREATE DATABASE other; \
             CREATE USER \"olga@other\" PASSWORD = 'Olga-pass-123'; \
             GRANT ROLE database_administrator@other TO USER olga@other; \
             GRANT USE ON DATABASE other TO USER olga@other",
        )
        .await
        .unwrap();
    let (alice, connection) = InProcess::connect_at(
        server.sql_addr(),
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    )
    .await
    .unwrap();
    let id = rows(
        &admin,
        "SELECT id FROM sys.sessions WHERE user = 'alice@example_database'",
    )
    .await
    .remove(0);
    assert_eq!(id.len(), 32, "{id}");
    // Another database's administrator neither ends it nor learns that it exists.
    let olga = server
        .connect("olga@other", "other", "Olga-pass-123")
        .await
        .unwrap();
    let err = refused(&olga, &format!("ALTER SYSTEM END SESSION '{id}'")).await;
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(rows(&alice, "SELECT 'alive'").await, ["alive"]);
    // Not through a GET either (a link must not end anyone's session).
    let r = reqwest::get(format!(
        "{}?statement=ALTER%20SYSTEM%20END%20SESSION%20%27{id}%27",
        server.http("/v1/execute/system")
    ))
    .await
    .unwrap();
    assert_ne!(r.status(), 200);
    assert_eq!(rows(&alice, "SELECT 'alive'").await, ["alive"]);
    // The system's administrator ends it: the idle connection is told at once.
    rows(&admin, &format!("ALTER SYSTEM END SESSION '{id}'")).await;
    let said = ended(connection).await;
    assert!(
        said.contains("ended by an administrator (admin@system)"),
        "{said}"
    );
    assert!(alice.simple_query("SELECT 'still here'").await.is_err());
    assert_eq!(
        rows(
            &admin,
            "SELECT count(*) FROM sys.sessions WHERE user = 'alice@example_database'"
        )
        .await,
        ["0"]
    );
    let err = refused(&admin, "ALTER SYSTEM END SESSION 'no-such-session'").await;
    assert!(err.contains("does not exist"), "{err}");
}
