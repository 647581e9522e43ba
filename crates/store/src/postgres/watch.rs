//! `LISTEN portcullis_catalog` on a connection of its own: the versions other nodes commit,
//! as they commit them. A task reads the connection's notifications and forwards each
//! version; when the connection breaks the task ends and the receiver closes (the node asks
//! again, and polls the version meanwhile).

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Config, Connection};

/// Opens the listening connection; `None` if the store cannot be reached now.
pub async fn listen(config: &Config) -> Option<mpsc::Receiver<u64>> {
    let (tx, rx) = mpsc::channel(64);
    let (client, driving) = if config.get_ssl_mode() == SslMode::Disable {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.ok()?;
        (client, tokio::spawn(drive(connection, tx)))
    } else {
        let mut config = config.clone();
        config.ssl_mode(SslMode::Require);
        let (client, connection) = config.connect(super::tls().ok()?).await.ok()?;
        (client, tokio::spawn(drive(connection, tx)))
    };
    client
        .batch_execute("LISTEN portcullis_catalog")
        .await
        .ok()?;
    // The client lives as long as its connection is read.
    tokio::spawn(async move {
        let _ = driving.await;
        drop(client);
    });
    Some(rx)
}

/// Reads the connection until it ends or nobody listens any more.
async fn drive<S, T>(mut connection: Connection<S, T>, tx: mpsc::Sender<u64>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        if let AsyncMessage::Notification(n) = message {
            if let Ok(version) = n.payload().parse::<u64>() {
                if tx.send(version).await.is_err() {
                    return;
                }
            }
        }
    }
}
