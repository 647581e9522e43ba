//! pgjdbc (Debian's libpostgresql-jdbc-java) as an unmodified client: SCRAM password sign-in,
//! the token flow with the real provider's access token, refusals as SQLExceptions with their
//! SQLSTATE, and the server-driven device grant completing the startup pgjdbc expects (the
//! code arrives as a connection warning; a scripted provider approves it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::process::Command;

use harness::idp::{idp_dir, tokens, NodeServer};
use harness::{Server, ADMIN_PASSWORD};

const DRIVER: &str = "/usr/share/java/postgresql.jar";

/// Runs tests/jdbc/JdbcClient.java; answers (exit code, stdout, stderr).
fn jdbc(url: &str, user: &str, password: &str, sql: &str) -> (i32, String, String) {
    let source = idp_dir().join("../jdbc/JdbcClient.java");
    let out = Command::new("java")
        .args(["-cp", DRIVER])
        .arg(source)
        .args([url, user, password, sql])
        .output()
        .expect("java (the JDK) must be installed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pgjdbc_signs_in_with_a_password_a_token_and_the_device_grant() {
    let server = Server::start();
    harness::example(&server);
    let url = |db: &str| format!("jdbc:postgresql://127.0.0.1:{}/{db}", server.sql_port);

    // SCRAM-SHA-256, then the extended protocol pgjdbc uses for every query.
    let (code, out, err) = jdbc(
        &url("example_database"),
        "alice@example_database",
        "Alice-pass-1",
        "SELECT CURRENT_USER(), CURRENT_DATABASE()",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alice@example_database|example_database");
    let (code, out, err) = jdbc(
        &url("example_database"),
        "alice@example_database",
        "wrong",
        "SELECT 1",
    );
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("ERROR: 28P01"), "{err}");

    // The token flow: the real provider's access token as the password.
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("keys.json"), false);
    let sql = format!(
        "ALTER DATABASE example_database SET SSO INTEGRATION oidc issuer = \"{}\", \
         client_id = \"rs256-client\", default_group = analysts, groups_claim_ids = [groups]",
        idp.url
    );
    let (ok, _, err) = server.psql("admin@system", "example_database", ADMIN_PASSWORD, &[&sql]);
    assert!(ok, "{err}");
    let t = tokens(&idp.url, "rs256-client", "code", "alice");
    let (code, out, err) = jdbc(
        &url("example_database"),
        "access_token",
        t["access_token"].as_str().unwrap(),
        "SELECT CURRENT_USER(), CURRENT_GROUPS()",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alice@example.com|analysts@example_database");
    let (code, _, err) = jdbc(
        &url("example_database"),
        "access_token",
        "garbage",
        "SELECT 1",
    );
    assert_eq!(code, 1);
    assert!(err.contains("ERROR: 28000"), "{err}");

    // The device grant, approved by a scripted provider on its first poll: pgjdbc accepts
    // AuthenticationOk, the notices (as warnings), then the rest of the startup.
    let rogue = NodeServer::rogue(&[]);
    harness::idp::rogue_device_integration(&server, &rogue, &["token"]);
    let (code, out, err) = jdbc(
        &format!(
            "{}?options=-c%20identityprovider%3Drogue_sso",
            url("example_database")
        ),
        "@example_database",
        "-",
        "SELECT CURRENT_USER(), CURRENT_GROUPS()",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "device@example.com|analysts@example_database");
    assert!(
        err.contains("WARNING: To sign in to database \"example_database\""),
        "{err}"
    );
    assert!(err.contains("enter the code ROGUE-CODE"), "{err}");
}
