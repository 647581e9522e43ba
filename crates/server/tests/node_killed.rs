//! A node killed with `kill -9` in the middle of a browser sign-in (issue 15, item 4): the
//! other node, over the same PostgreSQL store, carries on — it serves and signs people in —
//! and the sign-in the dead node started finishes there (its pending state is in the store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::NodeServer;
use harness::postgres::{Postgres, SUPERUSER_PASSWORD};
use harness::web::Web;
use harness::{Server, ADMIN_PASSWORD};

#[test]
fn a_browser_sign_in_survives_the_node_that_started_it() {
    let pg = Postgres::start();
    pg.sql("postgres", &["CREATE DATABASE portcullis"]);
    let url = format!(
        "postgresql://postgres@127.0.0.1:{}/portcullis?sslmode=disable",
        pg.port
    );
    let store = [
        ("PORTCULLIS_STORE_URL", url.as_str()),
        ("PORTCULLIS_STORE_PASSWORD", SUPERUSER_PASSWORD),
    ];
    // Node B first: node A advertises B's address (a load balancer that sends the provider's
    // redirect to B), and takes B's secret.key.
    let dir_b = tempfile::tempdir().unwrap();
    let node_b = Server::start_in_env(dir_b.path().join("data"), &store);
    let dir_a = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir_a.path().join("data"))
            .unwrap();
        std::fs::copy(
            node_b.data_dir.join("secret.key"),
            dir_a.path().join("data/secret.key"),
        )
        .unwrap();
    }
    let b_address = format!("127.0.0.1:{}", node_b.http_port);
    let mut env_a = store.to_vec();
    env_a.push(("PORTCULLIS_ADVERTISED_ADDRESS", b_address.as_str()));
    let node_a = Server::start_in_env(dir_a.path().join("data"), &env_a);

    let callback = node_b.http("/v1/callback");
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider_with(
        0,
        &keys.path().join("keys.json"),
        &["--redirect-uri", &callback],
    );
    node_b.admin(&["CREATE DATABASE example_database"]);
    let (ok, _, err) = node_b.psql(
        "admin@system",
        "example_database",
        ADMIN_PASSWORD,
        &[
            "CREATE GROUP sso_users",
            "GRANT USE ON DATABASE example_database TO GROUP sso_users",
            &format!(
                "CREATE SSO INTEGRATION corp_sso PROTOCOL oidc issuer = \"{}\", \
                 client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", \
                 default_group = sso_users, additional_scopes = [email]",
                idp.url
            ),
            "ALTER DATABASE example_database SET SSO INTEGRATION corp_sso",
        ],
    );
    assert!(ok, "{err}");

    // The sign-in starts on node A (which has seen node B's change by now: retry briefly).
    let web = Web::new();
    let mut started = None;
    for _ in 0..50 {
        let r = web.post_json(
            &node_a.http("/v1/sso_authentication"),
            &serde_json::json!({"database": "example_database", "do_redirect": false}),
        );
        if r.status == 200 {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            if let Some(u) = v["redirect"].as_str().filter(|u| !u.is_empty()) {
                started = Some(u.to_owned());
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let to_provider = started.expect("node A never offered the integration");
    // kill -9 of node A, mid-flow.
    node_a.kill_now();
    // The provider sends the browser to node B, which finishes the sign-in A started.
    let cb = web.follow_until(&to_provider, &callback);
    let r = web.get(&cb);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = web.get(&node_b.http("/ui/session"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("example_database"), "{}", page.body);
    // Node B carries on: SQL and password sign-ins.
    assert_eq!(
        node_b.admin(&["SELECT count(*) FROM sys.databases WHERE name = 'example_database'"]),
        "1"
    );
}
