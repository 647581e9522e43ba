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

/// A vendor object grant (`GRANT SELECT ON TABLE t TO GROUP analysts`) as its upstream runs it:
/// each grantee resolved, in the session's own database only, to its upstream role
/// (`"analysts@sales"`) — a name from another database or none at all is refused. `None` when
/// `sql` is not an object grant. The upstream then checks, as the person, that they may grant.
pub fn object_grant_upstream(
    state: &crate::model::CatalogState,
    database_id: i64,
    sql: &str,
) -> Option<Result<String, CatalogError>> {
    use crate::sql::postgres::{parse_object_grant, GranteeKind};
    let grant = parse_object_grant(sql)?;
    let database = state.database_name(database_id).to_owned();
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut names = Vec::with_capacity(grant.grantees.len());
    for (kind, written) in &grant.grantees {
        if *kind == GranteeKind::Public {
            names.push("PUBLIC".to_owned());
            continue;
        }
        let Some(q) = crate::names::QualifiedName::parse(written) else {
            return Some(Err(CatalogError::undefined("grantee", written)));
        };
        if !q.database_or(&database).eq_ignore_ascii_case(&database) {
            return Some(Err(CatalogError::new(
                crate::error::sqlstate::INSUFFICIENT_PRIVILEGE,
                format!(
                    "grantee \"{written}\" is not of database \"{database}\": objects here are \
                     granted only to its own users, groups and roles"
                ),
            )));
        }
        let group = || {
            state
                .group(database_id, &q.name)
                .map(|g| format!("{}@{database}", g.name))
        };
        let role = || {
            state
                .role(database_id, &q.name)
                .map(|r| format!("{}@{database}", r.name))
        };
        let user = || {
            state
                .user(database_id, &q.name)
                .map(|u| state.user_fqun(u).to_string())
        };
        let found = match kind {
            GranteeKind::Group => group(),
            GranteeKind::Role => role(),
            GranteeKind::User => user(),
            _ => group().or_else(role).or_else(user),
        };
        match found {
            Some(name) => names.push(quote(&name)),
            None => return Some(Err(CatalogError::undefined("grantee", written))),
        }
    }
    let preposition = if grant.head.to_ascii_uppercase().starts_with("GRANT") {
        "TO"
    } else {
        "FROM"
    };
    Some(Ok(format!(
        "{} {preposition} {} {}",
        grant.head,
        names.join(", "),
        grant.tail
    )
    .trim_end()
    .to_owned()))
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
