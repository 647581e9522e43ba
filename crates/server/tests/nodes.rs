//! Several nodes over one PostgreSQL store (issue 15, item 3): a catalog change committed on
//! one node is seen on the others (announced with NOTIFY, polled every second in case an
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
    let mut three = nodes(&pg, 3).await;
    let node3 = three.pop().unwrap();
    let node2 = three.pop().unwrap();
    let node1 = three.pop().unwrap();
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

    // A change on node 1, seen on node 3 (and on node 2).
    admin1
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'; \
             GRANT USE ON DATABASE sales TO USER alice@sales",
        )
        .await
        .unwrap();
    let (seen, took) = within_5s(|| async {
        node3
            .connect("alice@sales", "sales", "Alice-pass-123")
            .await
            .ok()
    })
    .await;
    let alice_on_3 = seen.expect("node 3 never saw alice");
    eprintln!("a user created on node 1 signed in on node 3 after {took:?}");
    drop(alice_on_3);
    let (seen, _) = within_5s(|| async {
        node2
            .connect("alice@sales", "sales", "Alice-pass-123")
            .await
            .ok()
    })
    .await;
    drop(seen.expect("node 2 never saw alice"));

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

/// Two nodes on one store (see [`nodes`]).
async fn two_nodes(
    pg: &Postgres,
) -> (harness::inprocess::InProcess, harness::inprocess::InProcess) {
    let mut all = nodes(pg, 2).await;
    let node2 = all.pop().unwrap();
    (all.pop().unwrap(), node2)
}

/// `n` nodes on one store, sharing `secret.key`; nodes after the first advertise node 1's HTTP
/// address as their own, as a load balancer in front of them all would make it.
async fn nodes(pg: &Postgres, n: usize) -> Vec<harness::inprocess::InProcess> {
    nodes_with(pg, n, |_| {}).await
}

/// [`nodes`], each node's settings changed by `tweak` first.
async fn nodes_with(
    pg: &Postgres,
    n: usize,
    tweak: impl Fn(&mut portcullis::config::Settings),
) -> Vec<harness::inprocess::InProcess> {
    let dir1 = tempfile::tempdir().unwrap();
    let mut settings1 = store_settings_in(dir1.path(), pg);
    tweak(&mut settings1);
    let key1 = settings1.data_dir.join("secret.key");
    let node1 = start_with(dir1, settings1).await.unwrap();
    let advertised = node1.running.http_addr.to_string();
    let mut all = vec![node1];
    for _ in 1..n {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = store_settings_in(dir.path(), pg);
        tweak(&mut settings);
        settings.advertised_address = Some(advertised.clone());
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&settings.data_dir).unwrap();
            std::fs::set_permissions(&settings.data_dir, std::fs::Permissions::from_mode(0o700))
                .unwrap();
            std::fs::copy(&key1, settings.data_dir.join("secret.key")).unwrap();
        }
        all.push(start_with(dir, settings).await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_started_on_one_node_finishes_on_the_other() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    // The margin makes every request renew the browser session with its refresh token.
    let mut both = nodes_with(&pg, 2, |s| s.sso_renew_margin_seconds = 86_400).await;
    let node2 = both.pop().unwrap();
    let node1 = both.pop().unwrap();
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
    assign_provider(
        &in_db,
        "example_database",
        "sso_users",
        "corp_sso",
        &idp.url,
    )
    .await;
    // With a refresh token, so the session can be renewed.
    in_db
        .batch_execute(
            "ALTER SSO INTEGRATION corp_sso SET \
             additional_scopes = [email, offline_access], allow_offline_access = true",
        )
        .await
        .unwrap();
    // Started on node 2 (its redirect comes back by the advertised address: node 1's).
    let start = node2.http("/v1/sso_authentication");
    let web = std::sync::Arc::new(harness::web::Web::new());
    let browser = web.clone();
    let (status, page) = tokio::task::spawn_blocking(move || {
        let web = browser;
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

    // The refresh grant is in the store, not on node 1: the browser's requests alternate
    // between the nodes, and each renews the session with the refresh token the last renewal
    // left there (the provider rotates it).
    let pending = |prefix: &str| {
        pg.sql(
            "portcullis",
            &[&format!(
                "SELECT count(*) FROM portcullis_pending WHERE key LIKE '{prefix}:%'"
            )],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(pending("grant"), "1");
    let pages = [node2.http("/ui/session"), node1.http("/ui/session")];
    let signout = node2.http("/ui/signout");
    let browser = web.clone();
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for round in 0..4 {
            let page = browser.get(&pages[round % 2]);
            if page.status != 200 {
                eprintln!("round {round}: {} {}", page.status, page.body);
            }
            seen.push((
                page.status,
                page.body
                    .contains("refresh token, before the token expires"),
            ));
        }
        let page = browser.get(&pages[0]);
        assert_eq!(page.status, 200, "{seen:?} {}", page.body);
        let csrf = harness::web::field_value(&page.body, "csrf");
        let r = browser.post_form(&signout, &[("csrf", &csrf)]);
        seen.push((r.status, false));
        seen
    })
    .await
    .unwrap();
    assert_eq!(
        seen[..4],
        [(200, true); 4],
        "both nodes renew with the shared grant"
    );
    assert!(seen[4].0 < 400, "signed out on node 2: {:?}", seen[4]);
    assert_eq!(
        pending("renewed"),
        "1",
        "the last renewal is left for copies"
    );
    assert_eq!(
        pending("grant"),
        "0",
        "sign-out took the grant (to revoke it)"
    );
    let after = web.clone();
    let page1 = node1.http("/ui/session");
    let (ended, took) = within_5s(|| {
        let (web, page1) = (after.clone(), page1.clone());
        async move {
            let r = tokio::task::spawn_blocking(move || web.get(&page1))
                .await
                .unwrap();
            (!r.body.contains("<dd id=\"user\">")).then_some(r.body)
        }
    })
    .await;
    assert!(
        ended.is_some(),
        "node 1 still shows the session {took:?} after sign-out on node 2"
    );
    eprintln!("node 1's copy ended {took:?} after the sign-out on node 2");
}

/// Creates `group` with USE on `database` and an OIDC integration of the test provider at
/// `issuer` (its default group `group`), assigned to `database`.
async fn assign_provider(
    admin: &tokio_postgres::Client,
    database: &str,
    group: &str,
    integration: &str,
    issuer: &str,
) {
    admin
        .batch_execute(&format!(
            "CREATE GROUP {group}; \
             GRANT USE ON DATABASE {database} TO GROUP {group}; \
             CREATE SSO INTEGRATION {integration} PROTOCOL oidc \
               issuer = \"{issuer}\", client_id = \"rs256-client\", \
               client_secret = \"rs256-client-secret\", default_group = {group}, \
               additional_scopes = [email]; \
             ALTER DATABASE {database} SET SSO INTEGRATION {integration}"
        ))
        .await
        .map_err(|e| harness::inprocess::db_error(&e))
        .unwrap();
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
    let cookie = saml_flow_cookie(&r);
    let body: serde_json::Value = r.json().await.unwrap();
    let posted = idp
        .login(body["redirect"].as_str().unwrap(), "alice", "alice-pw")
        .await;
    assert_eq!(posted.action, acs);
    let r = repost_to_acs(web.clone(), &acs, &cookie, &posted).await;
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
    terminal_waits_on_one_node_and_signs_in_on_the_other(&web, &idp, &node1, &node2).await;
}

/// The SAML flow cookie a sign-in start set.
fn saml_flow_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("portcullis_saml_flow="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("flow cookie")
}

/// The IdP's response, posted again to `acs` from the server's own page (with the flow cookie).
async fn repost_to_acs(
    web: reqwest::Client,
    acs: &str,
    cookie: &str,
    posted: &harness::saml::Posted,
) -> reqwest::Response {
    web.post(acs)
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
        .unwrap()
}

/// psql waits on node 2; its person enters the code on node 1's page and finishes the SAML
/// sign-in there; the session reaches psql on node 2. The code then signs in nothing, on
/// either node.
async fn terminal_waits_on_one_node_and_signs_in_on_the_other(
    web: &reqwest::Client,
    idp: &harness::saml::SamlIdp,
    node1: &harness::inprocess::InProcess,
    node2: &harness::inprocess::InProcess,
) {
    let mut cmd = std::process::Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={} user=@example_database dbname=example_database \
         connect_timeout=60",
        node2.sql_addr().port()
    ))
    .args(["-X", "-A", "-t", "-c", "SELECT CURRENT_USER()"])
    .env("PGSSLMODE", "disable")
    .env_remove("PGPASSWORD");
    let psql = harness::process::Watched::spawn(cmd);
    let (psql, line) = tokio::task::spawn_blocking(move || {
        let mut psql = psql;
        let line = psql.line_with("enter the code");
        (psql, line)
    })
    .await
    .unwrap();
    let code = line.rsplit(' ').next().unwrap().trim().to_owned();
    let page = web
        .get(node1.http(&format!("/ui/terminal?user_code={code}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("database &quot;example_database&quot;"),
        "node 1 knows the code of the terminal waiting on node 2: {page}"
    );
    let r = web
        .post(node1.http("/ui/terminal"))
        .form(&[("user_code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = saml_flow_cookie(&r);
    let to_idp = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let posted = idp.login(&to_idp, "alice", "alice-pw").await;
    let began = Instant::now();
    let acs = node1.http("/v1/saml/acs/example_database/corp_saml");
    let r = repost_to_acs(web.clone(), &acs, &cookie, &posted).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Terminal signed in"), "{page}");
    let (status, out, err) = tokio::task::spawn_blocking(move || psql.finish())
        .await
        .unwrap();
    eprintln!(
        "psql on node 2 signed in {:?} after the ACS on node 1",
        began.elapsed()
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), "alice", "{err}");
    for node in [node1, node2] {
        let r = web
            .post(node.http("/ui/terminal"))
            .form(&[("user_code", code.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "a used code is unknown on every node");
    }
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

/// `GET /v1/execute/sales?statement=SELECT 1` with a bearer token: the HTTP status.
/// An access token for erin@sales from `node`'s `/v1/login`.
async fn erin_token(node: &harness::inprocess::InProcess) -> String {
    let (status, v) = post_json(
        node.http("/v1/login"),
        serde_json::json!({"username": "erin@sales", "password": "Erin-pass-1234"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn execute_status(url: String, token: String) -> u16 {
    tokio::task::spawn_blocking(move || {
        let web = harness::web::Web::new();
        web.get_with(&url, &[&format!("Authorization: Bearer {token}")])
            .status
    })
    .await
    .unwrap()
}

async fn post_json(url: String, body: serde_json::Value) -> (u16, serde_json::Value) {
    tokio::task::spawn_blocking(move || {
        let r = harness::web::Web::new().post_json(&url, &body);
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tokens_and_device_grants_work_on_every_node() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let mut three = nodes(&pg, 3).await;
    let node3 = three.pop().unwrap();
    let node2 = three.pop().unwrap();
    let node1 = three.pop().unwrap();
    node1
        .admin()
        .await
        .batch_execute(
            "CREATE DATABASE sales; \
             CREATE USER \"erin@sales\" PASSWORD = 'Erin-pass-1234'; \
             GRANT USE ON DATABASE sales TO USER erin@sales",
        )
        .await
        .unwrap();
    for node in [&node2, &node3] {
        let (seen, _) = within_5s(|| async {
            node.connect("erin@sales", "sales", "Erin-pass-1234")
                .await
                .ok()
        })
        .await;
        drop(seen.expect("a node never saw erin"));
    }
    let exec =
        |node: &harness::inprocess::InProcess| node.http("/v1/execute/sales?statement=SELECT%201");

    // An access token issued on node 1 works on node 2, which holds the session from then on.
    let token = erin_token(&node1).await;
    assert_eq!(execute_status(exec(&node2), token.clone()).await, 200);
    assert_eq!(execute_status(exec(&node1), token.clone()).await, 200);
    // A token no node issued is refused everywhere.
    assert_eq!(execute_status(exec(&node2), "A".repeat(43)).await, 401);
    // Node 3 lists the session on both nodes that hold it.
    let admin3 = node3.admin().await;
    let (listed, took) = within_5s(|| async {
        let r = rows(
            &admin3,
            "SELECT id, node FROM sys.sessions WHERE user = 'erin@sales' AND protocol = 'http' \
             ORDER BY node",
        )
        .await;
        (r.len() == 2).then_some(r)
    })
    .await;
    let listed = listed.expect("node 3 never listed erin's session on nodes 1 and 2");
    eprintln!("node 3 listed the HTTP session held by two nodes after {took:?}: {listed:?}");
    let id = listed[0].split_once('|').unwrap().0.to_owned();
    assert!(
        listed[1].starts_with(&format!("{id}|")),
        "one session: {listed:?}"
    );
    assert_ne!(listed[0], listed[1], "on two nodes: {listed:?}");
    // END SESSION on node 3 ends it on both; node 3 never takes a copy of it either.
    admin3
        .batch_execute(&format!("ALTER SYSTEM END SESSION '{id}'"))
        .await
        .unwrap();
    let (gone, took) = within_5s(|| async {
        let on_1 = execute_status(exec(&node1), token.clone()).await;
        let on_2 = execute_status(exec(&node2), token.clone()).await;
        (on_1 == 401 && on_2 == 401).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the token outlived END SESSION on a node");
    eprintln!("END SESSION on node 3 ended the HTTP session on nodes 1 and 2 after {took:?}");
    assert_eq!(execute_status(exec(&node3), token.clone()).await, 401);

    // Signing out on node 2 of a session node 1 issued (the browser's cookie goes to every
    // node, as behind a load balancer) ends it on node 1 too.
    let (signin, session_page, signout) = (
        node1.http("/v1/login"),
        node2.http("/ui/session"),
        node2.http("/ui/signout"),
    );
    let token = tokio::task::spawn_blocking(move || {
        let web = harness::web::Web::new();
        let r = web.post_json(
            &signin,
            &serde_json::json!({"username": "erin@sales", "password": "Erin-pass-1234"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let page = web.get(&session_page);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("erin@sales"), "{}", page.body);
        let csrf = harness::web::field_value(&page.body, "csrf");
        let r = web.post_form(&signout, &[("csrf", &csrf)]);
        assert_eq!(r.status, 303, "{}", r.body);
        v["access_token"].as_str().unwrap().to_owned()
    })
    .await
    .unwrap();
    let (gone, took) = within_5s(|| async {
        (execute_status(exec(&node1), token.clone()).await == 401).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "the session outlived sign-out on another node"
    );
    eprintln!("sign-out on node 2 ended the session on node 1 after {took:?}");
    assert_eq!(execute_status(exec(&node3), token.clone()).await, 401);

    // A device grant started on node 1 is verified on node 2, against the real provider; its
    // token works on node 3.
    let keys = tempfile::tempdir().unwrap();
    let idp = harness::idp::NodeServer::provider_with(
        0,
        &keys.path().join("keys.json"),
        &["--redirect-uri", &node1.http("/v1/callback")],
    );
    assign_provider(
        &node1.admin().await,
        "sales",
        "sales_sso",
        "sales_sso_idp",
        &idp.url,
    )
    .await;
    let admin2 = node2.admin().await;
    let (seen, _) = within_5s(|| async {
        let r = rows(&admin2, "SELECT name FROM sys.oidc_integrations").await;
        r.contains(&"sales_sso_idp".to_owned()).then_some(())
    })
    .await;
    assert!(seen.is_some(), "node 2 never saw the integration");
    let (status, grant) = post_json(
        node1.http("/v1/sso_device_grant"),
        serde_json::json!({"database": "sales"}),
    )
    .await;
    assert_eq!(status, 200, "{grant}");
    let code = grant["user_code"].as_str().unwrap().to_owned();
    let handle = grant["device_handle"].as_str().unwrap().to_owned();
    // Node 2 does not know an invented handle (nor does any node).
    let (status, v) = post_json(
        node2.http("/v1/sso_device_grant_verify"),
        serde_json::json!({"device_handle": "x".repeat(43), "database": "sales", "timeout": 1}),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let approve = {
        let url = idp.url.clone();
        let code = code.clone();
        tokio::task::spawn_blocking(move || {
            harness::idp::approve_device_at(&url, &code, false);
        })
    };
    approve.await.unwrap();
    let (status, v) = post_json(
        node2.http("/v1/sso_device_grant_verify"),
        serde_json::json!({"device_handle": handle, "database": "sales", "timeout": 30}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["database"], "sales");
    let sso_token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(execute_status(exec(&node3), sso_token.clone()).await, 200);
    // Used once: node 1, which started it, no longer has it.
    let (status, v) = post_json(
        node1.http("/v1/sso_device_grant_verify"),
        serde_json::json!({"device_handle": handle, "database": "sales", "timeout": 1}),
    )
    .await;
    assert_eq!(status, 404, "{v}");

    // A spray of invented tokens from one address: each well-formed unknown one costs node 2
    // a store read until the address has had 60 in a minute; past that node 2 refuses
    // unknown tokens from it without reading the store, even a real one it has not seen yet
    // (which still works on the node that issued it).
    let fresh = erin_token(&node1).await;
    let url = exec(&node2);
    let statuses = tokio::task::spawn_blocking(move || {
        let web = harness::web::Web::new();
        (0..60)
            .map(|i| {
                let invented = format!("{i:0>43}");
                web.get_with(&url, &[&format!("Authorization: Bearer {invented}")])
                    .status
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(execute_status(exec(&node2), fresh.clone()).await, 401);
    assert_eq!(execute_status(exec(&node1), fresh).await, 200);
    drop(idp);
}
