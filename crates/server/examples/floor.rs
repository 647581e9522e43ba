//! The floor under `scripts/bench-connection-cost.sh`: the least a tokio server spends on one
//! `pgbench -C` connection that signs in and runs `SELECT 1`. Canned answers, no checks of any
//! kind (any password is taken), so it is never a server to run for anything but the benchmark;
//! it binds loopback TCP and a Unix socket in the given directory, as Portcullis does.
//! Usage: `floor <socket dir> <port>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version number of an SSLRequest.
const SSL_REQUEST: u32 = 80_877_103;

fn message(tag: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads one message (a startup packet has no tag) into `body`; its tag, 0 for a startup packet.
async fn read<S: AsyncRead + Unpin>(s: &mut S, body: &mut Vec<u8>, startup: bool) -> Option<u8> {
    let tag = if startup { 0 } else { s.read_u8().await.ok()? };
    let len = usize::try_from(s.read_u32().await.ok()?).ok()?;
    if !(4..=1 << 16).contains(&len) {
        return None;
    }
    body.resize(len - 4, 0);
    s.read_exact(body).await.ok()?;
    Some(tag)
}

fn signed_in() -> Vec<u8> {
    let mut out = Vec::new();
    message(b'R', &0u32.to_be_bytes(), &mut out);
    for (name, value) in [
        ("server_version", "15.0"),
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
    ] {
        message(b'S', format!("{name}\0{value}\0").as_bytes(), &mut out);
    }
    message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2], &mut out);
    message(b'Z', b"I", &mut out);
    out
}

fn one_row() -> Vec<u8> {
    let mut out = Vec::new();
    let mut description = Vec::new();
    description.extend_from_slice(&1u16.to_be_bytes());
    description.extend_from_slice(b"?column?\0");
    description.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // no table, no column
    description.extend_from_slice(&23u32.to_be_bytes()); // int4
    description.extend_from_slice(&4i16.to_be_bytes());
    description.extend_from_slice(&(-1i32).to_be_bytes());
    description.extend_from_slice(&0u16.to_be_bytes());
    message(b'T', &description, &mut out);
    message(b'D', &[0, 1, 0, 0, 0, 1, b'1'], &mut out);
    message(b'C', b"SELECT 1\0", &mut out);
    message(b'Z', b"I", &mut out);
    out
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> Option<()> {
    let mut body = Vec::new();
    read(&mut s, &mut body, true).await?;
    if body.get(..4)? == SSL_REQUEST.to_be_bytes() {
        s.write_all(b"N").await.ok()?;
        read(&mut s, &mut body, true).await?;
    }
    let mut ask = Vec::new();
    message(b'R', &3u32.to_be_bytes(), &mut ask); // a cleartext password, please
    s.write_all(&ask).await.ok()?;
    (read(&mut s, &mut body, false).await? == b'p').then_some(())?;
    s.write_all(&signed_in()).await.ok()?;
    while read(&mut s, &mut body, false).await? == b'Q' {
        s.write_all(&one_row()).await.ok()?;
    }
    Some(())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (dir, port) = (args.next().expect("socket dir"), args.next().expect("port"));
    let path = format!("{dir}/.s.PGSQL.{port}");
    let _ = std::fs::remove_file(&path);
    let unix = tokio::net::UnixListener::bind(&path).unwrap();
    let tcp = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    println!("listening");
    tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = tcp.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(serve(s));
            }
        }
    });
    loop {
        if let Ok((s, _)) = unix.accept().await {
            tokio::spawn(serve(s));
        }
    }
}
