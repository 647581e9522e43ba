//! The SQL side of `portcullis sql`: connect over the PostgreSQL protocol (TLS with rustls;
//! a token as the password for SSO, never in the clear beyond loopback), print server notices, run `-c` statements or an interactive shell with
//! line editing and history, and print results as aligned tables.

use std::net::IpAddr;

use anyhow::{bail, Context};
use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

use crate::settings::{Handshake, Settings, SslMode};
use crate::sso::Token;

/// Connects; `token` is the SSO token to give as the password.
pub async fn connect(
    settings: &Settings,
    token: Option<&Token>,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&settings.host)
        .port(settings.port)
        .dbname(&settings.database)
        .application_name("portcullis-cli")
        .connect_timeout(std::time::Duration::from_secs(30));
    let sslmode = transport(settings, token.is_some())?;
    match (settings.handshake, token) {
        (Handshake::Sso, Some(token)) => {
            let user = match settings.user.split_once('@') {
                Some((_, db)) if !db.is_empty() => format!("{}@{db}", token.kind.user()),
                _ => token.kind.user().to_owned(),
            };
            config.user(&user).password(&token.value);
            // The server checks the token with the same integration that issued it.
            if let Some(idp) = &settings.identityprovider {
                config.options(format!("-c identityprovider={idp}"));
            }
        }
        _ => {
            if settings.user.is_empty() {
                bail!("no user: give user=NAME@database (or handshake=SSO)");
            }
            let password = settings
                .password
                .clone()
                .or_else(|| std::env::var("PGPASSWORD").ok())
                .context("no password: set PGPASSWORD (or password= in the connection string)")?;
            config.user(&settings.user).password(password);
        }
    }
    let what = || format!("connecting to {}:{}", settings.host, settings.port);
    let client = if sslmode == SslMode::Disable {
        let (client, connection) = config.connect(NoTls).await.with_context(what)?;
        tokio::spawn(print_notices(connection));
        client
    } else {
        config.ssl_mode(match sslmode {
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let (client, connection) = config
            .connect(tls_connector(settings)?)
            .await
            .with_context(what)?;
        tokio::spawn(print_notices(connection));
        client
    };
    Ok(client)
}

/// The TLS mode: as set, else `disable` on loopback and `require` elsewhere. A token is never
/// sent in the clear beyond loopback.
pub fn transport(settings: &Settings, sends_token: bool) -> anyhow::Result<SslMode> {
    let loopback = is_loopback(&settings.host);
    let mode = settings.sslmode.unwrap_or(if loopback {
        SslMode::Disable
    } else {
        SslMode::Require
    });
    if sends_token && !loopback && mode != SslMode::Require {
        bail!(
            "{} is not a loopback address: an SSO token is sent only with sslmode=require",
            settings.host
        );
    }
    Ok(mode)
}

/// rustls with the certificates of `sslrootcert`, else the system's.
fn tls_connector(settings: &Settings) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match &settings.sslrootcert {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading sslrootcert {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                bail!("no trusted certificates found on this system; set sslrootcert");
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Prints the server's notices while the connection lives.
async fn print_notices<S, T>(mut connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notice(n)) => eprintln!("NOTICE:  {}", n.message()),
            Ok(_) => {}
            Err(e) => {
                eprintln!("connection closed: {e}");
                break;
            }
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs one statement string and prints its results. Answers whether it succeeded.
pub async fn run(client: &tokio_postgres::Client, sql: &str) -> bool {
    match client.simple_query(sql).await {
        Ok(messages) => {
            print!("{}", render(&messages));
            true
        }
        Err(e) => {
            match e.as_db_error() {
                Some(db) => {
                    eprintln!("ERROR:  {}", db.message());
                    if let Some(tokio_postgres::error::ErrorPosition::Original(p)) = db.position() {
                        eprintln!("at character {p}");
                    }
                }
                None => eprintln!("ERROR:  {e}"),
            }
            false
        }
    }
}

/// Results as psql prints them: aligned columns, a rule, and a row count.
pub fn render(messages: &[SimpleQueryMessage]) -> String {
    let mut out = String::new();
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => {
                columns = cols.iter().map(|c| c.name().to_owned()).collect();
                rows.clear();
            }
            SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("").to_owned())
                    .collect(),
            ),
            SimpleQueryMessage::CommandComplete(n) => {
                if columns.is_empty() {
                    out.push_str("OK\n");
                } else {
                    out.push_str(&table(&columns, &rows));
                    out.push_str(&format!("({n} row{})\n\n", if *n == 1 { "" } else { "s" }));
                }
                columns.clear();
                rows.clear();
            }
            _ => {}
        }
    }
    out
}

fn table(columns: &[String], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |v| v.chars().count()))
            .chain(std::iter::once(columns[i].chars().count()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns.len()).map(width).collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect::<Vec<_>>()
            .join("|")
            .trim_end()
            .to_owned()
            + "\n"
    };
    let mut out = line(columns);
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+"),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The interactive shell: statements end with `;`, `\q` or Ctrl-D quits, history is kept in
/// `~/.portcullis_history`.
pub async fn interactive(
    client: &tokio_postgres::Client,
    settings: &Settings,
) -> anyhow::Result<()> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new()?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".portcullis_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    eprintln!(
        "Connected to {} as Portcullis SQL. End statements with ;  \\q quits.",
        settings.database
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            format!("{}=> ", settings.database)
        } else {
            format!("{}-> ", settings.database)
        };
        match editor.readline(&prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && (trimmed == "\\q" || trimmed == "quit" || trimmed == "exit")
                {
                    break;
                }
                if trimmed.is_empty() {
                    continue;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if trimmed.ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    run(client, &buffer).await;
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["db.example", "10.0.0.1", ""] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn tokens_need_tls_beyond_loopback() {
        let at = |host: &str, mode: Option<SslMode>| Settings {
            host: host.into(),
            sslmode: mode,
            ..Settings::default()
        };
        assert_eq!(
            transport(&at("127.0.0.1", None), true).unwrap(),
            SslMode::Disable
        );
        assert_eq!(
            transport(&at("db.example", None), true).unwrap(),
            SslMode::Require
        );
        assert!(transport(&at("db.example", Some(SslMode::Disable)), true).is_err());
        assert!(transport(&at("db.example", Some(SslMode::Prefer)), true).is_err());
        assert_eq!(
            transport(&at("db.example", Some(SslMode::Disable)), false).unwrap(),
            SslMode::Disable,
            "a password goes by SCRAM, which never sends it"
        );
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["user".into(), "n".into()],
            &[vec!["alice@example.com".into(), "1".into()]],
        );
        assert_eq!(
            t,
            " user              | n\n-------------------+---\n alice@example.com | 1\n"
        );
    }
}
