//! End to end: the "done when" walk-through with psql and a restart, pgbench, bad
//! input that must change nothing, lockout, and FATAL-closes-the-connection over raw sockets.
//! The psql and pgbench tests start the binary (they are about those clients); the others run
//! the server in the test's process with tokio-postgres as the client (issue 16, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use harness::inprocess::{self, start, InProcess};
use harness::wire::{message, read_all, read_message, startup_packet};
use harness::{catalog_dump, example, Server, ADMIN_PASSWORD};

/// Runs blocking raw-socket work off the async workers that serve it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[test]
fn done_when_walkthrough_with_psql_http_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path().to_path_buf());
    example(&server);
    let (ok, out, err) = server.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["SELECT CURRENT_USER(), CURRENT_DATABASE()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "alice@example_database|example_database");
    // `alice` with dbname example_database means the same user.
    let (ok, out, _) = server.psql(
        "alice",
        "example_database",
        "Alice-pass-1",
        &["SELECT CURRENT_GROUPS()"],
    );
    assert!(ok);
    assert_eq!(out, "analysts@example_database");
    let (ok, _, err) = server.psql(
        "alice@example_database",
        "example_database",
        "wrong-pass",
        &["SELECT 1"],
    );
    assert!(!ok);
    assert!(
        err.contains("FATAL") && err.contains("password authentication failed"),
        "{err}"
    );
    // Unknown user: the same answer.
    let (ok, _, err2) = server.psql(
        "mallory@example_database",
        "example_database",
        "wrong-pass",
        &["SELECT 1"],
    );
    assert!(!ok);
    assert!(
        err2.contains("password authentication failed for user \"mallory@example_database\""),
        "{err2}"
    );

    // HTTP: login, then execute with the token.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let login: serde_json::Value = client
            .post(server.http("/v1/login"))
            .json(&serde_json::json!({"username": "alice@example_database", "password": "Alice-pass-1"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(login["status"]["sql_state"], "00000", "{login}");
        assert_eq!(login["database"], "example_database");
        let token = login["access_token"].as_str().unwrap();
        let rows: serde_json::Value = client
            .post(server.http("/v1/execute/example_database"))
            .bearer_auth(token)
            .json(&serde_json::json!({"statement": "SELECT CURRENT_USER() AS u", "format": "collection"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(rows["data"][0]["u"], "alice@example_database", "{rows}");
        let bad = client
            .post(server.http("/v1/login"))
            .json(&serde_json::json!({"username": "alice@example_database", "password": "nope"}))
            .send().await.unwrap();
        assert_eq!(bad.status(), 401);
        let body: serde_json::Value = bad.json().await.unwrap();
        assert_eq!(body["status"]["sql_state"], "28P01");
        let basic: serde_json::Value = client
            .get(server.http("/v1/execute/system?statement=SELECT%20count(*)%20AS%20n%20FROM%20sys.users"))
            .basic_auth("admin@system", Some(ADMIN_PASSWORD))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(basic["data"][0][0], "2", "{basic}");
        let spec: serde_json::Value = client.get(server.http("/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(spec["paths"]["/v1/login"].is_object());
    });

    // Restart: everything is still there.
    let before = catalog_dump(&server);
    server.stop();
    let again = Server::start_in(dir.path().to_path_buf());
    assert_eq!(catalog_dump(&again), before);
    let (ok, out, _) = again.psql(
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
        &["SELECT CURRENT_USER()"],
    );
    assert!(ok);
    assert_eq!(out, "alice@example_database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_statements_fail_clearly_and_change_nothing() {
    let server = start().await;
    inprocess::example(&server).await;
    let before = inprocess::catalog_dump(&server).await;
    let cases: &[(&str, &str)] = &[
        ("CREATE USR bob PASSWORD 'x'", "42601"),
        ("CREATE USER bob@example_database PASSWORD", "42601"),
        ("CREATE DATABASE example_database", "42710"),
        (
            "CREATE USER alice@example_database PASSWORD = 'Other-pass-1'",
            "42710",
        ),
        ("DROP USER nobody@example_database", "42704"),
        (
            "ALTER GROUP nogroup@example_database ADD USER alice",
            "42704",
        ),
        ("DROP DATABASE nowhere", "3D000"),
        ("DROP DATABASE system", "22023"),
        (
            "GRANT FLY ON SYSTEM TO USER alice@example_database",
            "42601",
        ),
        ("SELECT * FROM sys.users_verifiers", "42P01"),
        ("SELECT * FROM sqlite_master", "42501"),
        ("ALTER SYSTEM SET password_minimum_length = -1", "22023"),
        // Atomic: the first statement is undone when the second fails.
        (
            "CREATE DATABASE partial; CREATE USER ghost@nowhere PASSWORD 'Ghost-pass-1'",
            "3D000",
        ),
    ];
    for (sql, state) in cases {
        let err = server.admin_sql_fails(sql).await;
        assert!(
            err.starts_with(&format!("ERROR {state} ")),
            "{sql}: expected {state}, got {err}"
        );
    }
    // A syntax error says what was expected, and where (psql's `LINE 1:` and caret).
    let admin = server.admin().await;
    let sql = "CREATE GROUP analysts@example_database extra";
    let e = admin.simple_query(sql).await.unwrap_err();
    let e = e.as_db_error().unwrap();
    assert!(e.message().contains("expected end of statement"), "{e:?}");
    assert_eq!(
        e.position(),
        Some(&tokio_postgres::error::ErrorPosition::Original(
            u32::try_from(sql.find("extra").unwrap() + 1).unwrap()
        )),
        "{e:?}"
    );
    assert_eq!(inprocess::catalog_dump(&server).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_settings_and_privileges_are_enforced() {
    let server = start().await;
    inprocess::example(&server).await;
    server
        .admin_sql(&[
            "ALTER SYSTEM SET password_minimum_length = 10",
            "ALTER DATABASE example_database SET password_complexity_level = 2",
            "ALTER GROUP analysts@example_database SET password_no_repeat_count = 2",
        ])
        .await;
    let before = inprocess::catalog_dump(&server).await;
    for (sql, text) in [
        (
            "CREATE USER bob@example_database PASSWORD 'Sh0rt!'",
            "at least 10 characters",
        ),
        (
            "CREATE USER bob@example_database PASSWORD 'Simplepassword1'",
            "symbol",
        ),
        (
            "ALTER USER alice@example_database PASSWORD = 'Alice-pass-1'",
            "used recently",
        ),
    ] {
        let err = server.admin_sql_fails(sql).await;
        assert!(err.contains("28P01") || err.contains(text), "{sql}: {err}");
        assert!(err.contains(text), "{sql}: {err}");
    }
    assert_eq!(inprocess::catalog_dump(&server).await, before);
    // A long passphrase is fine.
    let long = format!("Long-{}-1", "x".repeat(300));
    server
        .admin_sql(&[&format!(
            "CREATE USER bob@example_database PASSWORD '{long}'"
        )])
        .await;
    // bob has no USE on the database: refused with 28000, connection closed.
    let (ok, _, err) = server
        .sql(
            "bob@example_database",
            "example_database",
            &long,
            &["SELECT 1"],
        )
        .await;
    assert!(
        !ok && err.starts_with("FATAL 28000") && err.contains("USE privilege"),
        "{err}"
    );
    // alice is not an administrator.
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["CREATE DATABASE mine"],
        )
        .await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["GRANT USE ON DATABASE example_database TO USER bob@example_database"],
        )
        .await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    // A role carries the privilege once granted.
    server
        .admin_sql(&[
            "GRANT ROLE database_administrator@example_database TO USER bob@example_database",
        ])
        .await;
    let (ok, out, err) = server
        .sql(
            "bob@example_database",
            "example_database",
            &long,
            &["SELECT CURRENT_USER()"],
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(out, "bob@example_database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_failures_disable_the_user_until_enabled() {
    let server = start().await;
    inprocess::example(&server).await;
    server
        .admin_sql(&["ALTER DATABASE example_database SET password_invalid_attempt_limit = 2"])
        .await;
    for _ in 0..2 {
        let (ok, _, err) = server
            .sql(
                "alice@example_database",
                "example_database",
                "bad-guess",
                &["SELECT 1"],
            )
            .await;
        assert!(
            !ok && err.starts_with("FATAL 28P01") && err.contains("password authentication failed"),
            "{err}"
        );
    }
    // The right password now meets a disabled user and sees exactly what a wrong one sees
    // (no oracle for guessing against a locked account).
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["SELECT 1"],
        )
        .await;
    assert!(
        !ok && err.starts_with("FATAL 28P01")
            && err.contains("password authentication failed")
            && !err.contains("disabled"),
        "{err}"
    );
    assert_eq!(
        server
            .admin_sql(&["SELECT state FROM sys.users WHERE name = 'alice'"])
            .await,
        "DISABLED"
    );
    server
        .admin_sql(&["ALTER USER alice@example_database ENABLE"])
        .await;
    let (ok, _, err) = server
        .sql(
            "alice@example_database",
            "example_database",
            "Alice-pass-1",
            &["SELECT 1"],
        )
        .await;
    assert!(ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_while_connected() {
    let server = start().await;
    inprocess::example(&server).await;
    let (admin, connection) =
        InProcess::connect_at(server.sql_addr(), "admin@system", "system", ADMIN_PASSWORD)
            .await
            .unwrap();
    assert_eq!(
        inprocess::rows(&admin, "SELECT user, database, authentication_method, protocol FROM sys.sessions WHERE id = CURRENT_SESSION_ID()").await,
        ["admin@system|system|password (SCRAM-SHA-256)|postgresql"]
    );
    // Once that client has gone, its session is gone: only the new one is listed.
    drop(admin);
    connection.await.unwrap().unwrap();
    let started = Instant::now();
    loop {
        let count = server
            .admin_sql(&["SELECT count(*) FROM sys.sessions"])
            .await;
        if count == "1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{count} sessions listed after the client left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn pgbench_connects_per_transaction() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n").unwrap();
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-C", "-c", "4", "-t", "10", "-f"])
        .arg(&script)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.sql_port.to_string(),
            "-U",
            "admin@system",
            "system",
        ])
        .env("PGPASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("number of transactions actually processed: 40/40"),
        "{text}"
    );
}

// ---- raw protocol ----

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// Runs a SCRAM exchange with a wrong password, then sends a query on the same socket: the
/// server must answer FATAL and close, and the query must never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_fatal_and_the_socket_runs_no_query() {
    let server = start().await;
    let addr = server.sql_addr();
    blocking(move || wrong_proof_then_a_query(addr)).await;
    // The server goes on.
    assert_eq!(server.admin_sql(&["SELECT 1"]).await, "1");
}

fn wrong_proof_then_a_query(addr: SocketAddr) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&startup_packet("admin@system", "system"))
        .unwrap();
    let (tag, body) = read_message(&mut s);
    assert_eq!(tag, b'R');
    assert_eq!(
        u32::from_be_bytes(body[..4].try_into().unwrap()),
        10,
        "SASL expected"
    );
    let client_first_bare = "n=,r=clientnonce123456";
    let mut init = b"SCRAM-SHA-256\0".to_vec();
    let cf = format!("n,,{client_first_bare}");
    init.extend_from_slice(&(cf.len() as u32).to_be_bytes());
    init.extend_from_slice(cf.as_bytes());
    s.write_all(&message(b'p', &init)).unwrap();
    let (tag, body) = read_message(&mut s);
    assert_eq!(tag, b'R');
    let server_first = String::from_utf8(body[4..].to_vec()).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0u32;
    for part in server_first.split(',') {
        match part.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = b64.decode(v).unwrap(),
            ("i=", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    let mut salted = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        &salt,
        b"not-the-password",
        &mut salted,
    );
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let client_final = format!("{without_proof},p={}", b64.encode(proof));
    s.write_all(&message(b'p', client_final.as_bytes()))
        .unwrap();
    // Pipeline a query right behind the failed proof.
    let _ = s.write_all(&message(b'Q', b"SELECT CURRENT_USER()\0"));
    let replies = read_all(&mut s);
    let error = replies
        .iter()
        .find(|(t, _)| *t == b'E')
        .expect("an ErrorResponse");
    let text = String::from_utf8_lossy(&error.1);
    assert!(text.contains("SFATAL") && text.contains("C28P01"), "{text}");
    assert!(
        !replies.iter().any(|(t, _)| matches!(t, b'D' | b'C' | b'T')),
        "a query ran after a failed sign-in: {replies:?}"
    );
    assert!(
        !replies
            .iter()
            .any(|(t, b)| *t == b'R' && b.len() >= 4 && b[..4] == [0, 0, 0, 0]),
        "AuthenticationOk after a bad proof"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_silent_clients_do_not_hurt_others() {
    let server = start().await;
    let addr = server.sql_addr();
    // A client that connects and sends nothing.
    let silent = blocking(move || TcpStream::connect(addr).unwrap()).await;
    // Garbage, an oversized length, non-UTF-8 in the startup parameters, and a query before startup.
    let mut garbage_inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        {
            let mut v = (0x7fff_fff0u32).to_be_bytes().to_vec();
            v.extend_from_slice(&196608u32.to_be_bytes());
            v
        },
        message(b'Q', b"SELECT 1\0"),
    ];
    let mut bad_utf8 = startup_packet("admin@system", "system");
    let at = bad_utf8.len() - 3;
    bad_utf8[at] = 0xff;
    garbage_inputs.push(bad_utf8);
    for input in garbage_inputs {
        let replies = blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let _ = s.write_all(&input);
            read_all(&mut s)
        })
        .await;
        assert!(
            !replies
                .iter()
                .any(|(t, b)| *t == b'R' && b.len() >= 4 && b[..4] == [0, 0, 0, 0]),
            "signed in on garbage"
        );
    }
    // Others still sign in and query, the silent client still connected.
    let (ok, out, err) = server
        .sql("admin@system", "system", ADMIN_PASSWORD, &["SELECT 'ok'"])
        .await;
    assert!(ok, "{err}");
    assert_eq!(out, "ok");
    drop(silent);
}
