//! Several nodes over one PostgreSQL store (issue 15, item 3): a catalog change committed on
//! one node is seen on the other (announced with NOTIFY, polled every second in case an
//! announcement is missed); DROP USER on one node ends the session its user holds on the
//! other; and two nodes changing the catalog at once never lose an update — a change checked
//! against a stale catalog is refused with a retryable 40001, and every acknowledged change is
//! in the store and on both nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::{Duration, Instant};

use harness::inprocess::{rows, start_with, store_settings_in};
use harness::postgres::Postgres;

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
    let (node1, node2) = two_nodes(&pg).await;
    let admin1 = node1.admin().await;
    let admin2 = node2.admin().await;
    // A node with a key of its own is refused: it would seal what the others cannot open.
    let dir3 = tempfile::tempdir().unwrap();
    let settings3 = store_settings_in(dir3.path(), &pg);
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

/// Two nodes on one store, sharing `secret.key`; node 2 (started second) advertises node 1's
/// HTTP address as its own, as a load balancer in front of both would make it.
async fn two_nodes(
    pg: &Postgres,
) -> (harness::inprocess::InProcess, harness::inprocess::InProcess) {
    let dir1 = tempfile::tempdir().unwrap();
    let settings1 = store_settings_in(dir1.path(), pg);
    let key1 = settings1.data_dir.join("secret.key");
    let node1 = start_with(dir1, settings1).await.unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let mut settings2 = store_settings_in(dir2.path(), pg);
    settings2.advertised_address = Some(node1.running.http_addr.to_string());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&settings2.data_dir).unwrap();
        std::fs::set_permissions(&settings2.data_dir, std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::copy(&key1, settings2.data_dir.join("secret.key")).unwrap();
    }
    let node2 = start_with(dir2, settings2).await.unwrap();
    (node1, node2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_started_on_one_node_finishes_on_the_other() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let (node1, node2) = two_nodes(&pg).await;
    let callback = node1.http("/v1/callback");
    let keys = tempfile::tempdir().unwrap();
    let idp = harness::idp::NodeServer::provider_with(
        0,
        &keys.path().join("keys.json"),
        &["--redirect-uri", &callback],
    );
    node2
        .admin()
        .await
        .batch_execute("CREATE DATABASE example_database")
        .await
        .unwrap();
    let in_db = node2
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap();
    in_db
        .batch_execute(&format!(
            "CREATE GROUP sso_users; \
             GRANT USE ON DATABASE example_database TO GROUP sso_users; \
             CREATE SSO INTEGRATION corp_sso PROTOCOL oidc \
               issuer = \"{}\", client_id = \"rs256-client\", \
               client_secret = \"rs256-client-secret\", default_group = sso_users, \
               additional_scopes = [email]; \
             ALTER DATABASE example_database SET SSO INTEGRATION corp_sso",
            idp.url
        ))
        .await
        .map_err(|e| harness::inprocess::db_error(&e))
        .unwrap();
    // Started on node 2 (its redirect comes back by the advertised address: node 1's).
    let start = node2.http("/v1/sso_authentication");
    let (status, page) = tokio::task::spawn_blocking(move || {
        let web = harness::web::Web::new();
        let r = web.post_json(
            &start,
            &serde_json::json!({"database": "example_database", "do_redirect": false}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let url = v["redirect"].as_str().unwrap().to_owned();
        assert!(url.contains(&url_encode(&callback)), "{url}");
        // The provider sends the browser to node 1, which has never seen this sign-in.
        let cb = web.follow_until(&url, &callback);
        let r = web.get(&cb);
        (r.status, r.body)
    })
    .await
    .unwrap();
    assert_eq!(status, 303, "{page}");
    let on_1 = rows(
        &node1.admin().await,
        "SELECT user, database FROM sys.sessions WHERE sso_integration = 'corp_sso'",
    )
    .await;
    assert_eq!(on_1.len(), 1, "the session is on node 1: {on_1:?}");
    assert!(on_1[0].ends_with("|example_database"), "{on_1:?}");
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_on_both_nodes_count_toward_one_lockout() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let (node1, node2) = two_nodes(&pg).await;
    node1
        .admin()
        .await
        .batch_execute(
            "CREATE DATABASE sales; \
             ALTER DATABASE sales SET password_invalid_attempt_limit = 4; \
             CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'; \
             GRANT USE ON DATABASE sales TO USER bob@sales",
        )
        .await
        .unwrap();
    let (seen, _) = within_5s(|| async {
        node2
            .connect("bob@sales", "sales", "Bob-pass-12345")
            .await
            .ok()
    })
    .await;
    assert!(seen.is_some(), "node 2 never saw bob");
    // Two wrong passwords on each node, alternating.
    for node in [&node1, &node2, &node1, &node2] {
        assert!(node.connect("bob@sales", "sales", "wrong").await.is_err());
    }
    // The fourth made bob DISABLED, on both nodes.
    for node in [&node1, &node2] {
        let admin = node.admin().await;
        let (state, _) = within_5s(|| async {
            let s = rows(
                &admin,
                "SELECT state, failed_attempts FROM sys.users WHERE fqun = 'bob@sales'",
            )
            .await
            .join("");
            s.starts_with("DISABLED").then_some(s)
        })
        .await;
        assert_eq!(state.as_deref(), Some("DISABLED|4"));
    }
    assert!(node2
        .connect("bob@sales", "sales", "Bob-pass-12345")
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saml_sign_in_crosses_nodes_and_an_assertion_is_used_once_on_all() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let (node1, node2) = two_nodes(&pg).await;
    // Both nodes answer at node 1's address (node 2 advertises it).
    let acs = node1.http("/v1/saml/acs/example_database/corp_saml");
    let idp = harness::saml::SamlIdp::start(&[harness::saml::Sp {
        entity_id: "portcullis-nodes".into(),
        acs: vec![acs.clone()],
        lifetime: None,
    }]);
    node2
        .admin()
        .await
        .batch_execute("CREATE DATABASE example_database")
        .await
        .unwrap();
    node2
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE GROUP saml_users; \
             GRANT USE ON DATABASE example_database TO GROUP saml_users; \
             CREATE SSO INTEGRATION corp_saml PROTOCOL saml \
               idp_metadata_url = '{}', sp_entity_id = 'portcullis-nodes', \
               user_id_claims = [uid], default_group = saml_users, allow_idp_initiated = true; \
             ALTER DATABASE example_database SET SSO INTEGRATION corp_saml",
            idp.metadata_url()
        ))
        .await
        .unwrap();
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Started on node 2; the IdP posts to node 1, which never saw the request.
    let r = web
        .post(node2.http("/v1/sso_authentication"))
        .json(&serde_json::json!({"database": "example_database", "do_redirect": false}))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portcullis_saml_flow="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("flow cookie");
    let body: serde_json::Value = r.json().await.unwrap();
    let posted = idp
        .login(body["redirect"].as_str().unwrap(), "alice", "alice-pw")
        .await;
    assert_eq!(posted.action, acs);
    let r = web
        .post(&acs)
        .header(
            reqwest::header::COOKIE,
            format!("portcullis_saml_flow={cookie}"),
        )
        .form(&[
            ("SAMLResponse", posted.saml_response.as_str()),
            ("RelayState", posted.relay_state.as_deref().unwrap()),
            ("reposted", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    // An unsolicited assertion used on node 1 is refused on node 2.
    let unsolicited = idp
        .login(
            &idp.initiated_url("portcullis-nodes", None),
            "alice",
            "alice-pw",
        )
        .await;
    let login = |node: &harness::inprocess::InProcess| {
        web.post(node.http("/v1/login"))
            .form(&[
                ("Domain", "corp_saml"),
                ("SAMLResponse", unsolicited.saml_response.as_str()),
            ])
            .send()
    };
    assert_eq!(login(&node1).await.unwrap().status(), 200);
    let again = login(&node2).await.unwrap();
    assert_eq!(again.status(), 401);
    let text = again.text().await.unwrap();
    assert!(text.contains("already used"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_restarting_under_two_nodes() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let (node1, node2) = two_nodes(&pg).await;
    let admin1 = node1.admin().await;
    admin1
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"carol@sales\" PASSWORD = 'Carol-pass-123'; \
             GRANT USE ON DATABASE sales TO USER carol@sales",
        )
        .await
        .unwrap();
    let (seen, _) = within_5s(|| async {
        node2
            .connect("carol@sales", "sales", "Carol-pass-123")
            .await
            .ok()
    })
    .await;
    assert!(seen.is_some());
    // The store goes away: password sign-ins go on from the nodes' catalogs, catalog changes
    // fail with a clear error and change nothing.
    pg.stop();
    for node in [&node1, &node2] {
        assert!(
            node.connect("carol@sales", "sales", "Carol-pass-123")
                .await
                .is_ok(),
            "a password sign-in while the store is down"
        );
    }
    let admin2 = node2.admin().await;
    let err = admin2
        .batch_execute("CREATE GROUP while_down")
        .await
        .unwrap_err();
    let err = harness::inprocess::db_error(&err);
    assert!(err.contains("store"), "{err}");
    // Back: the nodes reconnect by themselves, listen again, and share changes again.
    pg.start_again();
    let (created, _) = within_5s(|| async {
        admin2
            .batch_execute("CREATE GROUP after_restart")
            .await
            .ok()
    })
    .await;
    assert!(created.is_some(), "node 2 never wrote to the store again");
    let (shown, took) = within_5s(|| async {
        let n = rows(
            &admin1,
            "SELECT count(*) FROM sys.groups WHERE name IN ('after_restart', 'while_down')",
        )
        .await
        .join("");
        (n == "1").then_some(())
    })
    .await;
    assert!(
        shown.is_some(),
        "node 1 never saw the change made after the restart"
    );
    eprintln!("after the store's restart, a change on node 2 was on node 1 within {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nodes_sessions_are_listed_and_ended_from_any_node() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let (node1, node2) = two_nodes(&pg).await;
    node1
        .admin()
        .await
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"dave@sales\" PASSWORD = 'Dave-pass-1234'; \
             GRANT USE ON DATABASE sales TO USER dave@sales",
        )
        .await
        .unwrap();
    let (dave, connection) = within_5s(|| async {
        harness::inprocess::InProcess::connect_at(
            node1.sql_addr(),
            "dave@sales",
            "sales",
            "Dave-pass-1234",
        )
        .await
        .ok()
    })
    .await
    .0
    .expect("dave signs in on node 1");
    // Node 2 lists dave's session on node 1, with node 1's number.
    let admin2 = node2.admin().await;
    let (listed, took) = within_5s(|| async {
        let r = rows(
            &admin2,
            "SELECT id, node FROM sys.sessions WHERE user = 'dave@sales'",
        )
        .await;
        (r.len() == 1).then(|| r[0].clone())
    })
    .await;
    let listed = listed.expect("node 2 never listed dave's session on node 1");
    eprintln!("node 2 listed node 1's session after {took:?}: {listed}");
    let (id, node) = listed.split_once('|').unwrap();
    assert!(!node.is_empty(), "the node column names the node: {listed}");
    let own = rows(
        &node1.admin().await,
        "SELECT DISTINCT node FROM sys.sessions WHERE user = 'dave@sales'",
    )
    .await;
    assert_eq!(own, vec![node.to_owned()], "both nodes agree where it is");
    // END SESSION on node 2 ends it on node 1.
    admin2
        .batch_execute(&format!("ALTER SYSTEM END SESSION '{id}'"))
        .await
        .unwrap();
    let began = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("dave's session outlived END SESSION on the other node")
        .unwrap();
    let ended = harness::inprocess::db_error(&ended.unwrap_err());
    eprintln!(
        "END SESSION on node 2 ended the session on node 1 after {:?}: {ended}",
        began.elapsed()
    );
    assert!(
        ended.starts_with("57P01") && ended.contains("administrator"),
        "{ended}"
    );
    drop(dave);
    // An id no node holds: "does not exist", as before.
    let err = admin2
        .batch_execute("ALTER SYSTEM END SESSION 'no-such-session'")
        .await
        .unwrap_err();
    assert!(harness::inprocess::db_error(&err).contains("does not exist"));
}
