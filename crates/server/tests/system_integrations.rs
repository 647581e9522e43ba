//! System-wide SSO integrations (issue 14, item 4): an integration created in `system` may be
//! assigned to any database by someone who administers SSO on both, so seed 003's
//! machine-to-machine steps run as written from a `system` connection; integrations of other
//! databases stay private to them. Server in-process, tokio-postgres as the client, tokens
//! from the real provider (tests/idp).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{db_error, refused, rows};

use harness::idp::{tokens, NodeServer};
use harness::inprocess::InProcess;

/// Signs in with `token` as `user` to `database`; the current user and groups, or the error.
async fn token_sign_in(
    server: &InProcess,
    user: &str,
    database: &str,
    token: &str,
) -> Result<String, String> {
    match server.connect(user, database, token).await {
        Ok(c) => Ok(rows(&c, "SELECT CURRENT_USER(), CURRENT_GROUPS()")
            .await
            .join("\n")),
        Err(e) => Err(db_error(&e)),
    }
}

async fn integrations(admin: &tokio_postgres::Client) -> Vec<String> {
    rows(
        admin,
        "SELECT name, database_id, assigned_to FROM sys.oidc_integrations ORDER BY id",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_machine_to_machine_steps_run_from_system() {
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("jwks.json"), false);
    let server = harness::inprocess::start().await;
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE DATABASE example_database; \
             CREATE DATABASE other_db; \
             CREATE GROUP example_database_group; \
             GRANT USE ON DATABASE example_database TO GROUP example_database_group; \
             CREATE USER \"dba@example_database\" PASSWORD = 'Dba-pass-12'; \
             GRANT ALL ON DATABASE example_database TO USER dba@example_database; \
             CREATE USER \"dbo@other_db\" PASSWORD = 'Dbo-pass-12'; \
             GRANT ALL ON DATABASE other_db TO USER dbo@other_db;",
        )
        .await
        .unwrap();
    // Seed 003, "Set Up Machine-To-Machine SSO Integration", connected to system (the issuer
    // and client are the test provider's).
    let create = format!(
        "CREATE SSO INTEGRATION sso_test PROTOCOL oidc
            issuer = \"{0}\",
            client_id = \"rs256-client\",
            default_group = example_database_group,
            enable_id_token_authentication = true,
            additional_audiences = [\"{0}\"];",
        idp.url
    );
    admin.batch_execute(&create).await.unwrap();
    admin
        .batch_execute("ALTER DATABASE example_database SET SSO INTEGRATION sso_test;")
        .await
        .unwrap();
    let listed = integrations(&admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with("sso_test|1|"), "{listed:?}");
    assert!(listed[0].contains("example_database"), "{listed:?}");

    // The machine's client-credentials token signs in to example_database; the integration's
    // names resolve in its own database (system), as seed 003's cross-database text has it.
    let m2m = tokens(&idp.url, "rs256-client", "client_credentials", "-");
    let access = m2m["access_token"].as_str().unwrap();
    assert_eq!(
        token_sign_in(&server, "access_token", "example_database", access).await,
        Ok("machine@example.com|example_database_group@system".into())
    );
    // system itself has no integration: the same token is refused there.
    let err = token_sign_in(&server, "access_token", "system", access)
        .await
        .unwrap_err();
    assert!(err.contains("no SSO integration"), "{err}");

    // A tenant's database administrator may not hand the system's integration to a database:
    // the system's mappings would sign people in there.
    let dbo = server
        .connect("dbo@other_db", "other_db", "Dbo-pass-12")
        .await
        .unwrap();
    let before = integrations(&admin).await;
    let err = refused(
        &dbo,
        "ALTER DATABASE other_db SET SSO INTEGRATION sso_test@system",
    )
    .await;
    assert!(err.contains("security administrator"), "{err}");
    // Nor use another tenant's integration, nor change a database from another connection.
    let dba = server
        .connect("dba@example_database", "example_database", "Dba-pass-12")
        .await
        .unwrap();
    dba.batch_execute(&format!(
        "CREATE SSO INTEGRATION tenant_own PROTOCOL oidc issuer = \"{}\", \
         client_id = \"rs256-client\", default_group = g",
        idp.url
    ))
    .await
    .unwrap();
    let err = refused(
        &dbo,
        "ALTER DATABASE other_db SET SSO INTEGRATION tenant_own@example_database",
    )
    .await;
    assert!(err.contains("belongs to database"), "{err}");
    let err = refused(
        &dba,
        "ALTER DATABASE other_db SET SSO INTEGRATION tenant_own",
    )
    .await;
    assert!(err.contains("connect to database"), "{err}");
    let err = refused(
        &admin,
        "ALTER DATABASE other_db SET SSO INTEGRATION tenant_own@example_database",
    )
    .await;
    assert!(err.contains("belongs to database"), "{err}");
    let mut after = integrations(&admin).await;
    after.retain(|r| !r.starts_with("tenant_own|"));
    assert_eq!(before, after, "a refused statement changes nothing");

    // The security administrator assigns it to other_db too, from system.
    admin
        .batch_execute("ALTER DATABASE other_db SET SSO INTEGRATION sso_test")
        .await
        .unwrap();
    // other_db has no grant for the group: signed in through the integration, refused USE.
    let err = token_sign_in(&server, "access_token", "other_db", access)
        .await
        .unwrap_err();
    assert!(err.contains("USE"), "{err}");

    // REMOVE from system ends its use there; the integration stays (it is not the database's
    // own inline one, though one of system's may share the database's name).
    admin
        .batch_execute(
            "ALTER DATABASE example_database REMOVE SSO INTEGRATION; \
             ALTER DATABASE other_db REMOVE SSO INTEGRATION",
        )
        .await
        .unwrap();
    let err = token_sign_in(&server, "access_token", "example_database", access)
        .await
        .unwrap_err();
    assert!(err.contains("no SSO integration"), "{err}");
    admin
        .batch_execute(&create.replace("sso_test", "example_database"))
        .await
        .unwrap();
    admin
        .batch_execute(
            "ALTER DATABASE example_database SET SSO INTEGRATION example_database; \
             ALTER DATABASE example_database REMOVE SSO INTEGRATION",
        )
        .await
        .unwrap();
    let names = integrations(&admin).await;
    assert!(
        names.iter().any(|r| r.starts_with("example_database|1|")),
        "system's integration named like the database survives REMOVE: {names:?}"
    );

    // REMOVE from one database ends the sessions that came through that assignment, though the
    // integration stays assigned to another database.
    admin
        .batch_execute(
            "ALTER DATABASE example_database SET SSO INTEGRATION sso_test; \
             ALTER DATABASE other_db SET SSO INTEGRATION sso_test",
        )
        .await
        .unwrap();
    let live = server
        .connect("access_token", "example_database", access)
        .await
        .unwrap();
    assert_eq!(rows(&live, "SELECT 1").await, ["1"]);
    admin
        .batch_execute("ALTER DATABASE example_database REMOVE SSO INTEGRATION")
        .await
        .unwrap();
    assert!(
        live.simple_query("SELECT 1").await.is_err(),
        "the session outlived its database's assignment"
    );
    admin
        .batch_execute("ALTER DATABASE other_db REMOVE SSO INTEGRATION")
        .await
        .unwrap();

    // DROP in system takes its assignments with it: a live session through it ends.
    admin
        .batch_execute("ALTER DATABASE example_database SET SSO INTEGRATION sso_test")
        .await
        .unwrap();
    let live = server
        .connect("access_token", "example_database", access)
        .await
        .unwrap();
    assert_eq!(rows(&live, "SELECT 1").await, ["1"]);
    admin
        .batch_execute("DROP SSO INTEGRATION sso_test")
        .await
        .unwrap();
    let ended = live.simple_query("SELECT 1").await;
    assert!(ended.is_err(), "the session outlived its integration");
    let err = token_sign_in(&server, "access_token", "example_database", access)
        .await
        .unwrap_err();
    assert!(err.contains("no SSO integration"), "{err}");
    server.running.stop().await;
}
