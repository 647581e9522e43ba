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

/// A bound Unix-domain socket; its file is removed when this is dropped (if it is still the
/// one bound here).
pub struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's device and inode, as bound.
    file: (u64, u64),
}

/// The socket's path in `dir` for the SQL port `port`, as libpq computes it.
pub fn unix_socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

impl UnixSocket {
    /// Binds `<dir>/.s.PGSQL.<port>`. A socket file left by a server that is gone (connecting
    /// is refused) is replaced; one that answers, or whose state cannot be told, is an error, as
    /// is a path that is not a socket, and a directory anyone may write to without the sticky
    /// bit (another user could swap the file). The socket is open to every local user (mode
    /// 0777, PostgreSQL's default): connecting still means signing in.
    pub async fn bind(dir: &Path, port: u16) -> io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(dir)?;
        if meta.mode() & 0o002 != 0 && meta.mode() & 0o1000 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is writable by everyone without the sticky bit",
                    dir.display()
                ),
            ));
        }
        let path = unix_socket_path(dir, port);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            let probe = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                UnixStream::connect(&path),
            )
            .await;
            match probe {
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(&path)?
                }
                Ok(Err(e)) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot tell whether {} is in use: {e}", path.display()),
                    ))
                }
                Ok(Ok(_)) | Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("another server is listening on {}", path.display()),
                    ))
                }
            }
        }
        let listener = UnixListener::bind(&path)?;
        let file = chmod_socket(&path)?;
        Ok(Self {
            listener,
            path,
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes the socket file at `path` mode 0777 without following a symlink put in its place,
/// and says which file that is (device, inode).
fn chmod_socket(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)?;
    let meta = handle.metadata()?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} changed under the server", path.display()),
        ));
    }
    // Through the descriptor: the file opened above, whatever the path names by now.
    use std::os::fd::AsRawFd;
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    std::fs::set_permissions(&by_fd, std::fs::Permissions::from_mode(0o777))?;
    Ok((meta.dev(), meta.ino()))
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        // Another server may have replaced the file since: its socket is left alone.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.file {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_refused_and_the_file_removed_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let first = UnixSocket::bind(dir.path(), 5432).await.unwrap();
        assert_eq!(first.path(), dir.path().join(".s.PGSQL.5432"));
        let busy = UnixSocket::bind(dir.path(), 5432).await.err().unwrap();
        assert_eq!(busy.kind(), io::ErrorKind::AddrInUse, "{busy}");
        // A server killed without cleaning up leaves its file behind: the next one takes it.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join(".s.PGSQL.7")).unwrap();
        drop(stale);
        assert!(dir.path().join(".s.PGSQL.7").exists());
        let again = UnixSocket::bind(dir.path(), 7).await.unwrap();
        drop(again);
        assert!(!dir.path().join(".s.PGSQL.7").exists());
        std::fs::write(dir.path().join(".s.PGSQL.8"), b"not a socket").unwrap();
        let not_socket = UnixSocket::bind(dir.path(), 8).await.err().unwrap();
        assert_eq!(not_socket.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            std::fs::read(dir.path().join(".s.PGSQL.8")).unwrap(),
            b"not a socket"
        );
        // The mode is 0777; a file that replaced the socket is not removed at the end.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(first.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o777);
        std::fs::remove_file(first.path()).unwrap();
        let other = std::os::unix::net::UnixListener::bind(first.path()).unwrap();
        drop(first);
        assert!(
            dir.path().join(".s.PGSQL.5432").exists(),
            "another's socket was removed"
        );
        drop(other);
    }

    #[tokio::test]
    async fn a_directory_anyone_may_swap_files_in_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let open = UnixSocket::bind(dir.path(), 9).await.err().unwrap();
        assert_eq!(open.kind(), io::ErrorKind::PermissionDenied, "{open}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        UnixSocket::bind(dir.path(), 9).await.unwrap();
    }
}
