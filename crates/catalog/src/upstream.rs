//! Upstream bindings: the `postgresql://…` URL a database is bound to (its administrator's
//! password kept apart, sealed), and the check a server runs before a binding is stored.

use crate::error::{sqlstate, CatalogError};

/// How the connection to the upstream is secured (libpq's `sslmode` values Portcullis
/// supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP: only to a loopback address.
    Disable,
    /// TLS, the certificate not checked.
    Require,
    /// TLS, the certificate checked against the system's roots and the host name.
    VerifyFull,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A parsed upstream URL.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub sslmode: SslMode,
}

impl std::fmt::Debug for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.write_str(&self.display())
    }
}

fn invalid(why: impl std::fmt::Display) -> CatalogError {
    CatalogError::invalid(format!("upstream URL: {why}"))
}

impl UpstreamUrl {
    /// Parses `postgresql://user:password@host[:port]/database[?sslmode=…]`. The default
    /// `sslmode` is `verify-full`; `disable` is accepted only for a loopback host.
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let url = url::Url::parse(text).map_err(|e| invalid(format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "postgresql" | "postgres") {
            return Err(invalid("the scheme must be postgresql://"));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let user = decode(url.username());
        if user.is_empty() {
            return Err(invalid(
                "name the upstream administrator: postgresql://user:password@…",
            ));
        }
        let password = url.password().map(decode).unwrap_or_default();
        if password.is_empty() {
            return Err(invalid("the upstream administrator's password is missing"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("the host is missing"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let database = decode(url.path().trim_start_matches('/'));
        if database.is_empty() || database.contains('/') {
            return Err(invalid("name the upstream database: …/database"));
        }
        let mut sslmode = SslMode::VerifyFull;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("sslmode", "disable") => sslmode = SslMode::Disable,
                ("sslmode", "require") => sslmode = SslMode::Require,
                ("sslmode", "verify-full") => sslmode = SslMode::VerifyFull,
                ("sslmode", other) => {
                    return Err(invalid(format!(
                        "sslmode {other:?} is not supported (disable, require, verify-full)"
                    )))
                }
                (other, _) => return Err(invalid(format!("unknown parameter {other:?}"))),
            }
        }
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if sslmode == SslMode::Disable && !loopback {
            return Err(invalid(
                "sslmode=disable only to a loopback address: passwords and data would cross the \
                 network in the clear",
            ));
        }
        Ok(Self {
            user,
            password,
            host,
            port: url.port().unwrap_or(5432),
            database,
            sslmode,
        })
    }

    /// The URL without the password (what `sys.databases.upstream` shows and the store keeps).
    pub fn display(&self) -> String {
        let enc = |s: &str| -> String {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgresql://{}@{host}:{}/{}?sslmode={}",
            enc(&self.user),
            self.port,
            enc(&self.database),
            self.sslmode.name()
        )
    }

    /// Puts the password back into a stored URL.
    pub fn with_password(stored: &str, password: &str) -> Result<Self, CatalogError> {
        let mut url = Self::parse_stored(stored)?;
        url.password = password.to_owned();
        Ok(url)
    }

    fn parse_stored(stored: &str) -> Result<Self, CatalogError> {
        let mut parsed = url::Url::parse(stored).map_err(|e| invalid(e.to_string()))?;
        parsed
            .set_password(Some("x"))
            .map_err(|()| invalid("cannot hold a password"))?;
        Self::parse(parsed.as_str())
    }
}

/// The seal context of a database's upstream password.
pub fn seal_context(database_id: i64) -> String {
    format!("upstream:{database_id}")
}

/// Checks an upstream before it is bound: reachable, the administrator's password right, and
/// the role allowed to manage roles and the database. Implemented by the gateway (which
/// speaks PostgreSQL to it) and handed to the catalog at start-up.
#[async_trait::async_trait]
pub trait UpstreamChecker: Send + Sync {
    async fn check(&self, url: &UpstreamUrl) -> Result<(), CatalogError>;
}

/// Mirrors catalog changes to the upstreams they concern (groups, memberships, dropped users),
/// as one open transaction per upstream: begun before the catalog commits, committed after it,
/// rolled back (dropped) if the catalog refuses. Implemented by the gateway.
#[async_trait::async_trait]
pub trait UpstreamMirror: Send + Sync {
    /// Runs what `changes` mean upstream, uncommitted. `before` is the catalog they apply to;
    /// `bindings` its bound databases with their URLs (passwords unsealed).
    async fn begin(
        &self,
        before: &crate::model::CatalogState,
        changes: &[portcullis_store::Change],
        bindings: &[(i64, UpstreamUrl)],
    ) -> Result<Vec<Box<dyn MirrorCommit>>, CatalogError>;
}

/// An upstream transaction waiting for the catalog's commit.
#[async_trait::async_trait]
pub trait MirrorCommit: Send {
    async fn commit(self: Box<Self>) -> Result<(), CatalogError>;
}

/// `08001`: the upstream could not be reached or refused the administrator.
pub fn unreachable(why: impl std::fmt::Display) -> CatalogError {
    CatalogError::new("08001", format!("upstream: {why}"))
}

/// The upstream administrator lacks what the binding needs.
pub fn not_allowed(why: impl std::fmt::Display) -> CatalogError {
    CatalogError::new(sqlstate::INSUFFICIENT_PRIVILEGE, format!("upstream: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u = UpstreamUrl::parse(
            "postgresql://portcullis_admin:s%40cret@127.0.0.1:5433/sales?sslmode=disable",
        )
        .unwrap();
        assert_eq!(
            (
                u.user.as_str(),
                u.password.as_str(),
                u.port,
                u.database.as_str()
            ),
            ("portcullis_admin", "s@cret", 5433, "sales")
        );
        assert_eq!(
            u.display(),
            "postgresql://portcullis_admin@127.0.0.1:5433/sales?sslmode=disable"
        );
        assert!(!format!("{u:?}").contains("cret"));
        let back = UpstreamUrl::with_password(&u.display(), "s@cret").unwrap();
        assert_eq!(back, u);
        let v = UpstreamUrl::parse("postgres://a:b@db.example/sales").unwrap();
        assert_eq!((v.port, v.sslmode), (5432, SslMode::VerifyFull));
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, needle) in [
            ("mysql://a:b@h/d", "scheme"),
            ("postgresql://h/d", "administrator"),
            ("postgresql://a@h/d", "password"),
            ("postgresql://a:b@h/", "database"),
            ("postgresql://a:b@h/d?sslmode=prefer", "not supported"),
            ("postgresql://a:b@h/d?host=x", "unknown parameter"),
            ("postgresql://a:b@db.example/d?sslmode=disable", "loopback"),
            ("not a url", "not a URL"),
        ] {
            let e = UpstreamUrl::parse(text).unwrap_err();
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert!(
                !e.message.contains(":b@"),
                "the password is echoed: {}",
                e.message
            );
        }
    }
}
