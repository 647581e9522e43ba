//! Files that hold secrets or the catalog: the data directory is 0700, files in it 0600;
//! secrets are written with mode 0600 and read without following symbolic links, refusing a
//! file that others could read.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context};

pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Reads a secret file: not through a symbolic link, a regular file, and not readable or
/// writable by group or others. `Ok(None)` if it does not exist.
pub fn read(path: &Path) -> anyhow::Result<Option<String>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!(
                "{} is a symbolic link; it must be a regular file",
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        bail!("{} must be a regular file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable or writable by others (mode {mode:o}); run chmod 600 on it",
                path.display()
            );
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Creates the data directory (0700) or tightens an existing one to 0700, and makes the
/// catalog file 0600 before SQLite opens it (SQLite gives its WAL and shared-memory files the
/// catalog file's mode).
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
        for name in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] {
            let path = dir.join(name);
            if name == "catalog.db" && !path.exists() {
                write(&path, b"")?;
            } else if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} private (0600)", path.display()))?;
            }
        }
    }
    Ok(())
}
