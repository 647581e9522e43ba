//! Several nodes over one PostgreSQL store (issue 15, item 3): a catalog change committed on
//! one node is seen on the other (announced with NOTIFY, polled every second in case an
//! announcement is missed); DROP USER on one node ends the session its user holds on the
//! other; and two nodes changing the catalog at once never lose an update — a change checked
//! against a stale catalog is refused with a retryable 40001, and every acknowledged change is
//! in the store and on both nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::{Duration, Instant};

use harness::inprocess::{rows, settings_in, start_with};
use harness::postgres::{Postgres, SUPERUSER_PASSWORD};

fn node_settings(dir: &std::path::Path, pg: &Postgres) -> portcullis::config::Settings {
    let mut settings = settings_in(dir);
    settings.store_url = Some(format!(
        "postgresql://postgres@127.0.0.1:{}/portcullis?sslmode=disable",
        pg.port
    ));
    settings.store_password = Some(SUPERUSER_PASSWORD.into());
    settings
}

/// Retries `f` until it answers `Some` or five seconds pass; how long it took.
async fn within_5s<T, F, Fut>(mut f: F) -> (Option<T>, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(5) {
        if let Some(v) = f().await {
            return (Some(v), began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (None, began.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_catalog_end_sessions_and_lose_no_update() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let dir1 = tempfile::tempdir().unwrap();
    let settings1 = node_settings(dir1.path(), &pg);
    let key1 = settings1.data_dir.join("secret.key");
    let node1 = start_with(dir1, settings1).await.unwrap();
    // Every node has the same sealing key (docs/operations.md).
    let dir2 = tempfile::tempdir().unwrap();
    let settings2 = node_settings(dir2.path(), &pg);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&settings2.data_dir).unwrap();
        std::fs::set_permissions(&settings2.data_dir, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::copy(&key1, settings2.data_dir.join("secret.key")).unwrap();
    }
    let node2 = start_with(dir2, settings2).await.unwrap();
    let admin1 = node1.admin().await;
    let admin2 = node2.admin().await;
    // A node with a key of its own is refused: it would seal what the others cannot open.
    let dir3 = tempfile::tempdir().unwrap();
    let settings3 = node_settings(dir3.path(), &pg);
    let err = start_with(dir3, settings3)
        .await
        .err()
        .expect("a node with another secret.key started");
    let text = format!("{err:#}");
    assert!(text.contains("needs the same secret.key"), "{text}");

    // A change on node 1, seen on node 2.
    admin1
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'; \
             GRANT USE ON DATABASE sales TO USER alice@sales",
        )
        .await
        .unwrap();
    let (seen, took) = within_5s(|| async {
        node2
            .connect("alice@sales", "sales", "Alice-pass-123")
            .await
            .ok()
    })
    .await;
    let alice_on_2 = seen.expect("node 2 never saw alice");
    eprintln!("a user created on node 1 signed in on node 2 after {took:?}");
    drop(alice_on_2);

    // DROP USER on node 2 ends alice's session on node 1.
    let (alice_on_1, connection) = harness::inprocess::InProcess::connect_at(
        node1.sql_addr(),
        "alice@sales",
        "sales",
        "Alice-pass-123",
    )
    .await
    .unwrap();
    admin2.batch_execute("DROP USER alice@sales").await.unwrap();
    let began = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("alice's session on node 1 outlived DROP USER on node 2")
        .unwrap();
    let took = began.elapsed();
    // The server told the idle connection why it ended.
    let ended = harness::inprocess::db_error(&ended.unwrap_err());
    eprintln!("DROP USER on node 2 ended the session on node 1 after {took:?}: {ended}");
    assert!(ended.starts_with("57P01"), "{ended}");
    assert!(alice_on_1.simple_query("SELECT 1").await.is_err());

    // Both nodes change the catalog at once: every change is acknowledged or refused with
    // 40001 (and retried), none is lost.
    let burst = |admin: tokio_postgres::Client, prefix: &'static str| {
        tokio::spawn(async move {
            let mut conflicts = 0;
            for n in 0..25 {
                loop {
                    match admin
                        .batch_execute(&format!("CREATE GROUP {prefix}{n}"))
                        .await
                    {
                        Ok(()) => break,
                        Err(e) => {
                            let code = e.as_db_error().map(|d| d.code().code().to_owned());
                            assert_eq!(code.as_deref(), Some("40001"), "{e}");
                            conflicts += 1;
                        }
                    }
                }
            }
            conflicts
        })
    };
    let a = burst(admin1, "one_");
    let b = burst(admin2, "two_");
    let conflicts = a.await.unwrap() + b.await.unwrap();
    eprintln!("50 concurrent changes from two nodes: {conflicts} refused with 40001 and retried");
    let stored = pg.sql(
        "portcullis",
        &["SELECT count(*) FROM groups WHERE name LIKE 'one\\_%' OR name LIKE 'two\\_%'"],
    );
    assert_eq!(stored, "50");
    for node in [&node1, &node2] {
        let admin = node.admin().await;
        let (all, _) = within_5s(|| async {
            let n = rows(
                &admin,
                "SELECT count(*) FROM sys.groups WHERE name LIKE 'one_%' OR name LIKE 'two_%'",
            )
            .await
            .join("");
            (n == "50").then_some(())
        })
        .await;
        assert!(all.is_some(), "a node does not show all 50 groups");
    }
}
