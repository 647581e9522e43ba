//! Sign-in from the command line against the real provider (npm oidc-provider): a real `psql`
//! (and psycopg2, and node-postgres) signs in through the device grant while the test approves the code at the
//! provider's own device pages; denied and expired codes and a query sent before approval end
//! with FATAL and run nothing; a terminal asking for the code flow gets the device grant; and
//! the HTTP device grant (`/v1/sso_device_grant`, `…_verify`, which needs the start call's
//! secret handle).
//! The server runs in the test's process; tokio-postgres is the client (issue 16, item 6). The
//! clients whose own behaviour is the subject (psql, psycopg2 and node-postgres showing the
//! code and waiting) stay real processes, against the in-process server; the last test starts
//! the binary, whose exit on SIGTERM it checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use harness::idp::{approve_device_at, idp_dir, NodeServer};
use harness::inprocess::{error_text, rows, start, InProcess};
use harness::process::Watched;
use harness::wire::{message, read_all, read_message, startup_with};
use harness::{Server, ADMIN_PASSWORD};
use serde_json::json;

/// Runs blocking work (a node helper, a client process waited on, raw std sockets) off the
/// async workers; its panic is the test's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The statements of [`configure`], run by admin@system in `example_database`.
fn configure_statements(issuer: &str) -> Vec<String> {
    vec![
        "CREATE GROUP sso_users".into(),
        format!(
            "CREATE SSO INTEGRATION corp_sso PROTOCOL oidc \
             issuer = \"{issuer}\", client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", \
             default_group = sso_users, additional_scopes = [email, groups], groups_claim_ids = [groups]"
        ),
        "ALTER DATABASE example_database SET SSO INTEGRATION corp_sso".into(),
    ]
}

/// `example_database` with integration `corp_sso` (rs256-client) and the group
/// analysts@example_database holding USE; plus `other_database` whose group `visitors` holds
/// USE, for cross-database sign-in.
async fn configure(server: &InProcess, issuer: &str) {
    harness::inprocess::example(server).await;
    let statements = configure_statements(issuer);
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let (ok, _, err) = server
        .sql(
            "admin@system",
            "example_database",
            ADMIN_PASSWORD,
            &statements,
        )
        .await;
    assert!(ok, "{err}");
}

/// The real provider, redirecting to the server's HTTP port `http_port`, with `extra`
/// arguments (it starts a node process: call it off the async workers).
fn provider(http_port: u16, extra: &[&str]) -> (NodeServer, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let redirect = format!("http://127.0.0.1:{http_port}/v1/callback");
    let mut args = vec!["--redirect-uri", redirect.as_str()];
    args.extend_from_slice(extra);
    let idp = NodeServer::provider_with(0, &keys.path().join("keys.json"), &args);
    (idp, keys)
}

/// [`provider`] for the in-process `server`.
async fn provider_of(
    server: &InProcess,
    extra: &'static [&'static str],
) -> (NodeServer, tempfile::TempDir) {
    let http_port = server.running.http_addr.port();
    blocking(move || provider(http_port, extra)).await
}

/// psql waiting for an interactive sign-in at the server's PostgreSQL port `sql_port`; its
/// notices arrive line by line.
fn waiting_psql(sql_port: u16, user: &str, db: &str, options: &str, command: &str) -> Watched {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={sql_port} user={user} dbname={db} connect_timeout=60 options='{options}'"
    ))
    .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", command])
    .env("PGSSLMODE", "disable")
    .env_remove("PGPASSWORD");
    Watched::spawn(cmd)
}

/// Waits (off the async workers) for the client's first stderr line with `needle`.
async fn line_with(client: Watched, needle: &'static str) -> (Watched, String) {
    blocking(move || {
        let mut client = client;
        let line = client.line_with(needle);
        (client, line)
    })
    .await
}

/// Waits (off the async workers) for the client to end: (exit code, stdout, stderr).
async fn finish(client: Watched) -> (i32, String, String) {
    blocking(move || client.finish()).await
}

/// Approves (or denies) `code` at the provider's device pages.
async fn approve(idp: &NodeServer, code: &str, deny: bool) {
    let (url, code) = (idp.url.clone(), code.to_owned());
    blocking(move || approve_device_at(&url, &code, deny)).await;
}

/// The user code in "… enter the code ABCD-EFGH".
fn user_code(line: &str) -> String {
    line.rsplit(' ').next().unwrap().trim().to_owned()
}

async fn sso_sessions(server: &InProcess) -> String {
    server
        .admin_sql(&["SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL"])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_psycopg_sign_in_with_the_device_grant() {
    let server = start().await;
    let port = server.sql_addr().port();
    let (idp, _keys) = provider_of(&server, &[]).await;
    configure(&server, &idp.url).await;
    server
        .admin_sql(&[
            "CREATE DATABASE other_database",
            "CREATE GROUP visitors@other_database",
            "GRANT USE ON DATABASE other_database TO GROUP analysts@example_database",
        ])
        .await;

    // The done-when: psql as @example_database prints a code; approval signs it in.
    let psql = waiting_psql(
        port,
        "@example_database",
        "example_database",
        "",
        "SELECT CURRENT_USER(), CURRENT_DATABASE(), CURRENT_GROUPS(); \
         SELECT user, authentication_method, protocol FROM sys.sessions WHERE sso_integration = 'corp_sso'",
    );
    let (psql, line) = line_with(psql, "enter the code").await;
    assert!(line.starts_with("NOTICE:"), "{line}");
    assert!(line.contains(&format!("{}/device", idp.url)), "{line}");
    let (psql, complete) = line_with(psql, "user_code=").await;
    assert!(complete.contains("/device?user_code="), "{complete}");
    let code = user_code(&line);
    approve(&idp, &code, false).await;
    let (code, out, err) = finish(psql).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "alice@example.com|example_database|analysts@example_database"
    );
    assert!(lines[1].starts_with("alice@example.com|"), "{out}");
    assert_eq!(
        sso_sessions(&server).await,
        "0",
        "the session ends with psql"
    );

    // Cross-database: the integration of example_database, the session in other_database,
    // chosen by name; the flow named explicitly.
    let psql = waiting_psql(
        port,
        "@example_database",
        "other_database",
        "-c ssoOAuthFlow=deviceGrant -c identityprovider=corp_sso",
        "SELECT CURRENT_USER(), CURRENT_DATABASE()",
    );
    let (psql, line) = line_with(psql, "enter the code").await;
    approve(&idp, &user_code(&line), false).await;
    let (code, out, err) = finish(psql).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alice@example.com|other_database");

    // psycopg2 (libpq through Python) completes the same flow. (psycopg 3 installs its own
    // notice handler before connecting and drops startup notices, so its users cannot see
    // the code; psycopg2 leaves them to libpq, which prints them.)
    let script = format!(
        r#"
import psycopg2
conn = psycopg2.connect("host=127.0.0.1 port={port} user=@example_database dbname=example_database sslmode=disable connect_timeout=60")
cur = conn.cursor()
cur.execute("SELECT CURRENT_USER(), CURRENT_GROUPS()")
print(cur.fetchone(), flush=True)
"#
    );
    // Debian's python3-psycopg2 (over libpq 15).
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]);
    let py = Watched::spawn(cmd);
    // libpq prints startup notices on stderr before the connection is handed to Python.
    let (py, line) = line_with(py, "enter the code").await;
    approve(&idp, &user_code(&line), false).await;
    let (code, out, err) = finish(py).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "('alice@example.com', 'analysts@example_database')");
}

/// node-postgres: its `notice` events show the code while `connect()` waits; and the token
/// flow with the provider's access token as the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_postgres_signs_in_with_the_device_grant_and_a_token() {
    let server = start().await;
    let port = server.sql_addr().port();
    let (idp, _keys) = provider_of(&server, &[]).await;
    configure(&server, &idp.url).await;
    let node = |user: &str, password: Option<&str>| {
        let mut cmd = Command::new("node");
        cmd.arg(idp_dir().join("pg-client.mjs")).args([
            "--port",
            &port.to_string(),
            "--user",
            user,
            "--database",
            "example_database",
            "--query",
            "SELECT CURRENT_USER() AS u, CURRENT_GROUPS() AS g",
        ]);
        if let Some(p) = password {
            cmd.args(["--password", p]);
        }
        Watched::spawn(cmd)
    };
    let client = node("@example_database", None);
    let (client, line) = line_with(client, "enter the code").await;
    approve(&idp, &user_code(&line), false).await;
    let (status, out, err) = finish(client).await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out,
        r#"[{"u":"alice@example.com","g":"analysts@example_database"}]"#
    );

    let issuer = idp.url.clone();
    let token =
        blocking(move || harness::idp::tokens(&issuer, "rs256-client", "code", "alice")).await;
    let access = token["access_token"].as_str().unwrap();
    let (status, out, err) = finish(node("access_token", Some(access))).await;
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("alice@example.com"), "{out}");
    let (status, out, err) = finish(node("access_token", Some("not-a-token"))).await;
    assert_ne!(status, 0);
    assert!(out.is_empty());
    assert!(err.contains("FATAL 28000"), "{err}");
}

/// Sets `name` as `example_database`'s integration (only an assigned integration signs anyone
/// in).
async fn assign(server: &InProcess, name: &str) {
    let sql = format!("ALTER DATABASE example_database SET SSO INTEGRATION {name}");
    let (ok, _, err) = server
        .sql("admin@system", "example_database", ADMIN_PASSWORD, &[&sql])
        .await;
    assert!(ok, "{err}");
}

/// Starts a raw PostgreSQL connection as `@example_database`, which then waits for its
/// device-grant sign-in: the stream and the first message the server sent.
fn open_waiting(addr: SocketAddr) -> (TcpStream, (u8, Vec<u8>)) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&startup_with(&[
        ("user", "@example_database"),
        ("database", "example_database"),
    ]))
    .unwrap();
    let first = read_message(&mut s);
    (s, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_expired_and_early_queries_end_with_fatal_and_run_nothing() {
    let server = start().await;
    let port = server.sql_addr().port();
    let (idp, _keys) = provider_of(&server, &[]).await;
    configure(&server, &idp.url).await;
    // A second provider whose device codes live 3 s, as integration short_sso.
    let (short, _short_keys) = provider_of(&server, &["--device-ttl", "3"]).await;
    let sql = format!(
        "CREATE SSO INTEGRATION short_sso PROTOCOL oidc issuer = \"{}\", \
         client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", \
         default_group = sso_users, groups_claim_ids = [groups]",
        short.url
    );
    let (ok, _, err) = server
        .sql("admin@system", "example_database", ADMIN_PASSWORD, &[&sql])
        .await;
    assert!(ok, "{err}");

    // Denied at the provider.
    let psql = waiting_psql(
        port,
        "@example_database",
        "example_database",
        "",
        "SELECT 'ran'",
    );
    let (psql, line) = line_with(psql, "enter the code").await;
    approve(&idp, &user_code(&line), true).await;
    let (code, out, err) = finish(psql).await;
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(
            "FATAL:  SSO sign-in refused: the sign-in was denied at the identity provider"
        ),
        "{err}"
    );

    // Expired: nobody approves within the device code's 3 s (short_sso assigned meanwhile:
    // only an assigned integration signs anyone in).
    assign(&server, "short_sso").await;
    let psql = waiting_psql(
        port,
        "@example_database",
        "example_database",
        "-c identityprovider=short_sso",
        "SELECT 'ran'",
    );
    let (code, out, err) = finish(psql).await;
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("enter the code"), "{err}");
    assert!(err.contains("the device code expired"), "{err}");
    assign(&server, "corp_sso").await;

    // Bad settings: unknown flow, unknown integration, database without SSO.
    for (options, db, expected) in [
        (
            "-c ssoOAuthFlow=magic",
            "example_database",
            "unknown ssoOAuthFlow \"magic\"",
        ),
        (
            "-c identityprovider=nope",
            "example_database",
            "SSO integration \"nope\" does not exist",
        ),
        ("", "system", "database \"system\" has no SSO integration"),
    ] {
        let user = if db == "system" {
            "sso"
        } else {
            "@example_database"
        };
        let (code, out, err) = finish(waiting_psql(port, user, db, options, "SELECT 'ran'")).await;
        assert!(code != 0 && out.is_empty(), "{out}");
        assert!(err.contains(expected), "{options}: {err}");
        assert!(!err.contains("enter the code"), "{err}");
    }

    // A query sent before approval: FATAL 08P01, no row, the socket closes, no session.
    let addr = server.sql_addr();
    let notice = blocking(move || {
        let (mut s, (tag, body)) = open_waiting(addr);
        assert_eq!(
            (tag, body.as_slice()),
            (b'R', &[0u8, 0, 0, 0][..]),
            "AuthenticationOk first"
        );
        let (tag, body) = read_message(&mut s);
        assert_eq!(tag, b'N');
        let notice = String::from_utf8_lossy(&body).into_owned();
        assert!(notice.contains("enter the code"), "{notice}");
        s.write_all(&message(b'Q', b"SELECT CURRENT_USER()\0"))
            .unwrap();
        let rest = read_all(&mut s);
        assert!(
            rest.iter()
                .all(|(t, _)| *t != b'T' && *t != b'D' && *t != b'Z'),
            "no rows and no ReadyForQuery: {rest:?}"
        );
        let (tag, body) = rest.iter().find(|(t, _)| *t == b'E').unwrap();
        assert_eq!(*tag, b'E');
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("FATAL") && text.contains("08P01"), "{text}");
        assert!(text.contains("before the sign-in was approved"), "{text}");
        notice
    })
    .await;
    // Approving that code now signs nobody in.
    let code = notice
        .split("enter the code ")
        .nth(1)
        .unwrap()
        .split('\0')
        .next()
        .unwrap()
        .to_owned();
    approve(&idp, &code, false).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sso_sessions(&server).await, "0");

    // At most 10 sign-ins wait per address; the 11th is refused until one ends.
    blocking(move || {
        let mut waiting: Vec<TcpStream> = (0..10)
            .map(|_| {
                let (s, (tag, _)) = open_waiting(addr);
                assert_eq!(tag, b'R');
                s
            })
            .collect();
        let (_, (tag, body)) = open_waiting(addr);
        assert_eq!(tag, b'E');
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("53300") && text.contains("too many sign-ins are waiting"),
            "{text}"
        );
        drop(waiting.pop());
        std::thread::sleep(Duration::from_millis(300));
        let (_, (tag, _)) = open_waiting(addr);
        assert_eq!(tag, b'R', "a place came free");
    })
    .await;
}

/// `ssoOAuthFlow=authenticationCode` from psql is answered with the device grant (issue 11,
/// finding 9: a server-side code flow's link signs the terminal in as whoever opens it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_asking_for_the_code_flow_gets_the_device_grant() {
    let server = start().await;
    let (idp, _keys) = provider_of(&server, &[]).await;
    configure(&server, &idp.url).await;
    let psql = waiting_psql(
        server.sql_addr().port(),
        "@example_database",
        "example_database",
        "-c ssoOAuthFlow=authenticationCode",
        "SELECT CURRENT_USER(), CURRENT_GROUPS()",
    );
    let (psql, why) = line_with(psql, "not offered to terminals").await;
    assert!(why.starts_with("NOTICE:"), "{why}");
    let (psql, line) = line_with(psql, "enter the code").await;
    approve(&idp, &user_code(&line), false).await;
    let (status, out, err) = finish(psql).await;
    assert_eq!(status, 0, "{err}");
    assert_eq!(out, "alice@example.com|analysts@example_database");
    assert!(
        !err.contains("/auth?"),
        "no authorization link is shown: {err}"
    );
}

/// POSTs JSON: the status and the body's JSON (null if it is none).
async fn post_json(
    web: &reqwest::Client,
    server: &InProcess,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = web
        .post(server.http(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(json!(null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_device_grant_and_verify() {
    let server = start().await;
    let (idp, _keys) = provider_of(&server, &[]).await;
    configure(&server, &idp.url).await;
    let web = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let post = |path: &'static str, body: serde_json::Value| post_json(&web, &server, path, body);

    let (status, grant) = post(
        "/v1/sso_device_grant",
        json!({"database": "example_database"}),
    )
    .await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["status"]["reason"], "Device authorization initiated");
    let code = grant["user_code"].as_str().unwrap().to_owned();
    let handle = grant["device_handle"].as_str().unwrap().to_owned();
    assert!(handle.len() >= 40, "a secret handle: {handle}");
    assert!(grant["verification_uri_complete"]
        .as_str()
        .unwrap()
        .ends_with(&format!("user_code={code}")));
    assert!(
        grant.get("device_code").is_none(),
        "the device code stays secret"
    );

    // Not approved yet: a timeout, callable again.
    let (status, v) = post(
        "/v1/sso_device_grant_verify",
        json!({"device_handle": handle, "database": "example_database", "timeout": 1}),
    )
    .await;
    assert_eq!(status, 408, "{v}");
    assert_eq!(v["status"]["sql_state"], "57014");
    // Wrong database, bad timeout, unknown code, malformed body: clear errors.
    for (body, want) in [
        (json!({"device_handle": handle, "timeout": 1}), 404),
        (
            json!({"device_handle": handle, "database": "example_database", "timeout": 0}),
            400,
        ),
        (
            json!({"device_handle": handle, "database": "example_database", "timeout": 601}),
            400,
        ),
        (
            json!({"device_handle": "NOPE-NOPE", "database": "example_database"}),
            404,
        ),
        // The public user code alone claims nothing (finding 9 of issue 11).
        (
            json!({"device_handle": code, "user_code": code, "database": "example_database", "timeout": 1}),
            404,
        ),
        (
            json!({"user_code": code, "database": "example_database"}),
            400,
        ),
        (json!({"database": "example_database"}), 400),
    ] {
        let (status, v) = post("/v1/sso_device_grant_verify", body.clone()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert_ne!(v["status"]["sql_state"], "00000");
    }
    let (status, v) = post("/v1/sso_device_grant", json!({"database": "nope"})).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = post("/v1/sso_device_grant", json!({"database": "system"})).await;
    assert_eq!(status, 401, "{v}");
    assert!(v["status"]["reason"]
        .as_str()
        .unwrap()
        .contains("no SSO integration"));

    approve(&idp, &code, false).await;
    let (status, v) = post(
        "/v1/sso_device_grant_verify",
        json!({"device_handle": handle, "database": "example_database", "timeout": 30}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["username"], "alice@example.com");
    assert_eq!(v["database"], "example_database");
    let token = v["access_token"].as_str().unwrap();
    let body = web
        .get(server.http("/v1/execute/example_database?statement=SELECT%20CURRENT_GROUPS()"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("analysts@example_database"), "{body}");
    // Used once.
    let (status, _) = post(
        "/v1/sso_device_grant_verify",
        json!({"device_handle": handle, "database": "example_database", "timeout": 1}),
    )
    .await;
    assert_eq!(status, 404);

    // A denied grant answers 401 with the reason, then is forgotten.
    let (_, grant) = post(
        "/v1/sso_device_grant",
        json!({"database": "example_database"}),
    )
    .await;
    let code = grant["user_code"].as_str().unwrap().to_owned();
    let handle = grant["device_handle"].as_str().unwrap().to_owned();
    approve(&idp, &code, true).await;
    let (status, v) = post(
        "/v1/sso_device_grant_verify",
        json!({"device_handle": handle, "database": "example_database", "timeout": 30}),
    )
    .await;
    assert_eq!(status, 401, "{v}");
    assert!(
        v["status"]["reason"].as_str().unwrap().contains("denied"),
        "{v}"
    );
}

/// RFC 8628 §3.5 against a scripted provider (tests/idp/rogue.mjs): no `interval` means 5 s;
/// `slow_down` adds 5 s to this and every later poll; `authorization_pending` keeps polling.
/// The client only waits (nobody approves anything): tokio-postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_lengthens_every_later_poll() {
    let server = start().await;
    let rogue = blocking(|| NodeServer::rogue(&[])).await;
    harness::inprocess::example(&server).await;
    harness::idp::rogue_device_integration_in(
        &server,
        &rogue,
        &["slow_down", "authorization_pending", "token"],
    )
    .await;
    let addr = server.sql_addr();
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user("@example_database")
        .dbname("example_database")
        .options("-c identityprovider=rogue_sso");
    // (psql's connect_timeout=60 bounded the whole sign-in; so does this)
    let (client, connection) = tokio::time::timeout(
        Duration::from_secs(60),
        config.connect(tokio_postgres::NoTls),
    )
    .await
    .expect("the sign-in took over 60 s")
    .unwrap_or_else(|e| panic!("{}", error_text(&e)));
    tokio::spawn(connection);
    assert_eq!(
        rows(&client, "SELECT CURRENT_USER(), CURRENT_GROUPS()").await,
        ["device@example.com|analysts@example_database"]
    );
    let stats: serde_json::Value = reqwest::get(format!("{}/stats", rogue.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let polls: Vec<i64> = stats["device_polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(polls.len(), 3, "{polls:?}");
    assert!(
        polls[1] - polls[0] >= 9_500,
        "5 s + 5 s after slow_down: {polls:?}"
    );
    assert!(polls[2] - polls[1] >= 9_500, "and it stays 10 s: {polls:?}");
}

/// Graceful shutdown (issue 16, item 4): a psql waiting for its device-grant sign-in to be
/// approved is told the server is shutting down (FATAL 57P01) instead of being left to wait,
/// and the server exits 0 without waiting for the approval. (The binary, since its exit on
/// SIGTERM is the subject.)
#[test]
fn a_waiting_device_sign_in_is_told_when_the_server_stops() {
    let mut server = Server::start();
    let (idp, _keys) = provider(server.http_port, &[]);
    harness::example(&server);
    let statements = configure_statements(&idp.url);
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        ADMIN_PASSWORD,
        &statements,
    );
    assert!(ok, "{err}");
    let mut psql = waiting_psql(
        server.sql_port,
        "@example_database",
        "example_database",
        "",
        "SELECT 1",
    );
    psql.line_with("enter the code");
    let began = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let stopped_in = began.elapsed();
    let (code, out, err) = psql.finish();
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("57P01") || err.contains("shutting down"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    println!("stopped in {stopped_in:?} with a device sign-in waiting");
}
