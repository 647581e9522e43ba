//! The token cache: one JSON file (mode 0600, in a 0700 directory) holding the tokens of each
//! (issuer, client, user), so a second command signs in without a browser. Written whole to a
//! temporary file and renamed, so a crash never leaves half a file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The tokens of one sign-in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CachedTokens {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// Unix seconds: when the token used for sign-in expires.
    pub expires_at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    entries: BTreeMap<String, CachedTokens>,
}

/// Where tokens are kept.
pub struct TokenCache {
    path: PathBuf,
}

/// The cache key of a sign-in.
pub fn key(issuer: &str, client_id: &str, user: Option<&str>) -> String {
    format!("{issuer} {client_id} {}", user.unwrap_or("-"))
}

impl TokenCache {
    /// `path`, else `$PORTCULLIS_TOKEN_CACHE`, else `$XDG_CACHE_HOME/portcullis/tokens.json`,
    /// else `~/.cache/portcullis/tokens.json`.
    pub fn new(path: Option<PathBuf>) -> anyhow::Result<Self> {
        let path = match path
            .or_else(|| std::env::var_os("PORTCULLIS_TOKEN_CACHE").map(PathBuf::from))
        {
            Some(p) => p,
            None => {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .context("no HOME to keep the token cache in; set token_cache")?;
                base.join("portcullis").join("tokens.json")
            }
        };
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> CacheFile {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                eprintln!(
                    "portcullis: ignoring the unreadable token cache {}: {e}",
                    self.path.display()
                );
                CacheFile::default()
            }),
            Err(_) => CacheFile::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<CachedTokens> {
        self.read().entries.get(key).cloned()
    }

    /// Stores (or with `None`, forgets) the tokens of `key`.
    pub fn put(&self, key: &str, tokens: Option<CachedTokens>) -> anyhow::Result<()> {
        let mut file = self.read();
        match tokens {
            Some(t) => file.entries.insert(key.to_owned(), t),
            None => file.entries.remove(key),
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            self.path
                .file_name()
                .map_or("tokens".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        {
            let mut out = private_file(&tmp)?;
            out.write_all(&serde_json::to_vec_pretty(&file)?)?;
            out.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing the token cache {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_privately_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(Some(dir.path().join("sub/tokens.json"))).unwrap();
        let k = key("https://idp", "cli", Some("alice"));
        assert!(cache.get(&k).is_none());
        cache
            .put(
                &k,
                Some(CachedTokens {
                    id_token: Some("t".into()),
                    expires_at: 5,
                    ..Default::default()
                }),
            )
            .unwrap();
        assert_eq!(cache.get(&k).unwrap().id_token.as_deref(), Some("t"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(dir.path().join("sub"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        cache.put(&k, None).unwrap();
        assert!(cache.get(&k).is_none());
        std::fs::write(cache.path(), b"not json").unwrap();
        assert!(cache.get(&k).is_none(), "a damaged cache is ignored");
    }
}
