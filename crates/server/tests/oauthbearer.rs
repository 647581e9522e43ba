//! SASL OAUTHBEARER for PostgreSQL 18 clients (issue 13, item 5): a real libpq 18 (the one
//! psycopg 3's binary wheel bundles) discovers the provider from the server's challenge and
//! signs in with a bearer token whatever user name it sent — the identity comes from the token;
//! and on the wire, message by message, the exchange PostgreSQL's `auth-oauth.c` defines: the
//! challenge, the client's `\x01`, FATAL 28000; malformed messages refused with their SQLSTATE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use harness::idp::{rogue_id_token, NodeServer};
use harness::Server;
use serde_json::json;

fn token(rogue: &NodeServer, sub: &str, exp_in: i64) -> String {
    rogue_id_token(rogue, sub, exp_in, json!({}))
}

/// psycopg 3 over libpq 18: (success, stdout, stderr).
fn libpq18(server: &Server, user: &str, issuer: &str, token: &str) -> (bool, String, String) {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={user} dbname=example_database sslmode=disable \
         oauth_issuer={issuer} oauth_client_id=portcullis-test connect_timeout=10",
        server.sql_port
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/oauthbearer_client.py");
    let out = Command::new(harness::python())
        .arg(script)
        .arg(conninfo)
        .arg("SELECT CURRENT_USER()")
        .env("PORTCULLIS_TEST_TOKEN", token)
        // The test provider is plain http on loopback; libpq 18 wants https otherwise.
        .env("PGOAUTHDEBUG", "UNSAFE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[test]
fn a_postgresql_18_client_signs_in_with_a_bearer_token() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    harness::example(&server);
    harness::idp::rogue_example_integration(&server, &rogue, "analysts", "");
    let good = token(&rogue, "u1", 300);
    // Discovery, then the token on a second connection; the user name sent is not who signs in.
    let (ok, out, err) = libpq18(&server, "anyone", &rogue.url, &good);
    assert!(ok, "{err}");
    assert_eq!(out, "u1@example.com");
    assert!(
        err.contains(&format!(
            "discovery: {}/.well-known/openid-configuration scope: openid",
            rogue.url
        )),
        "{err}"
    );
    // A forged token: refused after the challenge, with PostgreSQL's sentence and ours.
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (ok, _, err) = libpq18(&server, "anyone", &rogue.url, &forged);
    assert!(!ok);
    assert!(
        err.contains("OAuth bearer authentication failed for user \"anyone\""),
        "{err}"
    );
    assert!(!err.contains(&forged), "the token was echoed: {err}");
    // An expired one too.
    let (ok, _, err) = libpq18(&server, "anyone", &rogue.url, &token(&rogue, "u2", -120));
    assert!(!ok && err.contains("expired"), "{err}");
    // Recorded as OAUTHBEARER sign-ins; password users of the database still use SCRAM.
    let events = server.admin(&[
        "SELECT result || '|' || identity || '|' || coalesce(reason, '') FROM \
         sys.authentication_events WHERE method = 'oauthbearer' AND event = 'sign_in' ORDER BY id",
    ]);
    assert_eq!(
        events, "success|u1@example.com|\nfailure||token_signature\nfailure||token_times",
        "{events}"
    );
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
}

/// A minimal frontend speaking raw protocol messages.
struct Wire(TcpStream);

impl Wire {
    fn connect(server: &Server, user: &str, database: &str) -> Self {
        let mut s = TcpStream::connect(("127.0.0.1", server.sql_port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut body = 196_608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", database)] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        s.write_all(&msg).unwrap();
        Self(s)
    }

    fn send(&mut self, kind: u8, body: &[u8]) {
        let mut msg = vec![kind];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(body);
        self.0.write_all(&msg).unwrap();
    }

    /// SASLInitialResponse with `mechanism` and `data`.
    fn initial(&mut self, mechanism: &str, data: &[u8]) {
        let mut body = mechanism.as_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        body.extend_from_slice(data);
        self.send(b'p', &body);
    }

    fn recv(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        self.0.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.0.read_exact(&mut body).unwrap();
        (head[0], body)
    }

    /// An Authentication message's code and data.
    fn auth(&mut self) -> (u32, Vec<u8>) {
        let (kind, body) = self.recv();
        assert_eq!(kind, b'R', "{}", String::from_utf8_lossy(&body));
        (
            u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            body[4..].to_vec(),
        )
    }

    /// An ErrorResponse's (severity, code, message); the connection is closed after it.
    fn error(&mut self) -> (String, String, String) {
        let (kind, body) = self.recv();
        assert_eq!(kind, b'E', "{}", String::from_utf8_lossy(&body));
        let mut fields = std::collections::HashMap::new();
        for f in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
            fields.insert(f[0], String::from_utf8_lossy(&f[1..]).into_owned());
        }
        let mut rest = [0u8; 64];
        let n = self.0.read(&mut rest).unwrap_or(0);
        assert_eq!(
            n,
            0,
            "open after FATAL: {:?}",
            String::from_utf8_lossy(&rest[..n])
        );
        (
            fields[&b'S'].clone(),
            fields[&b'C'].clone(),
            fields[&b'M'].clone(),
        )
    }
}

#[test]
fn the_exchange_on_the_wire_is_postgresql_18s() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    harness::example(&server);
    harness::idp::rogue_example_integration(&server, &rogue, "analysts", "");
    let mechanisms = |w: &mut Wire| {
        let (code, data) = w.auth();
        assert_eq!(code, 10);
        String::from_utf8(data).unwrap()
    };
    // Discovery: the challenge names the provider; the client's 0x01; FATAL 28000.
    let mut w = Wire::connect(&server, "bob", "example_database");
    assert_eq!(mechanisms(&mut w), "OAUTHBEARER\0\0");
    w.initial("OAUTHBEARER", b"n,,\x01auth=\x01\x01");
    let (code, data) = w.auth();
    assert_eq!(code, 11);
    let challenge: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(challenge["status"], "invalid_token");
    assert_eq!(
        challenge["openid-configuration"],
        format!("{}/.well-known/openid-configuration", rogue.url)
    );
    assert_eq!(challenge["scope"], "openid");
    w.send(b'p', b"\x01");
    let (severity, code, message) = w.error();
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "28000"));
    assert!(
        message.starts_with("OAuth bearer authentication failed for user \"bob\""),
        "{message}"
    );
    // Anything but 0x01 after the challenge: 08P01.
    let mut w = Wire::connect(&server, "bob", "example_database");
    mechanisms(&mut w);
    w.initial("OAUTHBEARER", b"n,,\x01auth=\x01\x01");
    w.auth();
    w.send(b'p', b"\x01\x01");
    assert_eq!(w.error().1, "08P01");
    // Channel binding and an authorization identity are refused as PostgreSQL does.
    for (data, sqlstate) in [
        (&b"p=tls-server-end-point,,\x01auth=\x01\x01"[..], "08P01"),
        (b"n,a=alice,\x01auth=\x01\x01", "0A000"),
        (b"n,,\x01auth=Bearer x\x01", "08P01"),
    ] {
        let mut w = Wire::connect(&server, "bob", "example_database");
        mechanisms(&mut w);
        w.initial("OAUTHBEARER", data);
        assert_eq!(w.error().1, sqlstate, "{}", String::from_utf8_lossy(data));
    }
    // Another mechanism than the one offered.
    let mut w = Wire::connect(&server, "bob", "example_database");
    mechanisms(&mut w);
    w.initial("SCRAM-SHA-256", b"n,,n=,r=abc");
    assert_eq!(w.error().1, "28000");
    // A good token: AuthenticationOk straight away (no SASLFinal), then ReadyForQuery.
    let mut w = Wire::connect(&server, "bob", "example_database");
    mechanisms(&mut w);
    let good = token(&rogue, "u3", 300);
    w.initial(
        "OAUTHBEARER",
        format!("n,,\x01host=localhost\x01auth=Bearer {good}\x01\x01").as_bytes(),
    );
    assert_eq!(w.auth().0, 0);
    loop {
        let (kind, _) = w.recv();
        if kind == b'Z' {
            break;
        }
        assert!(matches!(kind, b'S' | b'K'), "{}", kind as char);
    }
    // A full user name, or a database without an integration, is offered SCRAM.
    let mut w = Wire::connect(&server, "alice@example_database", "example_database");
    assert!(mechanisms(&mut w).starts_with("SCRAM-SHA-256"));
    let mut w = Wire::connect(&server, "bob", "system");
    assert!(mechanisms(&mut w).starts_with("SCRAM-SHA-256"));
}
