//! SSO integrations and the token flow end to end: the seed's statements verbatim, real tokens
//! from a real OpenID provider (npm oidc-provider) signing in through psql and HTTP, and every
//! refusal rule shown with tokens from a rogue test issuer — each refused sign-in leaves no
//! session behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{free_port, rogue_post, rogue_sign, tokens, NodeServer};
use harness::{Server, ADMIN_PASSWORD};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// psql as admin@system connected to `db`.
fn admin_in(server: &Server, db: &str, commands: &[&str]) -> (bool, String, String) {
    server.psql("admin@system", db, ADMIN_PASSWORD, commands)
}

fn sessions(server: &Server) -> String {
    server.admin(&["SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL"])
}

#[test]
fn seed_statements_run_as_written_and_the_catalog_hides_secrets() {
    let server = Server::start();
    server.admin(&[
        "CREATE DATABASE example_database",
        "CREATE DATABASE source_db",
    ]);
    // Seed 003, "SSO Parameters" … "User Claim Identifiers", verbatim, connected to the database.
    for sql in [
        r#"ALTER DATABASE example_database
    SET SSO INTEGRATION oidc
        issuer = "https://example.com",
        client_id = "xxxxxx",
        default_group = "default",
        additional_scopes = [email, groups, profile, offline_access],
        user_id_claims = [claim1, claim2],
        groups_claim_ids = [claim3],
        groups_claim_mappings = { idp_group1 = ocient_group1, idp_group2 = ocient_group2 };"#,
        r#"ALTER DATABASE example_database
    ALTER SSO INTEGRATION oidc

        /* Tell the Database to request the "profile", "email" and "offline_access" scopes */
        additional_scopes = [ profile, email, offline_access ],

        /* Tell the Database to look for the "user_groups" token claim to establish role membership */
        roles_claim_ids = [ user_groups ],

        /* Map provider group "Example Provider Group" to database role "example_database Analyst" */
        roles_claim_mappings = { "Example Provider Group" = "example_database Analyst" };"#,
        r#"ALTER DATABASE example_database
    ALTER SSO INTEGRATION oidc
        user_claim_ids = [first_name, last_name, email];"#,
        r#"CREATE SSO INTEGRATION sso_test PROTOCOL oidc
    issuer = "https://accounts.google.com",
    client_id = example_database_app_id,
    default_group = example_database_group,
    enable_id_token_authentication = true,
    additional_audiences = ["https://accounts.google.com"];"#,
    ] {
        let (ok, _, err) = admin_in(&server, "example_database", &[sql]);
        assert!(ok, "{sql}\n{err}");
    }
    let row = admin_in(
        &server,
        "example_database",
        &["SELECT oidc_integrations.name, issuer, client_id, user_id_claims, roles_claim_mappings, assigned_to
           FROM sys.databases JOIN sys.oidc_integrations ON databases.id = oidc_integrations.database_id
           WHERE databases.name = 'example_database' ORDER BY oidc_integrations.id"],
    )
    .1;
    assert_eq!(
        row,
        "example_database|https://example.com|xxxxxx|[\"first_name\",\"last_name\",\"email\"]|{\"Example Provider Group\":\"example_database Analyst\"}|database example_database\n\
         sso_test|https://accounts.google.com|example_database_app_id|[]|{}|"
    );
    // Assign the named one (the machine-to-machine steps), then the cross-database steps.
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database\n    SET SSO INTEGRATION sso_test;"],
    );
    assert!(ok, "{err}");
    for sql in [
        "CREATE GROUP sso_users;",
        r#"CREATE SSO INTEGRATION test_sso PROTOCOL OIDC
    enable_id_token_authentication = true,
    issuer = 'https://your-idp.com/oidc',
    client_id = 'your_client_id',
    default_group = sso_users,
    additional_scopes = [profile, email, groups, offline_access],
    protocol_version = 'v1',
    groups_claim_ids = [groups];"#,
        "ALTER DATABASE source_db SET SSO INTEGRATION test_sso;",
        "GRANT USE ON DATABASE example_database TO GROUP sso_users;",
    ] {
        let (ok, _, err) = admin_in(&server, "source_db", &[sql]);
        assert!(ok, "{sql}\n{err}");
    }
    // A secret is stored sealed and shown nowhere.
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER SSO INTEGRATION sso_test SET client_secret = \"Very-Secret-Value-42\""],
    );
    assert!(ok, "{err}");
    let all = admin_in(
        &server,
        "example_database",
        &["SELECT * FROM sys.oidc_integrations"],
    )
    .1;
    assert!(!all.contains("Very-Secret-Value-42") && all.contains("sso_test|"));
    let db = std::fs::read(server.data_dir.join("catalog.db")).unwrap();
    assert!(!db.windows(20).any(|w| w == b"Very-Secret-Value-42"));
    let key_mode = std::fs::metadata(server.data_dir.join("secret.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);
    // Bad statements: a clear error each, and nothing changes.
    let before = admin_in(
        &server,
        "example_database",
        &["SELECT * FROM sys.oidc_integrations ORDER BY id"],
    )
    .1;
    for (sql, needle) in [
        ("CREATE SSO INTEGRATION x PROTOCOL oidc issuer = \"http://idp.example\", client_id = a, default_group = g", "https"),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc client_id = a, default_group = g", "\"issuer\" is required"),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc issuer = \"https://i\", client_id = a, default_group = g, colour = red", "unknown SSO property"),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc issuer = \"https://i\", client_id = a, default_group = g, disabled = maybe", "true or false"),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc issuer = \"https://i\", client_id = a, default_group = g, groups_claim_mappings = {a = b}", "groups_claim_ids"),
        ("CREATE SSO INTEGRATION sso_test PROTOCOL oidc issuer = \"https://i\", client_id = a, default_group = g", "already exists"),
        ("ALTER SSO INTEGRATION sso_test SET issuer = NULL", "cannot be cleared"),
        ("ALTER DATABASE source_db SET SSO INTEGRATION sso_test", "connect to database"),
        ("ALTER DATABASE example_database SET SSO INTEGRATION test_sso", "does not exist"),
        ("ALTER DATABASE example_database SET SSO INTEGRATION test_sso@source_db", "belongs to database"),
        ("CREATE SSO INTEGRATION x PROTOCOL kerberos issuer = a", "OIDC"),
    ] {
        let (ok, _, err) = admin_in(&server, "example_database", &[sql]);
        assert!(!ok && err.contains(needle), "{sql}\n{err}");
    }
    assert_eq!(
        before,
        admin_in(
            &server,
            "example_database",
            &["SELECT * FROM sys.oidc_integrations ORDER BY id"]
        )
        .1
    );
    // Only database administrators see integrations: a plain user sees no rows.
    server.admin(&[
        "CREATE USER \"alice@example_database\" PASSWORD = 'Alice-pass-1'",
        "GRANT USE ON DATABASE example_database TO USER alice@example_database",
    ]);
    let (ok, out, _) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &[
            "SELECT count(*) FROM sys.oidc_integrations",
            "SELECT count(*) FROM sys.databases",
        ],
    );
    assert!(ok);
    assert!(out.starts_with("0\n"), "{out}");
    let (ok, _, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["SELECT * FROM sys.oidc_integrations_all"],
    );
    assert!(!ok && err.contains("may only read"), "{err}");
    let (ok, _, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = true"],
    );
    assert!(!ok && err.contains("administrator"), "{err}");
    // REMOVE drops the assignment (and the database's own inline integration).
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database REMOVE SSO INTEGRATION;"],
    );
    assert!(ok, "{err}");
    let left = admin_in(&server, "example_database", &["SELECT name, assigned_to FROM sys.oidc_integrations WHERE database_id = (SELECT id FROM sys.databases WHERE name = 'example_database') ORDER BY id"]).1;
    assert_eq!(left, "example_database|\nsso_test|");
}

/// Sets up `example_database` with an integration for `issuer` and groups with USE.
fn configure(server: &Server, issuer: &str, client_id: &str, extra: &str) {
    harness::example(server);
    let sql = format!(
        "ALTER DATABASE example_database SET SSO INTEGRATION oidc issuer = \"{issuer}\", \
         client_id = \"{client_id}\", default_group = sso_users, groups_claim_ids = [groups], \
         groups_claim_mappings = {{ analysts = analysts, machines = robots }}{extra}"
    );
    let (ok, _, err) = admin_in(
        server,
        "example_database",
        &[
            "CREATE GROUP sso_users",
            "CREATE GROUP robots",
            "GRANT USE ON DATABASE example_database TO GROUP robots",
            &sql,
        ],
    );
    assert!(ok, "{err}");
}

#[test]
fn real_provider_tokens_sign_in_through_psql_and_http() {
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("jwks.json"), false);
    let server = Server::start_env(&[("PORTCULLIS_JWKS_MIN_REFRESH_SECONDS", "1")]);
    configure(&server, &idp.url, "rs256-client", "");
    let t = tokens(&idp.url, "rs256-client", "code", "alice");
    let access = t["access_token"].as_str().unwrap();
    let id = t["id_token"].as_str().unwrap();
    // psql, the access token as the password.
    let (ok, out, err) = server.psql("access_token", "example_database", access, &[
        "SELECT CURRENT_USER(), CURRENT_GROUPS(), CURRENT_DATABASE()",
        "SELECT user, authentication_method, sso_integration, groups, token_expires_at IS NOT NULL FROM sys.sessions WHERE id = CURRENT_SESSION_ID()",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "alice@example.com|analysts@example_database|example_database\n\
         alice@example.com|sso (access_token)|example_database|analysts@example_database|1"
    );
    // The ID token as id_token; as access_token it is refused unless the integration allows it.
    let (ok, out, err) = server.psql(
        "id_token",
        "example_database",
        id,
        &["SELECT CURRENT_USER()"],
    );
    assert!(ok && out == "alice@example.com", "{err}");
    let (ok, _, err) = server.psql("access_token", "example_database", id, &["SELECT 1"]);
    assert!(
        !ok && err.contains("enable_id_token_authentication"),
        "{err}"
    );
    let (ok, _, err) = server.psql("id_token", "example_database", access, &["SELECT 1"]);
    assert!(!ok && err.contains("not an ID token"), "{err}");
    // Machine-to-machine: a client-credentials token, mapped through its groups claim.
    let m2m = tokens(&idp.url, "rs256-client", "client_credentials", "-");
    let (ok, out, err) = server.psql(
        "access_token@example_database",
        "example_database",
        m2m["access_token"].as_str().unwrap(),
        &["SELECT CURRENT_USER(), CURRENT_GROUPS()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "machine@example.com|robots@example_database");
    // Other algorithms, each through its own named integration chosen with identityprovider.
    for (client, alg) in [
        ("rs384-client", "RS384"),
        ("rs512-client", "RS512"),
        ("es256-client", "ES256"),
        ("ps256-client", "PS256"),
    ] {
        let sql = format!("CREATE SSO INTEGRATION {} PROTOCOL oidc issuer = \"{}\", client_id = \"{client}\", default_group = analysts", client.replace('-', "_"), idp.url);
        // Only an assigned integration signs anyone in.
        let assign = format!(
            "ALTER DATABASE example_database SET SSO INTEGRATION {}",
            client.replace('-', "_")
        );
        let (ok, _, err) = admin_in(&server, "example_database", &[&sql, &assign]);
        assert!(ok, "{err}");
        let tok = tokens(&idp.url, client, "code", "bob");
        let conninfo = format!(
            "{} options='-c identityprovider={}'",
            server.conninfo("access_token", "example_database"),
            client.replace('-', "_")
        );
        let out = std::process::Command::new("psql")
            .args([
                &conninfo,
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT CURRENT_USER(), CURRENT_GROUPS()",
            ])
            .env("PGPASSWORD", tok["access_token"].as_str().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // bob's provider group maps to nothing: the default group (analysts for these).
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "bob@example.com|analysts@example_database",
            "{alg}"
        );
    }
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database SET SSO INTEGRATION example_database"],
    );
    assert!(ok, "{err}");
    // HTTP: exchange at /v1/sso_token, then execute with our token; a provider token directly.
    let http = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .arg("-sS")
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let body = json!({"database": "example_database", "access_token": access}).to_string();
    let r = http(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &body,
        &server.http("/v1/sso_token"),
    ]);
    assert_eq!(r["status"]["sql_state"], "00000", "{r}");
    assert_eq!(r["username"], "alice@example.com");
    let ours = r["access_token"].as_str().unwrap().to_owned();
    assert!(r["expires_in"].as_i64().unwrap() > 0 && r["expires_in"].as_i64().unwrap() <= 600);
    let stmt = server.http("/v1/execute/example_database?statement=SELECT%20CURRENT_USER()");
    let r = http(&["-H", &format!("Authorization: Bearer {ours}"), &stmt]);
    assert_eq!(r["data"][0][0], "alice@example.com", "{r}");
    let r = http(&["-H", &format!("Authorization: Bearer {access}"), &stmt]);
    assert_eq!(r["data"][0][0], "alice@example.com", "{r}");
    let body =
        json!({"database": "example_database", "access_token": access, "id_token": id}).to_string();
    let r = http(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &body,
        &server.http("/v1/sso_token"),
    ]);
    assert!(
        r["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("exactly one"),
        "{r}"
    );
    // EXPLAIN AUTHENTICATION: every check with pass/fail, no session made.
    let explain = admin_in(
        &server,
        "example_database",
        &[&format!("EXPLAIN AUTHENTICATION '{access}'")],
    )
    .1;
    for check in [
        "integration|pass",
        "algorithm|pass",
        "discovery|pass",
        "signature|pass",
        "iss|pass",
        "aud|pass",
        "azp|pass",
        "times|pass",
        "policy|pass",
        "result|pass",
    ] {
        assert!(explain.contains(check), "{check}\n{explain}");
    }
    // Rotation at the provider: it restarts on the same port with new keys; a token signed with
    // a new kid makes the server refetch the key set once.
    drop(idp);
    let port = free_port();
    let mut idp = NodeServer::provider(port, &keys.path().join("jwks2.json"), false);
    let (ok, _, _) = admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            idp.url
        )],
    );
    assert!(ok);
    let first = tokens(&idp.url, "rs256-client", "code", "alice");
    assert!(
        server
            .psql(
                "access_token",
                "example_database",
                first["access_token"].as_str().unwrap(),
                &["SELECT 1"]
            )
            .0
    );
    idp.stop();
    let mut idp = NodeServer::provider(port, &keys.path().join("jwks2.json"), true);
    let rotated = tokens(&idp.url, "rs256-client", "code", "alice");
    // (refetches are limited to one per PORTCULLIS_JWKS_MIN_REFRESH_SECONDS per issuer)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ok, _, err) = server.psql(
        "access_token",
        "example_database",
        rotated["access_token"].as_str().unwrap(),
        &["SELECT 1"],
    );
    assert!(ok, "after rotation: {err}");
    // The provider goes away: cached keys keep working.
    idp.stop();
    let (ok, _, err) = server.psql(
        "access_token",
        "example_database",
        rotated["access_token"].as_str().unwrap(),
        &["SELECT 1"],
    );
    assert!(ok, "provider down: {err}");
}

#[test]
fn every_validation_rule_refuses_a_wrong_token() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start_env(&[("PORTCULLIS_JWKS_MIN_REFRESH_SECONDS", "0")]);
    configure(
        &server,
        &rogue.url,
        "app",
        ", blocked_groups = [blocked_people], enable_id_token_authentication = false",
    );
    let n = now();
    let claims = json!({"iss": rogue.url, "aud": "app", "sub": "u1", "email": "u1@example.com", "groups": ["analysts"], "exp": n + 300, "iat": n});
    let id_header = json!({"alg": "RS256", "kid": "rogue-rs", "typ": "JWT"});
    let sign = |key: &str, header: serde_json::Value, c: serde_json::Value| {
        rogue_sign(&rogue, key, header, c)
    };
    let good = sign("rogue-rs", id_header.clone(), claims.clone());
    let (ok, out, err) = server.psql(
        "id_token",
        "example_database",
        &good,
        &["SELECT CURRENT_USER(), CURRENT_GROUPS()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "u1@example.com|analysts@example_database");
    // A token of more than 16 KiB (a big groups claim) is accepted.
    let mut big = claims.clone();
    big["padding"] = json!("x".repeat(20_000));
    let big = sign("rogue-rs", id_header.clone(), big);
    assert!(big.len() > 16 * 1024);
    let (ok, _, err) = server.psql("id_token", "example_database", &big, &["SELECT 1"]);
    assert!(ok, "big token: {err}");
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            sign("none", json!({"alg": "none"}), claims.clone()),
            "alg none",
        ),
        (
            "HMAC keyed with the public key",
            sign(
                "hs-with-public-key",
                json!({"alg": "HS256", "kid": "rogue-rs"}),
                claims.clone(),
            ),
            "symmetric",
        ),
        (
            "unpublished key",
            sign(
                "other",
                json!({"alg": "RS256", "kid": "rogue-rs"}),
                claims.clone(),
            ),
            "signature does not verify",
        ),
        (
            "unknown kid",
            sign(
                "other",
                json!({"alg": "RS256", "kid": "nobody"}),
                claims.clone(),
            ),
            "no key with kid",
        ),
        (
            "jku header",
            sign(
                "other",
                json!({"alg": "RS256", "kid": "rogue-rs", "jku": format!("{}/jwks", rogue.url)}),
                claims.clone(),
            ),
            "signature does not verify",
        ),
        (
            "RS256 key, ES256 header",
            sign(
                "rogue-rs",
                json!({"alg": "ES256", "kid": "rogue-rs"}),
                claims.clone(),
            ),
            "cannot verify",
        ),
        (
            "crit",
            sign(
                "rogue-rs",
                json!({"alg": "RS256", "kid": "rogue-rs", "crit": ["exp"], "exp": 1}),
                claims.clone(),
            ),
            "critical",
        ),
        (
            "wrong iss",
            sign(
                "rogue-rs",
                id_header.clone(),
                with("iss", json!("https://evil.example")),
            ),
            "is not the integration's issuer",
        ),
        (
            "wrong aud",
            sign(
                "rogue-rs",
                id_header.clone(),
                with("aud", json!("other-app")),
            ),
            "token audience",
        ),
        (
            "several aud, no azp",
            sign(
                "rogue-rs",
                id_header.clone(),
                with("aud", json!(["app", "other"])),
            ),
            "authorized party",
        ),
        (
            "azp mismatch",
            sign("rogue-rs", id_header.clone(), with("azp", json!("other"))),
            "authorized party",
        ),
        (
            "expired",
            sign("rogue-rs", id_header.clone(), with("exp", json!(n - 120))),
            "expired",
        ),
        (
            "not yet valid",
            sign("rogue-rs", id_header.clone(), with("nbf", json!(n + 600))),
            "nbf",
        ),
        (
            "issued in the future",
            sign("rogue-rs", id_header.clone(), with("iat", json!(n + 600))),
            "iat",
        ),
        (
            "access token rules",
            sign(
                "rogue-rs",
                json!({"alg": "RS256", "kid": "rogue-rs", "typ": "at+jwt"}),
                claims.clone(),
            ),
            "not an ID token",
        ),
        (
            "blocked group",
            sign(
                "rogue-rs",
                id_header.clone(),
                with("groups", json!(["analysts", "blocked_people"])),
            ),
            "blocked",
        ),
        (
            "no USE",
            sign("rogue-rs", id_header.clone(), with("groups", json!([]))),
            "USE privilege",
        ),
        ("garbage", "not-a-token".into(), "not a JWT"),
    ];
    let before = sessions(&server);
    for (what, token, needle) in &cases {
        let (ok, out, err) = server.psql("id_token", "example_database", token, &["SELECT 'ran'"]);
        assert!(!ok && !out.contains("ran"), "{what}: signed in");
        assert!(
            err.contains("FATAL") && err.contains(needle),
            "{what}: {err}"
        );
        assert!(
            !err.contains(token.as_str()),
            "{what}: the token was echoed"
        );
    }
    assert_eq!(before, sessions(&server));
    // A refused access token sent as access_token is an access token failure of its own.
    let (ok, _, err) = server.psql("access_token", "example_database", &good, &["SELECT 1"]);
    assert!(
        !ok && err.contains("enable_id_token_authentication"),
        "{err}"
    );
    // Unknown source database, no integration, disabled integration: each its own message.
    let (ok, _, err) = server.psql("id_token@nowhere", "example_database", &good, &["SELECT 1"]);
    assert!(!ok && err.contains("source database \"nowhere\""), "{err}");
    let (ok, _, err) = server.psql("id_token", "system", &good, &["SELECT 1"]);
    assert!(!ok && err.contains("has no SSO integration"), "{err}");
    admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = true"],
    );
    let (ok, _, err) = server.psql("id_token", "example_database", &good, &["SELECT 1"]);
    assert!(!ok && err.contains("is disabled"), "{err}");
    // Passwords are unaffected by a disabled integration.
    assert!(
        server
            .psql(
                "alice@example_database",
                "example_database",
                "Alice-pass-1",
                &["SELECT 1"]
            )
            .0
    );
    admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = false"],
    );
    // EXPLAIN names the failing check; a non-administrator may not explain others' tokens.
    let wrong_aud = &cases[8].1;
    let explain = admin_in(
        &server,
        "example_database",
        &[&format!("EXPLAIN AUTHENTICATION '{wrong_aud}'")],
    )
    .1;
    assert!(explain.contains("|aud|fail|token audience"), "{explain}");
    let (ok, _, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &[&format!("EXPLAIN AUTHENTICATION '{good}'")],
    );
    assert!(!ok && err.contains("administrator"), "{err}");
    let (ok, out, _) = server.psql(
        "id_token",
        "example_database",
        &good,
        &[&format!("EXPLAIN AUTHENTICATION '{good}'")],
    );
    assert!(ok && out.contains("result|pass"), "{out}");
    // Key rotation with the provider failing in between: cached keys keep working; a new kid
    // is fetched once the provider answers again.
    rogue_post(&rogue, "/fail", json!({"on": true}));
    assert!(
        server
            .psql("id_token", "example_database", &good, &["SELECT 1"])
            .0
    );
    let new_kid = rogue_post(&rogue, "/jwks/rotate", json!({}));
    let rotated = sign(
        &new_kid,
        json!({"alg": "RS256", "kid": new_kid, "typ": "JWT"}),
        claims.clone(),
    );
    let (ok, _, err) = server.psql("id_token", "example_database", &rotated, &["SELECT 1"]);
    assert!(!ok && err.contains("no key with kid"), "{err}");
    rogue_post(&rogue, "/fail", json!({"on": false}));
    let (ok, _, err) = server.psql("id_token", "example_database", &rotated, &["SELECT 1"]);
    assert!(ok, "after rotation: {err}");
    // Discovery that redirects is not followed.
    let other = NodeServer::rogue(&[]);
    rogue_post(&other, "/redirect", json!({"on": true}));
    let (ok, _, _) = admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            other.url
        )],
    );
    assert!(ok);
    let mut c = claims.clone();
    c["iss"] = json!(other.url);
    let t = rogue_sign(&other, "rogue-rs", id_header.clone(), c);
    let (ok, _, err) = server.psql("id_token", "example_database", &t, &["SELECT 1"]);
    assert!(!ok && err.contains("redirect"), "{err}");
    // A discovery document naming another issuer is refused.
    let liar = NodeServer::rogue(&["--issuer", "https://idp.example"]);
    admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            liar.url
        )],
    );
    let mut c = claims.clone();
    c["iss"] = json!(liar.url);
    let t = rogue_sign(&liar, "rogue-rs", id_header, c);
    let (ok, _, err) = server.psql("id_token", "example_database", &t, &["SELECT 1"]);
    assert!(!ok && err.contains("must be equal"), "{err}");
}
