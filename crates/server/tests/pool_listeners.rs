//! Connectivity-pool listeners (issue 14, item 3): `CREATE CONNECTIVITY_POOL p LISTEN 'h:p'`
//! opens a PostgreSQL listener while the server runs (and again after a restart), SSO sign-ins
//! that arrive there use the pool's integration, a bad or busy address is a clear error that
//! changes nothing, and `DROP` closes the listener and ends its sessions (57P01) while the
//! server's own listener carries on. Server in-process, tokio-postgres as the client, tokens
//! from the real provider (tests/idp).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{db_error, refused, rows};

use std::net::SocketAddr;

use harness::idp::{free_port, tokens, NodeServer};
use harness::inprocess::InProcess;
use harness::ADMIN_PASSWORD;

async fn pools(admin: &tokio_postgres::Client) -> Vec<String> {
    rows(admin, "SELECT name FROM sys.connectivity_pools ORDER BY id").await
}

/// Signs in with `token` at `addr`; the user and groups, or the error.
async fn token_at(addr: SocketAddr, token: &str) -> Result<String, String> {
    token_into(addr, "example_database", token).await
}

async fn token_into(addr: SocketAddr, database: &str, token: &str) -> Result<String, String> {
    match InProcess::connect_at(addr, "access_token", database, token).await {
        Ok((c, _)) => Ok(rows(&c, "SELECT CURRENT_USER(), CURRENT_GROUPS()")
            .await
            .join("\n")),
        Err(e) => Err(db_error(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_listens_signs_in_through_its_integration_and_closes_when_dropped() {
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("jwks.json"), false);
    let server = harness::inprocess::start().await;
    let admin = server.admin().await;
    let port = free_port();
    let at: SocketAddr = ([127, 0, 0, 1], port).into();
    admin
        .batch_execute(&format!(
            "CREATE DATABASE example_database; \
             CREATE GROUP pool_users; \
             GRANT USE ON DATABASE example_database TO GROUP pool_users; \
             CREATE SSO INTEGRATION pool_sso PROTOCOL oidc issuer = \"{}\", \
               client_id = \"rs256-client\", default_group = pool_users; \
             CREATE CONNECTIVITY_POOL p LISTEN '{at}' ADVERTISED 'sso.example.test:8443'; \
             ALTER CONNECTIVITY_POOL p SET SSO INTEGRATION pool_sso;",
            idp.url
        ))
        .await
        .unwrap();

    // The pool listens at once: a password sign-in there works as on the server's own port.
    let (on_pool, on_pool_task) =
        InProcess::connect_at(at, "admin@system", "system", ADMIN_PASSWORD)
            .await
            .unwrap();
    assert_eq!(
        rows(&on_pool, "SELECT CURRENT_USER()").await,
        ["admin@system"]
    );

    // A token for the pool's integration signs in there; example_database has no integration
    // of its own, so on the server's own port the same token is refused.
    let m2m = tokens(&idp.url, "rs256-client", "client_credentials", "-");
    let access = m2m["access_token"].as_str().unwrap();
    assert_eq!(
        token_at(at, access).await,
        Ok("machine@example.com|pool_users@system".into())
    );
    let err = token_at(server.sql_addr(), access).await.unwrap_err();
    assert!(err.contains("no SSO integration"), "{err}");
    let (token_session, token_task) =
        InProcess::connect_at(at, "access_token", "example_database", access)
            .await
            .unwrap();

    // The pool's advertised address is the redirect URI's authority of browser sign-ins
    // through its integration (seed 003's advertised_ip): the sign-in page offers it, and
    // choosing it sends the browser to the provider with that redirect URI.
    assert_eq!(
        rows(
            &admin,
            "SELECT name, listen, advertised, sso_integration FROM sys.connectivity_pools"
        )
        .await,
        [format!("p|{at}|sso.example.test:8443|pool_sso")]
    );
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = web
        .get(server.http("/ui/signin?database=system"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"requestState\" value=\"";
    let start = page.find(marker).unwrap_or_else(|| panic!("{page}")) + marker.len();
    let request_state = page[start..].split('"').next().unwrap().to_owned();
    let chosen = web
        .post(server.http("/sso/v1/sdk/idp"))
        .form(&[
            ("requestState", request_state.as_str()),
            ("idpName", "pool_sso"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 303);
    let location = chosen.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&idp.url), "{location}");
    assert!(
        location.contains("redirect_uri=http%3A%2F%2Fsso.example.test%3A8443%2Fv1%2Fcallback"),
        "{location}"
    );
    let err = refused(
        &admin,
        "CREATE CONNECTIVITY_POOL q LISTEN '127.0.0.1:5439' ADVERTISED 'evil.example/x'",
    )
    .await;
    assert!(err.contains("host name with an optional port"), "{err}");

    // Bad or busy addresses: a clear error each, and no pool is added.
    let before = pools(&admin).await;
    for (sql, needle) in [
        (
            format!("CREATE CONNECTIVITY_POOL q LISTEN '{}'", server.sql_addr()),
            "cannot listen on",
        ),
        (
            format!("CREATE CONNECTIVITY_POOL q LISTEN '{at}'"),
            "already exists",
        ),
        (
            "CREATE CONNECTIVITY_POOL q LISTEN '192.0.2.1:5439'".into(),
            "cannot listen on 192.0.2.1:5439",
        ),
        (
            "CREATE CONNECTIVITY_POOL q LISTEN 'localhost'".into(),
            "must be an IP address and port",
        ),
        (
            "CREATE CONNECTIVITY_POOL q LISTEN '127.0.0.1:0'".into(),
            "needs a port",
        ),
    ] {
        let err = refused(&admin, &sql).await;
        assert!(err.contains(needle), "{sql}: {err}");
    }
    assert_eq!(before, pools(&admin).await);
    // Only a system administrator creates pools.
    admin
        .batch_execute(
            "CREATE USER \"dba@example_database\" PASSWORD = 'Dba-pass-12'; \
             GRANT ALL ON DATABASE example_database TO USER dba@example_database",
        )
        .await
        .unwrap();
    let dba = server
        .connect("dba@example_database", "example_database", "Dba-pass-12")
        .await
        .unwrap();
    let other: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let err = refused(
        &dba,
        &format!("CREATE CONNECTIVITY_POOL q LISTEN '{other}'"),
    )
    .await;
    assert!(err.starts_with("42501"), "{err}");
    assert!(
        std::net::TcpListener::bind(other).is_ok(),
        "nothing listens there"
    );

    // A tenant's integration on a pool signs people in to its own database only: its tenant
    // controls its issuer and mappings, so it must not admit anyone to another database
    // (here `system`, whose public role holds USE on it) through the pool.
    dba.batch_execute(&format!(
        "CREATE GROUP tenant_users; \
         GRANT USE ON DATABASE example_database TO GROUP tenant_users; \
         CREATE SSO INTEGRATION tenant_sso PROTOCOL oidc issuer = \"{}\", \
           client_id = \"rs256-client\", default_group = tenant_users",
        idp.url
    ))
    .await
    .unwrap();
    admin
        .batch_execute("ALTER CONNECTIVITY_POOL p SET SSO INTEGRATION tenant_sso@example_database")
        .await
        .unwrap();
    assert_eq!(
        token_at(at, access).await,
        Ok("machine@example.com|tenant_users@example_database".into())
    );
    let err = token_into(at, "system", access).await.unwrap_err();
    assert!(err.contains("no SSO integration"), "{err}");
    admin
        .batch_execute("ALTER CONNECTIVITY_POOL p SET SSO INTEGRATION pool_sso")
        .await
        .unwrap();

    // The pool survives a restart (it listens again on its address).
    drop((on_pool, token_session));
    let _ = (on_pool_task.await, token_task.await);
    drop((admin, dba));
    let server = server.restart().await;
    let admin = server.admin().await;
    assert_eq!(
        token_at(at, access).await,
        Ok("machine@example.com|pool_users@system".into())
    );

    // DROP: the pool's sessions end with 57P01 and its port closes; the server's own port and
    // its sessions carry on.
    let (on_pool, on_pool_task) =
        InProcess::connect_at(at, "admin@system", "system", ADMIN_PASSWORD)
            .await
            .unwrap();
    assert_eq!(rows(&on_pool, "SELECT 1").await, ["1"]);
    admin
        .batch_execute("DROP CONNECTIVITY_POOL p")
        .await
        .unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), on_pool_task)
        .await
        .expect("the pool's session was not ended")
        .unwrap();
    let err = db_error(&ended.unwrap_err());
    assert!(
        err.contains("57P01") && err.contains("connectivity pool \"p\" was dropped"),
        "{err}"
    );
    let err = InProcess::connect_at(at, "admin@system", "system", ADMIN_PASSWORD)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("connect"), "{err}");
    assert_eq!(rows(&admin, "SELECT 2").await, ["2"]);
    assert!(pools(&admin).await.is_empty());
    // The address is free again: a new pool may take it.
    admin
        .batch_execute(&format!("CREATE CONNECTIVITY_POOL p2 LISTEN '{at}'"))
        .await
        .unwrap();
    let (again, _) = InProcess::connect_at(at, "admin@system", "system", ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(rows(&again, "SELECT 3").await, ["3"]);
    server.running.stop().await;
}

/// `max_connections` counts the server's listener and every pool's together: a pool is
/// another way in, not more room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_adds_no_room() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = harness::inprocess::settings_in(dir.path());
    settings.max_connections = 3;
    let server = harness::inprocess::start_with(dir, settings).await.unwrap();
    let admin = server.admin().await;
    let at: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    admin
        .batch_execute(&format!("CREATE CONNECTIVITY_POOL p LISTEN '{at}'"))
        .await
        .unwrap();
    let _two = server.admin().await;
    let _three = InProcess::connect_at(at, "admin@system", "system", ADMIN_PASSWORD)
        .await
        .unwrap();
    for addr in [at, server.sql_addr()] {
        let err = InProcess::connect_at(addr, "admin@system", "system", ADMIN_PASSWORD)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(db_error(&err).starts_with("53300"), "{addr}: {err}");
    }
    server.running.stop().await;
}
