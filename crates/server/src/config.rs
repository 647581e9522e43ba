//! Server settings: a TOML file, then `PORTCULLIS_*` environment variables, then command-line
//! flags, each overriding the one before. Unknown keys and unknown `PORTCULLIS_*` variables are
//! errors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The settings file (`--config FILE`). Every field is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the catalog and generated keys live. Default `./portcullis-data`.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL-protocol listener. Default `127.0.0.1:4050`.
    pub sql_addr: Option<String>,
    /// HTTP listener. Default `127.0.0.1:9090`.
    pub http_addr: Option<String>,
    /// A directory for a Unix-domain socket beside the SQL listener, named as PostgreSQL
    /// names its own (`<dir>/.s.PGSQL.<sql port>`): `psql -h <dir> -p <port>`. Default: none.
    pub sql_socket_dir: Option<PathBuf>,
    /// PBKDF2 iterations for new SCRAM verifiers. Default 4096.
    pub scram_iterations: Option<u32>,
    /// PEM certificate chain for TLS on the SQL listener.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the SQL listener.
    pub tls_key: Option<PathBuf>,
    /// Most concurrent PostgreSQL connections. Default 1000.
    pub max_connections: Option<usize>,
    /// Lifetime of an HTTP access token, seconds. Default 3600.
    pub http_token_seconds: Option<i64>,
    /// Least time between two key-set refetches of one provider (an unknown `kid` triggers
    /// one), seconds. Default 10.
    pub jwks_min_refresh_seconds: Option<u64>,
    /// Longest time a provider's key set is trusted without fetching it again (a withdrawn
    /// key stops being accepted within this long), seconds. Default 900.
    pub jwks_max_age_seconds: Option<u64>,
    /// Sign-ins an address may start per second over HTTP (browser flows, the IdP chooser,
    /// device grants); bursts of five times that. 0 turns the limit off. Default 10.
    pub sso_starts_per_second: Option<u32>,
    /// Serve HTTPS on the HTTP listener with the SQL listener's certificate. Default false.
    pub http_tls: Option<bool>,
    /// `host:port` browsers use to reach the HTTP listener; the default redirect URI is
    /// `<scheme>://<advertised_address>/v1/callback`. Default: the HTTP listener's address.
    pub advertised_address: Option<String>,
    /// How long a browser sign-in may wait for the provider's callback, seconds. Default 600.
    pub sso_flow_seconds: Option<u64>,
    /// Browser sessions are renewed with their refresh token when the token expires within
    /// this many seconds. Default 120.
    pub sso_renew_margin_seconds: Option<u64>,
    /// Days `sys.authentication_events` rows are kept in the store. Default 30.
    pub event_retention_days: Option<i64>,
    /// The newest events kept in memory for `sys.authentication_events`. Default 100000.
    pub event_rows: Option<usize>,
    /// Where the JSON audit log goes: `stderr` (default) or a file path (appended to).
    pub audit_log: Option<String>,
    /// Idle upstream sessions kept per bound database, for repeat sign-ins. Default 20; 0
    /// keeps none.
    pub upstream_pool_size: Option<usize>,
    /// An idle upstream session is closed after this many seconds. Default 60.
    pub upstream_pool_idle_seconds: Option<u64>,
    /// Where the catalog lives: `sqlite` (the default: `catalog.db` in the data directory) or
    /// `postgresql://user@host:port/database?sslmode=…` (the password in the URL or
    /// PORTCULLIS_STORE_PASSWORD).
    pub store_url: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub sql_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub sql_socket_dir: Option<PathBuf>,
    pub scram_iterations: u32,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub dev_tls: bool,
    pub max_connections: usize,
    pub http_token_seconds: i64,
    pub jwks_min_refresh_seconds: u64,
    pub jwks_max_age_seconds: u64,
    pub sso_starts_per_second: u32,
    pub http_tls: bool,
    pub advertised_address: Option<String>,
    pub sso_flow_seconds: u64,
    pub sso_renew_margin_seconds: u64,
    pub event_retention_days: i64,
    pub event_rows: usize,
    pub audit_log: Option<PathBuf>,
    pub upstream_pool_size: usize,
    pub upstream_pool_idle_seconds: u64,
    /// `None`: SQLite in the data directory; else a PostgreSQL URL.
    pub store_url: Option<String>,
    /// The store's password, from PORTCULLIS_STORE_PASSWORD (overrides the URL's).
    pub store_password: Option<String>,
}

/// Overrides from the command line (already merged with their environment variables).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub sql_addr: Option<String>,
    pub http_addr: Option<String>,
    pub dev_tls: bool,
}

/// Environment variables the server reads; any other `PORTCULLIS_*` is a mistake.
const KNOWN_ENV: &[&str] = &[
    "PORTCULLIS_CONFIG",
    "PORTCULLIS_DATA_DIR",
    "PORTCULLIS_SQL_ADDR",
    "PORTCULLIS_JWKS_MIN_REFRESH_SECONDS",
    "PORTCULLIS_JWKS_MAX_AGE_SECONDS",
    "PORTCULLIS_SSO_STARTS_PER_SECOND",
    "PORTCULLIS_HTTP_ADDR",
    "PORTCULLIS_SQL_SOCKET_DIR",
    "PORTCULLIS_SCRAM_ITERATIONS",
    "PORTCULLIS_TLS_CERT",
    "PORTCULLIS_TLS_KEY",
    "PORTCULLIS_MAX_CONNECTIONS",
    "PORTCULLIS_HTTP_TOKEN_SECONDS",
    "PORTCULLIS_ADMIN_PASSWORD",
    "PORTCULLIS_LOG",
    "PORTCULLIS_DEV_TLS",
    "PORTCULLIS_HTTP_TLS",
    "PORTCULLIS_ADVERTISED_ADDRESS",
    "PORTCULLIS_SSO_FLOW_SECONDS",
    "PORTCULLIS_SSO_RENEW_MARGIN_SECONDS",
    "PORTCULLIS_EVENT_RETENTION_DAYS",
    "PORTCULLIS_EVENT_ROWS",
    "PORTCULLIS_AUDIT_LOG",
    "PORTCULLIS_UPSTREAM_POOL_SIZE",
    "PORTCULLIS_UPSTREAM_POOL_IDLE_SECONDS",
    "PORTCULLIS_STORE_URL",
    "PORTCULLIS_STORE_PASSWORD",
    // Read by the client commands (`portcullis sql`, `portcullis token`), not the server.
    "PORTCULLIS_CLIENT_SECRET",
    "PORTCULLIS_TOKEN_CACHE",
];

pub fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in {}", path.display()))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_env<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match env(name) {
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        None => Ok(None),
    }
}

fn addr(what: &str, text: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .with_context(|| format!("{what} {text:?} is not HOST:PORT (an IP address and a port)"))
}

/// Merges file, environment and flags.
pub fn resolve(file: Option<&Path>, flags: Overrides) -> anyhow::Result<Settings> {
    let unknown: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("PORTCULLIS_") && !KNOWN_ENV.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "unknown environment variable(s): {} (known: {})",
            unknown.join(", "),
            KNOWN_ENV.join(", ")
        );
    }
    let f = match file {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let data_dir = flags
        .data_dir
        .or_else(|| env("PORTCULLIS_DATA_DIR").map(PathBuf::from))
        .or(f.data_dir)
        .unwrap_or_else(|| PathBuf::from("./portcullis-data"));
    let sql_addr = flags
        .sql_addr
        .or_else(|| env("PORTCULLIS_SQL_ADDR"))
        .or(f.sql_addr)
        .unwrap_or_else(|| "127.0.0.1:4050".into());
    let http_addr = flags
        .http_addr
        .or_else(|| env("PORTCULLIS_HTTP_ADDR"))
        .or(f.http_addr)
        .unwrap_or_else(|| "127.0.0.1:9090".into());
    let sql_socket_dir = env("PORTCULLIS_SQL_SOCKET_DIR")
        .map(PathBuf::from)
        .or(f.sql_socket_dir);
    if let Some(dir) = &sql_socket_dir {
        // sun_path holds 107 bytes; `/.s.PGSQL.65535` takes 15 of them.
        if dir.as_os_str().len() > 92 {
            bail!(
                "sql_socket_dir {} is too long for a socket path (at most 92 bytes)",
                dir.display()
            );
        }
    }
    let scram_iterations = parse_env("PORTCULLIS_SCRAM_ITERATIONS")?
        .or(f.scram_iterations)
        .unwrap_or(4096);
    if !(4096..=10_000_000).contains(&scram_iterations) {
        bail!("scram_iterations must be between 4096 (RFC 7677's minimum) and 10000000");
    }
    let max_connections = parse_env("PORTCULLIS_MAX_CONNECTIONS")?
        .or(f.max_connections)
        .unwrap_or(1000);
    if max_connections == 0 {
        bail!("max_connections must be at least 1");
    }
    let http_token_seconds = parse_env("PORTCULLIS_HTTP_TOKEN_SECONDS")?
        .or(f.http_token_seconds)
        .unwrap_or(3600);
    if !(60..=86_400 * 30).contains(&http_token_seconds) {
        bail!("http_token_seconds must be between 60 and 2592000");
    }
    let jwks_min_refresh_seconds = parse_env("PORTCULLIS_JWKS_MIN_REFRESH_SECONDS")?
        .or(f.jwks_min_refresh_seconds)
        .unwrap_or(10);
    if jwks_min_refresh_seconds > 3600 {
        bail!("jwks_min_refresh_seconds must be at most 3600");
    }
    let jwks_max_age_seconds = parse_env("PORTCULLIS_JWKS_MAX_AGE_SECONDS")?
        .or(f.jwks_max_age_seconds)
        .unwrap_or(900);
    if !(1..=86_400).contains(&jwks_max_age_seconds) {
        bail!("jwks_max_age_seconds must be between 1 and 86400");
    }
    let sso_starts_per_second = parse_env("PORTCULLIS_SSO_STARTS_PER_SECOND")?
        .or(f.sso_starts_per_second)
        .unwrap_or(10);
    let tls_cert = env("PORTCULLIS_TLS_CERT").map(PathBuf::from).or(f.tls_cert);
    let tls_key = env("PORTCULLIS_TLS_KEY").map(PathBuf::from).or(f.tls_key);
    if tls_cert.is_some() != tls_key.is_some() {
        bail!("tls_cert and tls_key must be given together");
    }
    let dev_tls =
        flags.dev_tls || env("PORTCULLIS_DEV_TLS").is_some_and(|v| v == "1" || v == "true");
    if dev_tls && tls_cert.is_some() {
        bail!("--dev-tls and tls_cert/tls_key exclude each other");
    }
    let http_tls = env("PORTCULLIS_HTTP_TLS")
        .map(|v| v == "1" || v == "true")
        .or(f.http_tls)
        .unwrap_or(false);
    if http_tls && tls_cert.is_none() && !dev_tls {
        bail!("http_tls needs a certificate: tls_cert/tls_key or --dev-tls");
    }
    let advertised_address = env("PORTCULLIS_ADVERTISED_ADDRESS").or(f.advertised_address);
    if let Some(a) = &advertised_address {
        if a.is_empty() || a.contains(['/', '\\', '?', '#', '@', ' ']) {
            bail!("advertised_address {a:?} must be host:port only");
        }
    }
    let sso_flow_seconds = parse_env("PORTCULLIS_SSO_FLOW_SECONDS")?
        .or(f.sso_flow_seconds)
        .unwrap_or(600);
    if !(1..=3600).contains(&sso_flow_seconds) {
        bail!("sso_flow_seconds must be between 1 and 3600");
    }
    let sso_renew_margin_seconds = parse_env("PORTCULLIS_SSO_RENEW_MARGIN_SECONDS")?
        .or(f.sso_renew_margin_seconds)
        .unwrap_or(120);
    if sso_renew_margin_seconds > 86_400 {
        bail!("sso_renew_margin_seconds must be at most 86400");
    }
    let event_retention_days = parse_env("PORTCULLIS_EVENT_RETENTION_DAYS")?
        .or(f.event_retention_days)
        .unwrap_or(30);
    if !(1..=3650).contains(&event_retention_days) {
        bail!("event_retention_days must be between 1 and 3650");
    }
    let event_rows = parse_env("PORTCULLIS_EVENT_ROWS")?
        .or(f.event_rows)
        .unwrap_or(100_000);
    if !(100..=10_000_000).contains(&event_rows) {
        bail!("event_rows must be between 100 and 10000000");
    }
    let audit_log = env("PORTCULLIS_AUDIT_LOG")
        .or(f.audit_log)
        .filter(|v| v != "stderr")
        .map(PathBuf::from);
    let upstream_pool_size = parse_env("PORTCULLIS_UPSTREAM_POOL_SIZE")?
        .or(f.upstream_pool_size)
        .unwrap_or(20);
    if upstream_pool_size > 10_000 {
        bail!("upstream_pool_size must be at most 10000");
    }
    let upstream_pool_idle_seconds = parse_env("PORTCULLIS_UPSTREAM_POOL_IDLE_SECONDS")?
        .or(f.upstream_pool_idle_seconds)
        .unwrap_or(60);
    if !(1..=86_400).contains(&upstream_pool_idle_seconds) {
        bail!("upstream_pool_idle_seconds must be between 1 and 86400");
    }
    let store_url = env("PORTCULLIS_STORE_URL")
        .or(f.store_url)
        .filter(|u| !u.eq_ignore_ascii_case("sqlite"));
    if let Some(url) = &store_url {
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            bail!("store_url must be sqlite or a postgresql:// URL");
        }
    }
    let store_password = env("PORTCULLIS_STORE_PASSWORD");
    Ok(Settings {
        data_dir,
        sql_addr: addr("sql_addr", &sql_addr)?,
        http_addr: addr("http_addr", &http_addr)?,
        sql_socket_dir,
        scram_iterations,
        tls_cert,
        tls_key,
        dev_tls,
        max_connections,
        http_token_seconds,
        jwks_min_refresh_seconds,
        jwks_max_age_seconds,
        sso_starts_per_second,
        http_tls,
        advertised_address,
        sso_flow_seconds,
        sso_renew_margin_seconds,
        event_retention_days,
        event_rows,
        audit_log,
        upstream_pool_size,
        upstream_pool_idle_seconds,
        store_url,
        store_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_file_keys_are_errors() {
        let e = toml::from_str::<FileConfig>("sql_adr = \"127.0.0.1:1\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let ok: FileConfig =
            toml::from_str("sql_addr = \"127.0.0.1:1\"\nscram_iterations = 8192").unwrap();
        assert_eq!(ok.scram_iterations, Some(8192));
    }
}
