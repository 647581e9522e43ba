//! A Portcullis server started once per fuzzing process (in-process, `portcullis::start`, on
//! loopback ports chosen by the OS), for the targets that speak to its listeners. A panic in
//! any of its tasks aborts the process, so libFuzzer sees it as a crash (tokio would otherwise
//! catch it and go on).

use std::net::SocketAddr;
use std::sync::LazyLock;

pub struct Served {
    pub rt: tokio::runtime::Runtime,
    pub sql: SocketAddr,
    pub http: SocketAddr,
}

pub static SERVER: LazyLock<Served> = LazyLock::new(|| {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        hook(info);
        std::process::abort();
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = std::env::temp_dir().join(format!("portcullis-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let settings = portcullis::config::resolve(
        None,
        portcullis::config::Overrides {
            data_dir: Some(dir),
            sql_addr: Some("127.0.0.1:0".into()),
            http_addr: Some("127.0.0.1:0".into()),
            dev_tls: false,
        },
    )
    .expect("settings");
    let running = rt
        .block_on(portcullis::start(
            settings,
            None,
            Some("Fuzz-admin-pass-1".into()),
        ))
        .expect("the server starts");
    let (sql, http) = (running.sql_addr, running.http_addr);
    // Runs until the process ends.
    std::mem::forget(running);
    Served { rt, sql, http }
});

/// Sends `bytes` on a new connection — then closes the sending side if `half_close` (an HTTP
/// server may take that as the client leaving: HTTP requests say `Connection: close` instead)
/// — and reads the answer until the server closes. A server that neither answers nor closes
/// within 10 s is a bug (it would hold the connection until its timeouts).
pub fn exchange(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    SERVER.rt.block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let _ = s.write_all(bytes).await;
        if half_close {
            let _ = s.shutdown().await;
        }
        let mut answer = Vec::new();
        match tokio::time::timeout(
            std::time::Duration::from_secs(10),
            s.read_to_end(&mut answer),
        )
        .await
        {
            Ok(_) => answer,
            Err(_) => panic!("the server neither answered nor closed within 10 s"),
        }
    })
}
