//! Connection settings: the seed's driver properties (`handshake`, `ssoOAuthFlow`,
//! `identityprovider`, `user`, `password`) in either of its connection-string forms —
//! `jdbc:ocient://host:port/database;key=value;…` or `host=…;port=…;database=…;key=value;…` —
//! then command-line flags, which win.

use std::path::PathBuf;

use anyhow::{bail, Context};

/// How the client signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// SCRAM-SHA-256 with `user` and `password`.
    Password,
    /// Single sign-on: a token given as `password` (user `id_token`/`access_token`), or one
    /// obtained here with `ssoOAuthFlow`.
    Sso,
}

/// Which interactive flow obtains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The authorization code flow with PKCE and a loopback listener (the default).
    AuthenticationCode,
    /// The device authorization grant (RFC 8628): a URL and a code to enter on any device.
    DeviceGrant,
}

/// TLS on the PostgreSQL connection (libpq's names; `verify-ca`/`verify-full` mean `require`:
/// the certificate and host name are always verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
}

/// Everything needed to reach and sign in to the server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
    pub handshake: Handshake,
    pub flow: Flow,
    pub identityprovider: Option<String>,
    /// The server's HTTP API (for the integration's public settings). Default
    /// `http://<host>:9090`.
    pub http: Option<String>,
    /// The loopback redirect of the code flow: `http://<redirect_host>:<port><path>`.
    pub redirect_host: String,
    pub redirect_port: u16,
    pub redirect_path: String,
    /// A hint for the provider's login page; also part of the token cache key.
    pub login_hint: Option<String>,
    /// For providers that register the client as confidential (default: public client).
    pub client_secret: Option<String>,
    pub token_cache: Option<PathBuf>,
    /// Print the sign-in URL instead of opening a browser.
    pub no_browser: bool,
    /// How long to wait for an interactive sign-in, in seconds.
    pub sign_in_timeout: u64,
    /// Default: `disable` on loopback, `require` elsewhere.
    pub sslmode: Option<SslMode>,
    /// PEM file with the certificates to trust (default: the system's).
    pub sslrootcert: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 4050,
            database: "system".into(),
            user: String::new(),
            password: None,
            handshake: Handshake::Password,
            flow: Flow::AuthenticationCode,
            identityprovider: None,
            http: None,
            redirect_host: "localhost".into(),
            redirect_port: 7050,
            redirect_path: "/ocient/oauth2/v1/callback".into(),
            login_hint: None,
            client_secret: None,
            token_cache: None,
            no_browser: false,
            sign_in_timeout: 300,
            sslmode: None,
            sslrootcert: None,
        }
    }
}

impl Settings {
    /// Applies a connection string (either form).
    pub fn apply_connection_string(&mut self, text: &str) -> anyhow::Result<()> {
        let text = text.trim();
        let rest = if let Some(url) = text.strip_prefix("jdbc:ocient://") {
            let (target, props) = url.split_once(';').unwrap_or((url, ""));
            let (authority, database) = target.split_once('/').unwrap_or((target, ""));
            self.apply_authority(authority)?;
            if !database.is_empty() {
                self.database = database.to_owned();
            }
            props
        } else {
            text
        };
        for part in rest.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("\"{part}\" is not key=value"))?;
            self.set(key.trim(), value.trim())?;
        }
        Ok(())
    }

    fn apply_authority(&mut self, authority: &str) -> anyhow::Result<()> {
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let (h, p) = rest.split_once(']').context("unclosed [ in the host")?;
            (h, p.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if !host.is_empty() {
            self.host = host.to_owned();
        }
        if let Some(p) = port {
            self.port = p.parse().with_context(|| format!("bad port \"{p}\""))?;
        }
        Ok(())
    }

    /// One property, by the seed's name (case-insensitive).
    pub fn set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        match key.to_ascii_lowercase().as_str() {
            "host" => self.host = value.to_owned(),
            "port" => {
                self.port = value
                    .parse()
                    .with_context(|| format!("bad port \"{value}\""))?
            }
            "database" | "dbname" => self.database = value.to_owned(),
            "user" => self.user = value.to_owned(),
            "password" => self.password = Some(value.to_owned()).filter(|p| !p.is_empty()),
            "handshake" => {
                self.handshake = match value.to_ascii_lowercase().as_str() {
                    "sso" => Handshake::Sso,
                    "password" | "scram" | "" => Handshake::Password,
                    _ => bail!("unknown handshake \"{value}\"; use SSO or password"),
                }
            }
            "ssooauthflow" => {
                self.flow = match value.to_ascii_lowercase().as_str() {
                    "authenticationcode" | "authorizationcode" => Flow::AuthenticationCode,
                    "devicegrant" => Flow::DeviceGrant,
                    _ => bail!(
                        "unknown ssoOAuthFlow \"{value}\"; use authenticationCode or deviceGrant"
                    ),
                }
            }
            "identityprovider" => self.identityprovider = Some(value.to_owned()),
            "http" => self.http = Some(value.trim_end_matches('/').to_owned()),
            "redirect_host" => self.redirect_host = value.to_owned(),
            "redirect_port" => {
                self.redirect_port = value
                    .parse()
                    .with_context(|| format!("bad redirect_port \"{value}\""))?
            }
            "redirect_path" => {
                if !value.starts_with('/') {
                    bail!("redirect_path must start with /");
                }
                self.redirect_path = value.to_owned();
            }
            "login_hint" => self.login_hint = Some(value.to_owned()),
            "client_secret" => self.client_secret = Some(value.to_owned()),
            "token_cache" => self.token_cache = Some(PathBuf::from(value)),
            "sslmode" => {
                self.sslmode = Some(match value.to_ascii_lowercase().as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" | "allow" => SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => SslMode::Require,
                    _ => bail!("unknown sslmode \"{value}\"; use disable, prefer or require"),
                })
            }
            "sslrootcert" => self.sslrootcert = Some(PathBuf::from(value)),
            _ => bail!("unknown connection property \"{key}\""),
        }
        Ok(())
    }

    /// The database whose integration signs in: the one after `@` in `@source_db`, else the
    /// target database.
    pub fn source_database(&self) -> &str {
        match self.user.split_once('@') {
            Some((_, db)) if !db.is_empty() => db,
            _ => &self.database,
        }
    }

    /// Whether an SSO token must be obtained here (no token was given as the password).
    pub fn needs_sign_in(&self) -> bool {
        self.handshake == Handshake::Sso && !(self.password.is_some() && is_token_user(&self.user))
    }

    /// The server's HTTP API: the `http` setting, else port 9090 of the host — over https
    /// unless the host is a loopback address (what the server asks for crosses the network
    /// only over TLS).
    pub fn http_base(&self) -> String {
        self.http.clone().unwrap_or_else(|| {
            let host = if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            };
            let scheme = if portcullis_catalog::sso::is_loopback_authority(&host) {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{host}:9090")
        })
    }

    pub fn redirect_uri(&self, port: u16) -> String {
        format!("http://{}:{port}{}", self.redirect_host, self.redirect_path)
    }
}

/// `id_token`, `access_token`, optionally `@source_db`.
pub fn is_token_user(user: &str) -> bool {
    let kind = user.split_once('@').map_or(user, |(k, _)| k);
    kind == "id_token" || kind == "access_token"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_connection_string_forms() {
        let mut s = Settings::default();
        s.apply_connection_string(
            "jdbc:ocient://db.example:4051/example_database;handshake=SSO;user=;password=;ssoOAuthFlow=deviceGrant;identityprovider=test_sso",
        )
        .unwrap();
        assert_eq!((s.host.as_str(), s.port), ("db.example", 4051));
        assert_eq!(s.database, "example_database");
        assert_eq!(s.handshake, Handshake::Sso);
        assert_eq!(s.flow, Flow::DeviceGrant);
        assert_eq!(s.identityprovider.as_deref(), Some("test_sso"));
        assert!(s.password.is_none() && s.needs_sign_in());

        let mut s = Settings::default();
        s.apply_connection_string("host=127.0.0.1; port=4050; database=system; handshake=SSO; user=id_token; password=eyJ")
            .unwrap();
        assert!(
            !s.needs_sign_in(),
            "a token given as the password is used as it is"
        );
        assert_eq!(s.http_base(), "http://127.0.0.1:9090");
        let mut remote = Settings::default();
        remote
            .apply_connection_string("host=db.example;port=4050;database=d")
            .unwrap();
        assert_eq!(remote.http_base(), "https://db.example:9090");

        let mut s = Settings::default();
        s.apply_connection_string("handshake=sso;user=@source_db")
            .unwrap();
        assert_eq!(s.source_database(), "source_db");
        assert_eq!(s.flow, Flow::AuthenticationCode);
        assert_eq!(
            s.redirect_uri(7050),
            "http://localhost:7050/ocient/oauth2/v1/callback"
        );
    }

    #[test]
    fn bad_properties_are_refused() {
        for bad in [
            "handshake=kerberos",
            "ssoOAuthFlow=implicit",
            "port=eleven",
            "colour=blue",
            "novalue",
            "redirect_path=callback",
            "sslmode=maybe",
        ] {
            assert!(
                Settings::default().apply_connection_string(bad).is_err(),
                "{bad}"
            );
        }
    }
}
