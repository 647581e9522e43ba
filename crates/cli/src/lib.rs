//! The command-line client (a front end): `portcullis sql` runs statements or an interactive
//! shell over the PostgreSQL protocol, and `portcullis token` prints a fresh SSO token for
//! `PGPASSWORD`. SSO sign-in runs here as the seed's driver does it — the authorization code
//! flow with a loopback listener, or the device grant — and tokens are cached and refreshed.

pub mod settings;
pub mod shell;
pub mod sso;

use std::path::PathBuf;

use anyhow::Context;
use settings::{Handshake, Settings};

/// Connection settings on the command line (flags win over the connection string).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// `jdbc:ocient://host:port/database;key=value;…` or `host=…;port=…;database=…;key=value;…`
    /// (keys: handshake, ssoOAuthFlow, identityprovider, user, password, http, redirect_port,
    /// redirect_path, redirect_host, login_hint, client_secret, token_cache).
    pub connection: Option<String>,
    #[arg(long)]
    pub host: Option<String>,
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    #[arg(short = 'd', long)]
    pub database: Option<String>,
    /// `name@database` for a password; `@source_db` or empty for SSO.
    #[arg(short = 'U', long)]
    pub user: Option<String>,
    /// `SSO` or `password`.
    #[arg(long)]
    pub handshake: Option<String>,
    /// `authenticationCode` (default) or `deviceGrant`.
    #[arg(long = "sso-oauth-flow", alias = "flow")]
    pub sso_oauth_flow: Option<String>,
    /// The SSO integration to sign in with.
    #[arg(long)]
    pub identityprovider: Option<String>,
    /// The server's HTTP API, default `http://<host>:9090`.
    #[arg(long)]
    pub http: Option<String>,
    /// Port of the loopback sign-in callback (default 7050; 0 picks a free one).
    #[arg(long)]
    pub redirect_port: Option<u16>,
    #[arg(long)]
    pub token_cache: Option<PathBuf>,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for an interactive sign-in.
    #[arg(long)]
    pub sign_in_timeout: Option<u64>,
    /// Any connection property, repeatable: `--set key=value`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConnectArgs {
    /// The settings: connection string, then `--set`, then the flags. Passwords come only from
    /// the connection string or `PGPASSWORD` (never a flag, which `ps` would show).
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        if let Some(c) = &self.connection {
            s.apply_connection_string(c)?;
        }
        for kv in &self.set {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--set {kv}: expected key=value"))?;
            s.set(k, v)?;
        }
        let pairs: [(&str, Option<String>); 9] = [
            ("host", self.host.clone()),
            ("port", self.port.map(|p| p.to_string())),
            ("database", self.database.clone()),
            ("user", self.user.clone()),
            ("handshake", self.handshake.clone()),
            ("ssoOAuthFlow", self.sso_oauth_flow.clone()),
            ("identityprovider", self.identityprovider.clone()),
            ("http", self.http.clone()),
            ("redirect_port", self.redirect_port.map(|p| p.to_string())),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                s.set(k, &v)?;
            }
        }
        if let Some(p) = &self.token_cache {
            s.token_cache = Some(p.clone());
        }
        if let Some(t) = self.sign_in_timeout {
            s.sign_in_timeout = t;
        }
        s.no_browser |= self.no_browser;
        if s.client_secret.is_none() {
            s.client_secret = std::env::var("PORTCULLIS_CLIENT_SECRET")
                .ok()
                .filter(|v| !v.is_empty());
        }
        // `user=@db` asks for SSO, as in the seed.
        if s.user.starts_with('@') {
            s.handshake = Handshake::Sso;
        }
        Ok(s)
    }
}

/// `portcullis sql`.
#[derive(Debug, Clone, clap::Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Run this statement (repeatable) and exit, instead of the interactive shell.
    #[arg(short = 'c', long = "command")]
    pub commands: Vec<String>,
}

/// `portcullis token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print the access token instead of the ID token.
    #[arg(long)]
    pub access: bool,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `portcullis sql`; answers the process exit code.
pub fn sql(args: &SqlArgs) -> anyhow::Result<u8> {
    let settings = args.connect.settings()?;
    runtime()?.block_on(async {
        let token = match settings.handshake {
            Handshake::Sso if settings.needs_sign_in() => Some(sso::obtain(&settings).await?),
            Handshake::Sso => {
                let value = settings.password.clone().unwrap_or_default();
                let kind = if settings.user.starts_with("access_token") {
                    sso::TokenKind::AccessToken
                } else {
                    sso::TokenKind::IdToken
                };
                Some(sso::Token {
                    kind,
                    expires_at: sso::expiry(&value).unwrap_or(0),
                    value,
                    access_token: None,
                })
            }
            Handshake::Password => None,
        };
        let client = shell::connect(&settings, token.as_ref()).await?;
        if args.commands.is_empty() {
            shell::interactive(&client, &settings).await?;
            return Ok(0);
        }
        for c in &args.commands {
            if !shell::run(&client, c).await {
                return Ok(1);
            }
        }
        Ok(0)
    })
}

/// Runs `portcullis token`: signs in if needed and prints the token on stdout.
pub fn token(args: &TokenArgs) -> anyhow::Result<u8> {
    let mut settings = args.connect.settings()?;
    settings.handshake = Handshake::Sso;
    if settings::is_token_user(&settings.user) {
        settings.user.clear();
    }
    settings.password = None;
    runtime()?.block_on(async {
        let token = sso::obtain(&settings).await?;
        let value = if args.access {
            token
                .access_token
                .context("the provider gave no access token")?
        } else {
            token.value
        };
        println!("{value}");
        Ok(0)
    })
}
