//! SSO integrations and the token flow end to end: the seed's statements verbatim, real tokens
//! from a real OpenID provider (npm oidc-provider) signing in over the PostgreSQL protocol and
//! HTTP, and every refusal rule shown with tokens from a rogue test issuer — each refused
//! sign-in leaves no session behind.
//! The server runs in the test's process; tokio-postgres is the client (issue 16, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::Arc;

use harness::idp::{free_port, rogue_post, rogue_sign, tokens, NodeServer};
use harness::inprocess::{error_text, settings_in, start, start_with, InProcess};
use harness::ADMIN_PASSWORD;
use serde_json::json;

/// Runs blocking work (a node helper, curl) off the async workers; its panic is the test's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// A server whose key-set refetches for one issuer are at least `seconds` apart (what
/// PORTCULLIS_JWKS_MIN_REFRESH_SECONDS sets).
async fn start_refreshing_keys_every(seconds: u64) -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.jwks_min_refresh_seconds = seconds;
    start_with(dir, settings).await.unwrap()
}

/// Tokens from the real provider (its node helper, off the async workers).
async fn provider_tokens(issuer: &str, client: &str, grant: &str, user: &str) -> serde_json::Value {
    let (issuer, client, grant, user) = (
        issuer.to_owned(),
        client.to_owned(),
        grant.to_owned(),
        user.to_owned(),
    );
    blocking(move || tokens(&issuer, &client, &grant, &user)).await
}

/// What psql as admin@system connected to `db` gave, in a session of its own: (success, rows,
/// error).
async fn admin_in(server: &InProcess, db: &str, commands: &[&str]) -> (bool, String, String) {
    server
        .sql("admin@system", db, ADMIN_PASSWORD, commands)
        .await
}

/// Runs `commands` one after the other on `client`, as psql's `-c`s would, stopping at the
/// first error: (success, the rows as `a|b` lines, the error as [`error_text`] writes it).
async fn run(client: &tokio_postgres::Client, commands: &[&str]) -> (bool, String, String) {
    let mut out = Vec::new();
    for command in commands {
        match client.simple_query(command).await {
            Ok(answer) => out.extend(lines(&answer)),
            Err(e) => return (false, out.join("\n"), error_text(&e)),
        }
    }
    (true, out.join("\n"), String::new())
}

/// The rows of a simple query's answer, columns joined by `|` (NULL as empty).
fn lines(answer: &[tokio_postgres::SimpleQueryMessage]) -> Vec<String> {
    answer
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}

/// How many sessions signed in through an SSO integration are open.
async fn sessions(server: &InProcess) -> String {
    server
        .admin_sql(&["SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL"])
        .await
}

/// Signs in with startup `options` (`-c identityprovider=…`) and runs `sql`: its rows, or the
/// error as [`error_text`] writes it.
async fn sql_with_options(
    server: &InProcess,
    (user, db, password): (&str, &str, &str),
    options: &str,
    sql: &str,
) -> Result<String, String> {
    let addr = server.sql_addr();
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .dbname(db)
        .password(password)
        .options(options)
        .connect_timeout(std::time::Duration::from_secs(10));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| error_text(&e))?;
    tokio::spawn(connection);
    let answer = client.simple_query(sql).await.map_err(|e| error_text(&e))?;
    Ok(lines(&answer).join("\n"))
}

/// POSTs JSON; the answer's JSON body, whatever its status.
async fn post_json(
    web: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    web.post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs with `Authorization: Bearer token`; the answer's JSON body, whatever its status.
async fn get_bearer(web: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    web.get(url)
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_statements_run_as_written_and_the_catalog_hides_secrets() {
    let server = start().await;
    server
        .admin_sql(&[
            "CREATE DATABASE example_database",
            "CREATE DATABASE source_db",
        ])
        .await;
    // admin@system signed in to each database once (the statements as psql's `-c`s would run).
    let in_example = server
        .connect("admin@system", "example_database", ADMIN_PASSWORD)
        .await
        .unwrap();
    let in_source = server
        .connect("admin@system", "source_db", ADMIN_PASSWORD)
        .await
        .unwrap();
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
        let (ok, _, err) = run(&in_example, &[sql]).await;
        assert!(ok, "{sql}\n{err}");
    }
    let row = run(&in_example, &["SELECT oidc_integrations.name, issuer, client_id, user_id_claims, roles_claim_mappings, assigned_to
           FROM sys.databases JOIN sys.oidc_integrations ON databases.id = oidc_integrations.database_id
           WHERE databases.name = 'example_database' ORDER BY oidc_integrations.id"],
    ).await
    .1;
    assert_eq!(
        row,
        "example_database|https://example.com|xxxxxx|[\"first_name\",\"last_name\",\"email\"]|{\"Example Provider Group\":\"example_database Analyst\"}|database example_database\n\
         sso_test|https://accounts.google.com|example_database_app_id|[]|{}|"
    );
    // Assign the named one (the machine-to-machine steps), then the cross-database steps.
    let (ok, _, err) = run(
        &in_example,
        &["ALTER DATABASE example_database\n    SET SSO INTEGRATION sso_test;"],
    )
    .await;
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
        let (ok, _, err) = run(&in_source, &[sql]).await;
        assert!(ok, "{sql}\n{err}");
    }
    // A secret is stored sealed and shown nowhere.
    let (ok, _, err) = run(
        &in_example,
        &["ALTER SSO INTEGRATION sso_test SET client_secret = \"Very-Secret-Value-42\""],
    )
    .await;
    assert!(ok, "{err}");
    let all = run(&in_example, &["SELECT * FROM sys.oidc_integrations"])
        .await
        .1;
    assert!(!all.contains("Very-Secret-Value-42") && all.contains("sso_test|"));
    let db = tokio::fs::read(server.data_dir.join("catalog.db"))
        .await
        .unwrap();
    assert!(!db.windows(20).any(|w| w == b"Very-Secret-Value-42"));
    let key_mode = tokio::fs::metadata(server.data_dir.join("secret.key"))
        .await
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);
    // Bad statements: a clear error each, and nothing changes.
    let before = run(
        &in_example,
        &["SELECT * FROM sys.oidc_integrations ORDER BY id"],
    )
    .await
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
        let (ok, _, err) = run(&in_example, &[sql]).await;
        assert!(!ok && err.contains(needle), "{sql}\n{err}");
    }
    assert_eq!(
        before,
        run(
            &in_example,
            &["SELECT * FROM sys.oidc_integrations ORDER BY id"]
        )
        .await
        .1
    );
    // Only database administrators see integrations: a plain user sees no rows.
    server
        .admin_sql(&[
            "CREATE USER \"alice@example_database\" PASSWORD = 'Alice-pass-1'",
            "GRANT USE ON DATABASE example_database TO USER alice@example_database",
        ])
        .await;
    let (ok, out, _) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &[
                "SELECT count(*) FROM sys.oidc_integrations",
                "SELECT count(*) FROM sys.databases",
            ],
        )
        .await;
    assert!(ok);
    assert!(out.starts_with("0\n"), "{out}");
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["SELECT * FROM sys.oidc_integrations_all"],
        )
        .await;
    assert!(!ok && err.contains("may only read"), "{err}");
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = true"],
        )
        .await;
    assert!(!ok && err.contains("administrator"), "{err}");
    // REMOVE drops the assignment (and the database's own inline integration).
    let (ok, _, err) = run(
        &in_example,
        &["ALTER DATABASE example_database REMOVE SSO INTEGRATION;"],
    )
    .await;
    assert!(ok, "{err}");
    let left = run(&in_example, &["SELECT name, assigned_to FROM sys.oidc_integrations WHERE database_id = (SELECT id FROM sys.databases WHERE name = 'example_database') ORDER BY id"]).await.1;
    assert_eq!(left, "example_database|\nsso_test|");
}

/// Sets up `example_database` with an integration for `issuer` and groups with USE.
async fn configure(server: &InProcess, issuer: &str, client_id: &str, extra: &str) {
    harness::inprocess::example(server).await;
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
    )
    .await;
    assert!(ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_provider_tokens_sign_in_through_the_protocol_and_http() {
    let keys = tempfile::tempdir().unwrap();
    let jwks = keys.path().join("jwks.json");
    let idp = blocking(move || NodeServer::provider(0, &jwks, false)).await;
    let server = start_refreshing_keys_every(1).await;
    configure(&server, &idp.url, "rs256-client", "").await;
    let t = provider_tokens(&idp.url, "rs256-client", "code", "alice").await;
    let access = t["access_token"].as_str().unwrap();
    let id = t["id_token"].as_str().unwrap();
    // The access token as the password.
    let (ok, out, err) = server.sql("access_token", "example_database", access, &[
        "SELECT CURRENT_USER(), CURRENT_GROUPS(), CURRENT_DATABASE()",
        "SELECT user, authentication_method, sso_integration, groups, token_expires_at IS NOT NULL FROM sys.sessions WHERE id = CURRENT_SESSION_ID()",
    ]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "alice@example.com|analysts@example_database|example_database\n\
         alice@example.com|sso (access_token)|example_database|analysts@example_database|1"
    );
    // The ID token as id_token; as access_token it is refused unless the integration allows it.
    let (ok, out, err) = server
        .sql(
            "id_token",
            "example_database",
            id,
            &["SELECT CURRENT_USER()"],
        )
        .await;
    assert!(ok && out == "alice@example.com", "{err}");
    let (ok, _, err) = server
        .sql("access_token", "example_database", id, &["SELECT 1"])
        .await;
    assert!(
        !ok && err.contains("enable_id_token_authentication"),
        "{err}"
    );
    let (ok, _, err) = server
        .sql("id_token", "example_database", access, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("not an ID token"), "{err}");
    // Machine-to-machine: a client-credentials token, mapped through its groups claim.
    let m2m = provider_tokens(&idp.url, "rs256-client", "client_credentials", "-").await;
    let (ok, out, err) = server
        .sql(
            "access_token@example_database",
            "example_database",
            m2m["access_token"].as_str().unwrap(),
            &["SELECT CURRENT_USER(), CURRENT_GROUPS()"],
        )
        .await;
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
        let (ok, _, err) = admin_in(&server, "example_database", &[&sql, &assign]).await;
        assert!(ok, "{err}");
        let tok = provider_tokens(&idp.url, client, "code", "bob").await;
        let out = sql_with_options(
            &server,
            (
                "access_token",
                "example_database",
                tok["access_token"].as_str().unwrap(),
            ),
            &format!("-c identityprovider={}", client.replace('-', "_")),
            "SELECT CURRENT_USER(), CURRENT_GROUPS()",
        )
        .await
        .unwrap_or_else(|err| panic!("{alg}: {err}"));
        // bob's provider group maps to nothing: the default group (analysts for these).
        assert_eq!(out, "bob@example.com|analysts@example_database", "{alg}");
    }
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database SET SSO INTEGRATION example_database"],
    )
    .await;
    assert!(ok, "{err}");
    // HTTP: exchange at /v1/sso_token, then execute with our token; a provider token directly.
    let web = reqwest::Client::new();
    let r = post_json(
        &web,
        &server.http("/v1/sso_token"),
        &json!({"database": "example_database", "access_token": access}),
    )
    .await;
    assert_eq!(r["status"]["sql_state"], "00000", "{r}");
    assert_eq!(r["username"], "alice@example.com");
    let ours = r["access_token"].as_str().unwrap().to_owned();
    assert!(r["expires_in"].as_i64().unwrap() > 0 && r["expires_in"].as_i64().unwrap() <= 600);
    let stmt = server.http("/v1/execute/example_database?statement=SELECT%20CURRENT_USER()");
    let r = get_bearer(&web, &stmt, &ours).await;
    assert_eq!(r["data"][0][0], "alice@example.com", "{r}");
    let r = get_bearer(&web, &stmt, access).await;
    assert_eq!(r["data"][0][0], "alice@example.com", "{r}");
    let r = post_json(
        &web,
        &server.http("/v1/sso_token"),
        &json!({"database": "example_database", "access_token": access, "id_token": id}),
    )
    .await;
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
    .await
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
    let jwks2 = keys.path().join("jwks2.json");
    let mut idp = blocking({
        let jwks2 = jwks2.clone();
        move || NodeServer::provider(port, &jwks2, false)
    })
    .await;
    let (ok, _, _) = admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            idp.url
        )],
    )
    .await;
    assert!(ok);
    let first = provider_tokens(&idp.url, "rs256-client", "code", "alice").await;
    assert!(
        server
            .sql(
                "access_token",
                "example_database",
                first["access_token"].as_str().unwrap(),
                &["SELECT 1"]
            )
            .await
            .0
    );
    idp.stop();
    let mut idp = blocking(move || NodeServer::provider(port, &jwks2, true)).await;
    let rotated = provider_tokens(&idp.url, "rs256-client", "code", "alice").await;
    // (refetches are limited to one per jwks_min_refresh_seconds per issuer)
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (ok, _, err) = server
        .sql(
            "access_token",
            "example_database",
            rotated["access_token"].as_str().unwrap(),
            &["SELECT 1"],
        )
        .await;
    assert!(ok, "after rotation: {err}");
    // The provider goes away: cached keys keep working.
    idp.stop();
    let (ok, _, err) = server
        .sql(
            "access_token",
            "example_database",
            rotated["access_token"].as_str().unwrap(),
            &["SELECT 1"],
        )
        .await;
    assert!(ok, "provider down: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_rule_refuses_a_wrong_token() {
    let rogue = Arc::new(blocking(|| NodeServer::rogue(&[])).await);
    let server = start_refreshing_keys_every(0).await;
    configure(
        &server,
        &rogue.url,
        "app",
        ", blocked_groups = [blocked_people], enable_id_token_authentication = false",
    )
    .await;
    let n = harness::now();
    let claims = json!({"iss": rogue.url, "aud": "app", "sub": "u1", "email": "u1@example.com", "groups": ["analysts"], "exp": n + 300, "iat": n});
    let id_header = json!({"alg": "RS256", "kid": "rogue-rs", "typ": "JWT"});
    // Every token is signed at the rogue issuer (curl), off the async workers.
    let (good, big, cases) = blocking({
        let (rogue, claims, id_header) = (rogue.clone(), claims.clone(), id_header.clone());
        move || {
            let sign = |key: &str, header: serde_json::Value, c: serde_json::Value| {
                rogue_sign(&rogue, key, header, c)
            };
            let good = sign("rogue-rs", id_header.clone(), claims.clone());
            let mut big = claims.clone();
            big["padding"] = json!("x".repeat(20_000));
            let big = sign("rogue-rs", id_header.clone(), big);
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
            (good, big, cases)
        }
    })
    .await;
    let (ok, out, err) = server
        .sql(
            "id_token",
            "example_database",
            &good,
            &["SELECT CURRENT_USER(), CURRENT_GROUPS()"],
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(out, "u1@example.com|analysts@example_database");
    // A token of more than 16 KiB (a big groups claim) is accepted.
    assert!(big.len() > 16 * 1024);
    let (ok, _, err) = server
        .sql("id_token", "example_database", &big, &["SELECT 1"])
        .await;
    assert!(ok, "big token: {err}");
    let before = sessions(&server).await;
    for (what, token, needle) in &cases {
        let (ok, out, err) = server
            .sql("id_token", "example_database", token, &["SELECT 'ran'"])
            .await;
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
    assert_eq!(before, sessions(&server).await);
    // A refused access token sent as access_token is an access token failure of its own.
    let (ok, _, err) = server
        .sql("access_token", "example_database", &good, &["SELECT 1"])
        .await;
    assert!(
        !ok && err.contains("enable_id_token_authentication"),
        "{err}"
    );
    // Unknown source database, no integration, disabled integration: each its own message.
    let (ok, _, err) = server
        .sql("id_token@nowhere", "example_database", &good, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("source database \"nowhere\""), "{err}");
    let (ok, _, err) = server.sql("id_token", "system", &good, &["SELECT 1"]).await;
    assert!(!ok && err.contains("has no SSO integration"), "{err}");
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = true"],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = server
        .sql("id_token", "example_database", &good, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("is disabled"), "{err}");
    // Passwords are unaffected by a disabled integration.
    assert!(
        server
            .sql(
                "alice@example_database",
                "example_database",
                "Alice-pass-1",
                &["SELECT 1"]
            )
            .await
            .0
    );
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &["ALTER DATABASE example_database ALTER SSO INTEGRATION oidc disabled = false"],
    )
    .await;
    assert!(ok, "{err}");
    // EXPLAIN names the failing check; a non-administrator may not explain others' tokens.
    let wrong_aud = &cases[8].1;
    let explain = admin_in(
        &server,
        "example_database",
        &[&format!("EXPLAIN AUTHENTICATION '{wrong_aud}'")],
    )
    .await
    .1;
    assert!(explain.contains("|aud|fail|token audience"), "{explain}");
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &[&format!("EXPLAIN AUTHENTICATION '{good}'")],
        )
        .await;
    assert!(!ok && err.contains("administrator"), "{err}");
    let (ok, out, _) = server
        .sql(
            "id_token",
            "example_database",
            &good,
            &[&format!("EXPLAIN AUTHENTICATION '{good}'")],
        )
        .await;
    assert!(ok && out.contains("result|pass"), "{out}");
    // Key rotation with the provider failing in between: cached keys keep working; a new kid
    // is fetched once the provider answers again.
    let post = |path: &'static str, body: serde_json::Value| {
        let rogue = rogue.clone();
        blocking(move || rogue_post(&rogue, path, body))
    };
    post("/fail", json!({"on": true})).await;
    assert!(
        server
            .sql("id_token", "example_database", &good, &["SELECT 1"])
            .await
            .0
    );
    let rotated = blocking({
        let (rogue, claims) = (rogue.clone(), claims.clone());
        move || {
            let new_kid = rogue_post(&rogue, "/jwks/rotate", json!({}));
            rogue_sign(
                &rogue,
                &new_kid,
                json!({"alg": "RS256", "kid": new_kid, "typ": "JWT"}),
                claims,
            )
        }
    })
    .await;
    let (ok, _, err) = server
        .sql("id_token", "example_database", &rotated, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("no key with kid"), "{err}");
    post("/fail", json!({"on": false})).await;
    let (ok, _, err) = server
        .sql("id_token", "example_database", &rotated, &["SELECT 1"])
        .await;
    assert!(ok, "after rotation: {err}");
    // Discovery that redirects is not followed.
    let other = blocking(|| {
        let other = NodeServer::rogue(&[]);
        rogue_post(&other, "/redirect", json!({"on": true}));
        other
    })
    .await;
    let (ok, _, _) = admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            other.url
        )],
    )
    .await;
    assert!(ok);
    let mut c = claims.clone();
    c["iss"] = json!(other.url);
    let (other, t) = blocking({
        let id_header = id_header.clone();
        move || {
            let t = rogue_sign(&other, "rogue-rs", id_header, c);
            (other, t)
        }
    })
    .await;
    let (ok, _, err) = server
        .sql("id_token", "example_database", &t, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("redirect"), "{err}");
    // A discovery document naming another issuer is refused.
    let liar = blocking(|| NodeServer::rogue(&["--issuer", "https://idp.example"])).await;
    let (ok, _, err) = admin_in(
        &server,
        "example_database",
        &[&format!(
            "ALTER DATABASE example_database ALTER SSO INTEGRATION oidc issuer = \"{}\"",
            liar.url
        )],
    )
    .await;
    assert!(ok, "{err}");
    let mut c = claims.clone();
    c["iss"] = json!(liar.url);
    let (liar, t) = blocking(move || {
        let t = rogue_sign(&liar, "rogue-rs", id_header, c);
        (liar, t)
    })
    .await;
    let (ok, _, err) = server
        .sql("id_token", "example_database", &t, &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("must be equal"), "{err}");
    // (the issuers ran until here: each was asked during its sign-in)
    drop((other, liar));
}
