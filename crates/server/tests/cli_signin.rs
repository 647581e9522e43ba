//! The command-line client (`portcullis sql`, `portcullis token`) against the real server and
//! the real provider: the seed's connection string, the authorization code flow through the
//! loopback listener (driven headlessly by following the authorization URL with a cookie jar),
//! the token cache on the second run, renewal with the refresh token, the device grant with its
//! QR code, `portcullis token` for psql's PGPASSWORD, and clear errors for bad settings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::idp::NodeServer;
use harness::process::Watched;
use harness::web::Web;
use harness::{Server, ADMIN_PASSWORD};

/// `example_database` whose assigned integration `cli_sso` is the provider's public native
/// client (no secret, PKCE), with offline access for refresh tokens.
fn configure(server: &Server, issuer: &str) {
    harness::example(server);
    let sql = format!(
        "CREATE SSO INTEGRATION cli_sso PROTOCOL oidc issuer = \"{issuer}\", \
         client_id = \"native-client\", default_group = sso_users, \
         additional_scopes = [email, groups], groups_claim_ids = [groups], allow_offline_access = true"
    );
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        ADMIN_PASSWORD,
        &[
            "CREATE GROUP sso_users",
            &sql,
            "ALTER DATABASE example_database SET SSO INTEGRATION cli_sso",
        ],
    );
    assert!(ok, "{err}");
}

/// `portcullis <args…>` with the server's HTTP address and a private token cache.
fn cli(server: &Server, cache: &Path, args: &[&str]) -> Watched {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args)
        .args(["--http", &server.http(""), "--token-cache"])
        .arg(cache)
        .args([
            "--no-browser",
            "--redirect-port",
            "0",
            "--sign-in-timeout",
            "60",
        ])
        .env_remove("PGPASSWORD")
        .env_remove("BROWSER");
    Watched::spawn(cmd)
}

fn seed_connection(server: &Server) -> String {
    format!(
        "jdbc:ocient://127.0.0.1:{}/example_database;handshake=SSO;user=;password=;",
        server.sql_port
    )
}

/// The data row of the one-row table the CLI prints.
fn only_row(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 4, "{out}");
    assert!(lines[1].starts_with("---"), "{out}");
    assert_eq!(lines[3], "(1 row)", "{out}");
    lines[2]
        .split('|')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("|")
}

#[test]
fn code_flow_then_the_cache_then_a_refresh() {
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("keys.json"), false);
    configure(&server, &idp.url);
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache/tokens.json");
    let conn = seed_connection(&server);
    let query = "SELECT CURRENT_USER(), CURRENT_GROUPS()";

    // First run: the code flow. The test is the browser: it follows the printed URL through
    // the provider (auto-approving interactions) to the CLI's loopback listener.
    let mut run = cli(&server, &cache, &["sql", &conn, "-c", query]);
    let url = run.line_with(&format!("{}/auth?", idp.url));
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("client_id=native-client"), "{url}");
    assert!(
        url.contains("localhost%3A"),
        "the redirect is the loopback listener: {url}"
    );
    let web = Web::new();
    let callback = web.follow_until(&url, "http://localhost:");
    assert!(
        callback.contains("/ocient/oauth2/v1/callback?"),
        "{callback}"
    );
    let page = web.get(&callback);
    assert_eq!(page.status, 200, "{}", page.body);
    let (code, out, err) = run.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        only_row(&out),
        "alice@example.com|analysts@example_database"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token cache is private");
    }
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let entry = cached["entries"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert!(entry["refresh_token"].is_string(), "{entry}");

    // Second run: the cache; no URL, no browser.
    let (code, out, err) = cli(&server, &cache, &["sql", &conn, "-c", query]).finish();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("/auth?"), "no new sign-in: {err}");
    assert_eq!(
        only_row(&out),
        "alice@example.com|analysts@example_database"
    );

    // Third run with the cached tokens expired: renewed with the refresh token, no browser.
    let mut stale = cached.clone();
    let expired = "e30.eyJleHAiOjF9.e30"; // {"exp": 1}
    for e in stale["entries"].as_object_mut().unwrap().values_mut() {
        e["id_token"] = expired.into();
        e["access_token"] = expired.into();
    }
    std::fs::write(&cache, serde_json::to_vec(&stale).unwrap()).unwrap();
    let (code, out, err) = cli(&server, &cache, &["sql", &conn, "-c", query]).finish();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("refreshed token"), "{err}");
    assert!(!err.contains("/auth?"), "{err}");
    assert_eq!(
        only_row(&out),
        "alice@example.com|analysts@example_database"
    );

    // `portcullis token` prints the cached token for psql's PGPASSWORD.
    let (code, token, err) = cli(&server, &cache, &["token", &conn]).finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let (ok, out, err) = server.psql(
        "id_token",
        "example_database",
        &token,
        &["SELECT CURRENT_USER()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "alice@example.com");

    // A statement error: printed with its position, exit status 1.
    let (code, _, err) = cli(&server, &cache, &["sql", &conn, "-c", "SELEC 1"]).finish();
    assert_eq!(code, 1);
    assert!(
        err.contains("ERROR:  syntax error") && err.contains("at character 1"),
        "{err}"
    );
}

#[test]
fn device_grant_with_qr_code_and_clear_errors() {
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let idp = NodeServer::provider(0, &keys.path().join("keys.json"), false);
    configure(&server, &idp.url);
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("tokens.json");
    let conn = format!(
        "host=127.0.0.1;port={};database=example_database;handshake=SSO;ssoOAuthFlow=deviceGrant;identityprovider=cli_sso",
        server.sql_port
    );

    let mut run = cli(
        &server,
        &cache,
        &["sql", &conn, "-c", "SELECT CURRENT_USER()"],
    );
    let line = run.line_with("enter the code");
    let code = line.rsplit(' ').next().unwrap().to_owned();
    run.line_with("/device?user_code=");
    let qr = run.line_with("█");
    assert!(qr.chars().all(|c| "█▀▄ ".contains(c)), "a QR code: {qr}");
    harness::idp::approve_device(&idp, &code, false);
    let (status, out, err) = run.finish();
    assert_eq!(status, 0, "{err}");
    assert_eq!(only_row(&out), "alice@example.com");

    // Denied: exit status 2 and why; nothing cached for a denied sign-in.
    let denied_cache = home.path().join("denied.json");
    let mut run = cli(&server, &denied_cache, &["sql", &conn, "-c", "SELECT 1"]);
    let code = run
        .line_with("enter the code")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    harness::idp::approve_device(&idp, &code, true);
    let (status, out, err) = run.finish();
    assert_eq!(status, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("the sign-in was denied at the identity provider"),
        "{err}"
    );
    assert!(!denied_cache.exists());

    // Bad settings are refused before anything is sent.
    for (conn, expected) in [
        ("handshake=kerberos".to_owned(), "unknown handshake \"kerberos\""),
        ("colour=blue".to_owned(), "unknown connection property \"colour\""),
        (
            format!("host=127.0.0.1;port={};database=system;handshake=SSO", server.sql_port),
            "the server refused SSO for database \"system\"",
        ),
        (
            format!(
                "host=127.0.0.1;port={};database=example_database;handshake=SSO;identityprovider=nope",
                server.sql_port
            ),
            "SSO integration \"nope\" does not exist",
        ),
    ] {
        let (status, out, err) = cli(&server, &cache, &["sql", &conn, "-c", "SELECT 1"]).finish();
        assert_eq!(status, 2, "{conn}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(expected), "{conn}: {err}");
    }

    // Password sign-in through the same client.
    let (status, out, err) = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "sql",
            "-p",
            &server.sql_port.to_string(),
            "-U",
            "alice@example_database",
        ])
        .args(["-d", "example_database", "-c", "SELECT CURRENT_USER()"])
        .env("PGPASSWORD", "Alice-pass-1")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(status, 0, "{err}");
    assert_eq!(only_row(&out), "alice@example_database");
}

/// The interactive shell as a person uses it, in a real terminal (tmux): a statement over two
/// lines, the table, the Up arrow recalling it from history, `\q`.
#[test]
fn interactive_shell_in_a_terminal() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let session = format!("portcullis-{}", server.sql_port);
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let command = format!(
        "env HOME={} PGPASSWORD={ADMIN_PASSWORD} {} sql -p {} -U admin@system -d system; sleep 30",
        home.path().display(),
        env!("CARGO_BIN_EXE_portcullis"),
        server.sql_port
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "40",
        &command,
    ]);
    let screen = |want: &str, count: usize| {
        for _ in 0..150 {
            let s = tmux(&["capture-pane", "-t", &session, "-p"]);
            if s.matches(want).count() >= count {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{want:?} did not appear {count} times: {}",
            tmux(&["capture-pane", "-t", &session, "-p"])
        );
    };
    screen("system=>", 1);
    tmux(&["send-keys", "-t", &session, "SELECT name", "Enter"]);
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "FROM sys.databases ORDER BY id\\;",
        "Enter",
    ]);
    let s = screen("(1 row)", 1);
    assert!(
        s.contains("system-> FROM sys.databases"),
        "a continuation prompt: {s}"
    );
    assert!(s.contains(" name\n--------\n system\n(1 row)"), "{s}");
    tmux(&["send-keys", "-t", &session, "Up"]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    screen("(1 row)", 2);
    tmux(&["send-keys", "-t", &session, "\\q", "Enter"]);
    let history = home.path().join(".portcullis_history");
    for _ in 0..150 {
        if history.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .output();
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("SELECT name"), "{saved}");
}

/// TLS: the client verifies the server's certificate (here the dev certificate given as
/// `sslrootcert`) and refuses one it cannot verify.
#[test]
fn tls_with_a_verified_certificate() {
    let server = Server::start_env(&[("PORTCULLIS_DEV_TLS", "1")]);
    harness::example(&server);
    let cert = server.data_dir.join("dev-tls/cert.pem");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args([
                "sql",
                "--host",
                "localhost",
                "-p",
                &server.sql_port.to_string(),
            ])
            .args(["-U", "alice@example_database", "-d", "example_database"])
            .args(["-c", "SELECT CURRENT_USER()"])
            .args(extra)
            .env("PGPASSWORD", "Alice-pass-1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let root = format!("sslrootcert={}", cert.display());
    let (code, out, err) = run(&["--set", "sslmode=require", "--set", &root]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(only_row(&out), "alice@example_database");
    let tls_sessions =
        server.admin(&["SELECT count(*) FROM sys.sessions WHERE user = 'alice@example_database'"]);
    assert_eq!(tls_sessions, "0", "the CLI's session ended with it");
    // The system's roots do not include the dev certificate: refused, nothing sent.
    let (code, out, err) = run(&["--set", "sslmode=require"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("connecting to localhost"), "{err}");
}
