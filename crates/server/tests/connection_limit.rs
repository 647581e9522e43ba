//! `max_connections` (issue 16, item 3): a PostgreSQL client over the limit is told so —
//! `FATAL 53300` in an ErrorResponse, as PostgreSQL says "too many clients" — instead of finding
//! its socket dropped; the sessions already open go on, and a slot that frees is usable again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;

use harness::{LivePsql, Server, ADMIN_PASSWORD};

#[test]
fn clients_over_the_limit_get_53300() {
    let server = Server::start_env(&[("PORTCULLIS_MAX_CONNECTIONS", "3")]);
    let mut held: Vec<LivePsql> = (0..3)
        .map(|_| LivePsql::connect(&server, "admin@system", "system", ADMIN_PASSWORD))
        .collect();
    // A raw client over the limit: its startup is answered with the error, then the end.
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", server.sql_port)).unwrap();
    extra
        .write_all(&harness::wire::startup_packet("admin@system", "system"))
        .unwrap();
    let said = harness::wire::read_all(&mut extra);
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
    // psql over the limit says the same.
    let (ok, _, err) = server.psql("admin@system", "system", ADMIN_PASSWORD, &["SELECT 1"]);
    assert!(
        !ok && err.contains("sorry, too many clients already"),
        "{err}"
    );
    // The open sessions go on; a freed slot is usable again.
    assert_eq!(held[0].run("SELECT 'still here'"), "still here");
    held.pop();
    let mut ok = false;
    for _ in 0..50 {
        let (good, out, _) =
            server.psql("admin@system", "system", ADMIN_PASSWORD, &["SELECT 'in'"]);
        if good && out == "in" {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "the freed slot was never usable");
}
