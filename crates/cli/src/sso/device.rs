//! The device grant from the terminal (RFC 8628): show the URL, the code and a QR code of
//! `verification_uri_complete`, then poll the token endpoint honouring `interval`,
//! `slow_down`, `authorization_pending`, `access_denied` and `expired_token`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use portcullis_auth::oidc::authorization::{DeviceAuthorization, DevicePoll, TokenResponse};
use portcullis_auth::oidc::fetch::Fetcher;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

use super::Provider;
use crate::settings::Settings;

/// What every `slow_down` adds, for good (RFC 8628 §3.5).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub async fn sign_in(
    fetcher: &Fetcher,
    provider: &Provider,
    settings: &Settings,
) -> anyhow::Result<TokenResponse> {
    let endpoint = provider
        .metadata
        .device_authorization_endpoint
        .as_deref()
        .context(
            "the provider offers no device authorization; use ssoOAuthFlow=authenticationCode",
        )?;
    let (status, body) = fetcher
        .post_form(
            endpoint,
            &[("scope", &provider.scopes)],
            &provider.client_id,
            settings.client_secret.as_deref(),
        )
        .await?;
    let grant =
        DeviceAuthorization::from_json(status.as_u16(), &body).map_err(anyhow::Error::msg)?;
    eprintln!(
        "To sign in to \"{}\" with {}, open {} and enter the code {}",
        settings.database, provider.integration, grant.verification_uri, grant.user_code
    );
    if let Some(complete) = &grant.verification_uri_complete {
        eprintln!("Or open {complete}");
        if let Ok(qr) = QrCode::new(complete.as_bytes()) {
            eprintln!(
                "{}",
                qr.render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .build()
            );
        }
    }
    let deadline = Instant::now()
        + grant
            .expires_in
            .min(Duration::from_secs(settings.sign_in_timeout));
    let token_endpoint = provider.token_endpoint()?;
    let mut interval = grant.interval;
    let mut wait = interval;
    loop {
        if Instant::now() + wait >= deadline {
            tokio::time::sleep_until(deadline.into()).await;
            bail!("the code expired before the sign-in was approved; run the command again");
        }
        tokio::time::sleep(wait).await;
        let answer = fetcher
            .post_form(
                token_endpoint,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &grant.device_code),
                ],
                &provider.client_id,
                settings.client_secret.as_deref(),
            )
            .await;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                wait = (wait * 2).min(MAX_BACKOFF);
                eprintln!(
                    "The provider could not be reached ({e}); trying again in {} s",
                    wait.as_secs()
                );
                continue;
            }
        };
        wait = interval;
        match DevicePoll::from_json(status.as_u16(), &body) {
            DevicePoll::Pending => {}
            DevicePoll::SlowDown => {
                interval += SLOW_DOWN_STEP;
                wait = interval;
            }
            DevicePoll::Approved(tokens) => return Ok(tokens),
            DevicePoll::Denied => bail!("the sign-in was denied at the identity provider"),
            DevicePoll::Expired => {
                bail!("the code expired before the sign-in was approved; run the command again")
            }
            DevicePoll::Failed(e) => bail!(e),
        }
    }
}
