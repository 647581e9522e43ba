//! The SQL listener on a Unix-domain socket (`sql_socket_dir`), named as PostgreSQL names its
//! own so libpq's clients find it with `-h <dir> -p <port>`: sign-ins work there as over TCP,
//! a wrong password is FATAL and recorded, an SSLRequest is answered "no" as PostgreSQL does,
//! and the socket's file is gone when the server stops.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::path::Path;

use harness::inprocess::{db_error, rows, settings_in, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn connect_unix(
    dir: &Path,
    port: u16,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host_path(dir)
        .port(port)
        .user(user)
        .dbname("system")
        .password(password)
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A server in the test's process with its socket in `sockets`.
async fn start_in(sockets: &Path) -> harness::inprocess::InProcess {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.sql_socket_dir = Some(sockets.to_owned());
    start_with(dir, settings).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sign_in_on_the_unix_socket() {
    let sockets = tempfile::tempdir().unwrap();
    let server = start_in(sockets.path()).await;
    let port = server.sql_addr().port();
    let path = sockets.path().join(format!(".s.PGSQL.{port}"));
    assert!(path.exists(), "no socket at {}", path.display());

    // tokio-postgres, as any libpq-style client: host is the directory.
    let admin = connect_unix(
        sockets.path(),
        port,
        "admin@system",
        harness::ADMIN_PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&admin, "SELECT CURRENT_USER()").await,
        ["admin@system"]
    );

    // A wrong password: FATAL 28P01, the connection closed, the attempt in the audit trail
    // under the host's own address (port 0: the Unix socket).
    let wrong = connect_unix(sockets.path(), port, "admin@system", "Not-the-password-1")
        .await
        .expect_err("a wrong password signed in");
    assert!(
        db_error(&wrong).starts_with("28P01"),
        "{}",
        db_error(&wrong)
    );
    let events = rows(
        &admin,
        "SELECT result, peer FROM sys.authentication_events \
         WHERE identity = 'admin@system' ORDER BY id",
    )
    .await;
    assert!(
        events.contains(&"failure|127.0.0.1:0".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"success|127.0.0.1:0".to_owned()),
        "{events:?}"
    );

    // psql, unmodified, with its usual `-h <directory>`.
    let psql = std::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-h"])
        .arg(sockets.path())
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "admin@system",
            "system",
            "-c",
        ])
        .arg("SELECT CURRENT_USER()")
        .env("PGPASSWORD", harness::ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "admin@system",
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );

    // An SSLRequest on the Unix socket: "N" (no TLS there, as in PostgreSQL), then the
    // startup goes on.
    let mut raw = tokio::net::UnixStream::connect(&path).await.unwrap();
    raw.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    raw.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    let mut startup = Vec::new();
    for part in ["user", "admin@system", "database", "system"] {
        startup.extend_from_slice(part.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut message = ((startup.len() + 8) as u32).to_be_bytes().to_vec();
    message.extend_from_slice(&196_608u32.to_be_bytes());
    message.extend_from_slice(&startup);
    raw.write_all(&message).await.unwrap();
    raw.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"R", "the server asks for the password");

    // Garbage instead of a startup message: an error, and the server goes on.
    let mut garbage = tokio::net::UnixStream::connect(&path).await.unwrap();
    garbage.write_all(&[0xff; 64]).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        garbage.read_to_end(&mut rest),
    )
    .await
    .expect("the server kept a garbage connection open");
    assert_eq!(rows(&admin, "SELECT 1").await, ["1"]);

    // Stopped, the server removes its socket; started again, it binds it again.
    drop(admin);
    server.running.stop().await;
    assert!(!path.exists(), "the socket outlived the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_another_server_answers_on_is_not_taken() {
    let sockets = tempfile::tempdir().unwrap();
    let first = start_in(sockets.path()).await;
    let port = first.sql_addr().port();

    // A second server wanting the same socket name (the first one's port, on another
    // address) refuses to start, and the first one's socket still works.
    let dir2 = tempfile::tempdir().unwrap();
    let mut second = settings_in(dir2.path());
    second.sql_addr = format!("127.0.0.2:{port}").parse().unwrap();
    second.sql_socket_dir = Some(sockets.path().to_owned());
    let Err(refused) = start_with(dir2, second).await else {
        panic!("two servers on one socket");
    };
    assert!(
        format!("{refused:#}").contains("another server is listening"),
        "{refused:#}"
    );
    let admin = connect_unix(
        sockets.path(),
        port,
        "admin@system",
        harness::ADMIN_PASSWORD,
    )
    .await
    .unwrap();
    assert_eq!(rows(&admin, "SELECT 1").await, ["1"]);
}
