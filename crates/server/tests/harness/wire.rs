//! Raw PostgreSQL protocol messages, for tests that must see exactly what the server sends.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// A protocol-3.0 startup packet with `user`, `database` and any further parameters.
pub fn startup_with(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

pub fn startup_packet(user: &str, database: &str) -> Vec<u8> {
    startup_with(&[("user", user), ("database", database)])
}

pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Reads backend messages until EOF (or timeout); returns (tag, body) pairs.
pub fn read_all(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= buf.len() {
        let len = u32::from_be_bytes(buf[i + 1..i + 5].try_into().unwrap()) as usize;
        let end = (i + 1 + len).min(buf.len());
        out.push((buf[i], buf[i + 5..end].to_vec()));
        i += 1 + len;
    }
    out
}

pub fn read_message(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).unwrap();
    (head[0], body)
}
