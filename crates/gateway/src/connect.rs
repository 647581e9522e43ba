//! Connecting to an upstream as its administrator: plain TCP only to loopback
//! (`sslmode=disable`), otherwise TLS with the system's trusted roots and the host name checked
//! (`verify-full`).

use portcullis_catalog::upstream::{unreachable, SslMode, UpstreamUrl};
use portcullis_catalog::CatalogError;

/// A connected administrator client; its connection runs on a task of its own.
pub async fn connect(url: &UpstreamUrl) -> Result<tokio_postgres::Client, CatalogError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&url.host)
        .port(url.port)
        .user(&url.user)
        .password(&url.password)
        .dbname(&url.database)
        .application_name("portcullis")
        .connect_timeout(std::time::Duration::from_secs(5));
    let refused = |e: tokio_postgres::Error| {
        // A wrong password is the administrator's mistake, said as such; never the password.
        match e.as_db_error() {
            Some(db) => unreachable(format!(
                "{} refused the administrator \"{}\": {}",
                url.display(),
                url.user,
                db.message()
            )),
            None => unreachable(format!("{} could not be reached ({e})", url.display())),
        }
    };
    match url.sslmode {
        SslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(refused)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "upstream administrator connection ended");
                }
            });
            Ok(client)
        }
        SslMode::Require => Err(unreachable(
            "sslmode=require (TLS without checking the certificate) is not supported; use \
             verify-full, or disable on loopback",
        )),
        SslMode::VerifyFull => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = config.connect(tls()?).await.map_err(refused)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "upstream administrator connection ended");
                }
            });
            Ok(client)
        }
    }
}

/// rustls with the system's trusted certificates; the host name is checked.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, CatalogError> {
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(
        (*client_config()?).clone(),
    ))
}

/// The TLS client configuration for upstreams (`verify-full`).
pub fn client_config() -> Result<std::sync::Arc<rustls::ClientConfig>, CatalogError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(unreachable(
            "no trusted certificates on this system for verify-full",
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| unreachable(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
