//! The catalog in PostgreSQL (issue 15, item 1): `store_url` points a node at a PostgreSQL
//! database (a cluster the test makes); the catalog survives a restart there, sign-ins and
//! catalog changes work as with SQLite (several nodes sharing it: tests/nodes.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{start_with, store_settings_in};
use harness::postgres::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lives_in_postgresql() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let dir = tempfile::tempdir().unwrap();
    let settings = store_settings_in(dir.path(), &pg);
    let node = start_with(dir, settings.clone()).await.unwrap();
    let admin = node.admin().await;
    admin
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'; \
             GRANT USE ON DATABASE sales TO USER alice@sales",
        )
        .await
        .unwrap();
    // The rows are PostgreSQL's now.
    assert_eq!(
        pg.sql("portcullis", &["SELECT name FROM users ORDER BY id"]),
        "admin\nalice"
    );

    // Restarted (same data directory: the sealing key), the catalog is all there.
    drop(admin);
    let node = node.restart_with(settings).await;
    let alice = node
        .connect("alice@sales", "sales", "Alice-pass-123")
        .await
        .unwrap();
    let rows = alice.simple_query("SELECT CURRENT_USER()").await.unwrap();
    let user = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(user.as_deref(), Some("alice@sales"));
    // A wrong password is counted in the store too.
    assert!(node.connect("alice@sales", "sales", "wrong").await.is_err());
    let mut counted = String::new();
    for _ in 0..50 {
        counted = pg.sql(
            "portcullis",
            &["SELECT failed_attempts FROM users WHERE name = 'alice'"],
        );
        if counted == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(counted, "1");
    node.running.stop().await;
}
