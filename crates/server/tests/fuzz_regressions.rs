//! What the fuzz targets found (`fuzz/`, `bash scripts/fuzz.sh`), each kept as a test that
//! sends the input that broke the server (in the test's process; raw sockets, then
//! tokio-postgres to show the server goes on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use harness::inprocess::{rows, start, InProcess};
use harness::wire::{message, read_all, read_message, startup_packet};

/// A connection whose startup for admin@system was answered with an authentication request.
fn asked_to_authenticate(server: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(server).unwrap();
    s.write_all(&startup_packet("admin@system", "system"))
        .unwrap();
    let (tag, _) = read_message(&mut s);
    assert_eq!(tag, b'R', "asked to authenticate");
    s
}

/// Runs the raw-socket `cases` against a fresh server (off the async workers, which serve it),
/// then signs in well-formed and runs `SELECT 1`.
async fn goes_on_after(cases: impl FnOnce(SocketAddr) + Send + 'static) {
    let server: InProcess = start().await;
    let addr = server.sql_addr();
    tokio::task::spawn_blocking(move || cases(addr))
        .await
        .unwrap();
    assert_eq!(rows(&server.admin().await, "SELECT 1").await, ["1"]);
}

/// Sends `frame`; the server must answer FATAL 08P01 with `words` in it, then close.
fn refused_08p01(mut s: TcpStream, frame: &[u8], words: &str) -> Vec<(u8, Vec<u8>)> {
    s.write_all(frame).unwrap();
    let said = read_all(&mut s);
    assert!(
        said.iter().any(|(t, b)| *t == b'E' && {
            let f = String::from_utf8_lossy(b);
            f.contains("SFATAL") && f.contains("C08P01") && f.contains(words)
        }),
        "{words}: {said:?}"
    );
    said
}

/// `pg_connection`: a SASLInitialResponse whose declared data length runs past the message's
/// end (or is negative, or missing, or whose mechanism name has no NUL) made pgwire panic in
/// the connection's task (the client saw its connection dropped). Each is now a FATAL 08P01
/// "invalid SASLInitialResponse", and the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_sasl_initial_responses_are_protocol_violations() {
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut past_end = b"SCRAM-SHA-256\0".to_vec();
    past_end.extend_from_slice(&30i32.to_be_bytes());
    past_end.extend_from_slice(b"n,,n=,r=0123456789abcdefghijk"); // 29 bytes
    cases.push(("length past the end", past_end.clone()));
    let mut negative = b"SCRAM-SHA-256\0".to_vec();
    negative.extend_from_slice(&(-5i32).to_be_bytes());
    cases.push(("negative length", negative));
    cases.push(("no length", b"SCRAM-SHA-256\0\0\0".to_vec()));
    cases.push(("no NUL", b"SCRAM-SHA-256".to_vec()));
    goes_on_after(move |server| {
        for (what, body) in cases {
            let s = asked_to_authenticate(server);
            println!("{what}");
            refused_08p01(s, &message(b'p', &body), "invalid SASLInitialResponse");
        }
    })
    .await;
}

/// `pg_connection`: a message whose length field is below 4 (it counts its own four bytes)
/// made pgwire's decoder subtract past zero and panic. Refused first now: FATAL 08P01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_shorter_than_their_length_field_are_protocol_violations() {
    goes_on_after(|server| {
        for len in [0i32, 3, -1] {
            let s = asked_to_authenticate(server);
            let mut frame = vec![b'p'];
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(b"SCRAM-SHA-256\0");
            refused_08p01(s, &frame, &format!("invalid message length {len}"));
        }
    })
    .await;
}

/// `pg_connection`: a Parse (or Bind, Execute…) whose body is shorter than its fields made
/// pgwire's decoder panic, during sign-in and after it. Each frame is checked against its
/// message's layout first now: FATAL 08P01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_messages_are_protocol_violations() {
    let cases: [(&str, u8, &[u8]); 3] = [
        (
            "a Parse without its parameter count",
            b'P',
            b"s1\0SELECT 1\0\x01",
        ),
        ("an Execute without its row count", b'E', b"\0\0\0"),
        (
            "a Bind whose parameter runs past the end",
            b'B',
            b"\0\0\0\0\0\x01\0\0\0\x64ab",
        ),
    ];
    goes_on_after(move |server| {
        for (what, tag, body) in cases {
            let s = asked_to_authenticate(server);
            println!("{what}");
            refused_08p01(s, &message(tag, body), "does not fit");
        }
    })
    .await;
}
