//! What the SQL front end listens on: a TCP address, and optionally a Unix-domain socket named
//! as PostgreSQL names its own (`<dir>/.s.PGSQL.<port>`), so `psql -h <dir> -p <port>` and
//! libpq's other clients on the same host connect without TCP.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The address a client on the Unix socket is known by: the host itself (its throttles, its
/// interactive sign-ins and the audit trail count it with loopback TCP clients), port 0.
pub const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A listening socket.
pub enum SqlListener {
    Tcp(TcpListener),
    Unix(UnixSocket),
}

/// An accepted connection.
pub enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl SqlListener {
    /// The next connection and the address it is known by.
    pub async fn accept(&self) -> io::Result<(Accepted, SocketAddr)> {
        match self {
            Self::Tcp(l) => l.accept().await.map(|(s, a)| (Accepted::Tcp(s), a)),
            Self::Unix(u) => u
                .listener
                .accept()
                .await
                .map(|(s, _)| (Accepted::Unix(s), UNIX_PEER)),
        }
    }
}

/// A bound Unix-domain socket; its file is removed when this is dropped.
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

/// The socket's path in `dir` for the SQL port `port`, as libpq computes it.
pub fn unix_socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

impl UnixSocket {
    /// Binds `<dir>/.s.PGSQL.<port>`. A file left there by a server that is gone is replaced;
    /// a socket another server still answers on is an error, as is a path that is not a
    /// socket. The socket is open to every local user (mode 0777, PostgreSQL's default):
    /// connecting still means signing in.
    pub fn bind(dir: &Path, port: u16) -> io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let path = unix_socket_path(dir, port);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another server is listening on {}", path.display()),
                ));
            }
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_refused_and_the_file_removed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let first = UnixSocket::bind(dir.path(), 5432).unwrap();
        assert_eq!(first.path(), dir.path().join(".s.PGSQL.5432"));
        let busy = UnixSocket::bind(dir.path(), 5432).err().unwrap();
        assert_eq!(busy.kind(), io::ErrorKind::AddrInUse, "{busy}");
        // A server killed without cleaning up leaves its file behind: the next one takes it.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join(".s.PGSQL.7")).unwrap();
        drop(stale);
        assert!(dir.path().join(".s.PGSQL.7").exists());
        let again = UnixSocket::bind(dir.path(), 7).unwrap();
        drop(again);
        assert!(!dir.path().join(".s.PGSQL.7").exists());
        std::fs::write(dir.path().join(".s.PGSQL.8"), b"not a socket").unwrap();
        let not_socket = UnixSocket::bind(dir.path(), 8).err().unwrap();
        assert_eq!(not_socket.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            std::fs::read(dir.path().join(".s.PGSQL.8")).unwrap(),
            b"not a socket"
        );
        drop(first);
        assert!(!dir.path().join(".s.PGSQL.5432").exists());
    }
}
