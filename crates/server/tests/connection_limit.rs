//! `max_connections` (issue 16, item 3): a PostgreSQL client over the limit is told so —
//! `FATAL 53300` in an ErrorResponse, as PostgreSQL says "too many clients" — instead of finding
//! its socket dropped; the sessions already open go on, and a slot that frees is usable again.
//! The server runs in the test's process; tokio-postgres is the client (issue 16, item 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{db_error, rows, settings_in, start_with};
use harness::ADMIN_PASSWORD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_the_limit_get_53300() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_in(dir.path());
    settings.max_connections = 3;
    let server = start_with(dir, settings).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(server.admin().await);
    }
    // A raw client over the limit: its startup is answered with the error, then the end.
    let addr = server.sql_addr();
    let said = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut extra = std::net::TcpStream::connect(addr).unwrap();
        extra
            .write_all(&harness::wire::startup_packet("admin@system", "system"))
            .unwrap();
        harness::wire::read_all(&mut extra)
    })
    .await
    .unwrap();
    assert_eq!(said.len(), 1, "one message, then the end: {said:?}");
    let (tag, body) = &said[0];
    let fields = String::from_utf8_lossy(body);
    assert_eq!(*tag, b'E');
    assert!(
        fields.contains("SFATAL")
            && fields.contains("C53300")
            && fields.contains("too many clients"),
        "{fields}"
    );
    // A client library over the limit reads the same error.
    let refused = server
        .connect("admin@system", "system", ADMIN_PASSWORD)
        .await
        .expect_err("a fourth connection signed in");
    let said = db_error(&refused);
    assert!(
        said.starts_with("53300 sorry, too many clients already"),
        "{said}"
    );
    // The open sessions go on; a freed slot is usable again (once the server has seen the
    // client leave).
    assert_eq!(rows(&held[0], "SELECT 'still here'").await, ["still here"]);
    drop(held.pop());
    let mut signed_in = None;
    for _ in 0..50 {
        if let Ok(c) = server
            .connect("admin@system", "system", ADMIN_PASSWORD)
            .await
        {
            signed_in = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let again = signed_in.expect("the freed slot was never usable");
    assert_eq!(rows(&again, "SELECT 'in'").await, ["in"]);
}
