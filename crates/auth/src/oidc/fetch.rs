//! Fetching provider documents: no redirects, connect and total time limits, a size limit, JSON
//! (or a SAML IdP's XML metadata). Counts every request (`portcullis_provider_requests_total`,
//! by the provider's origin) so that benchmarks can show the hot path makes none.

use std::time::Duration;

/// Requests to providers, by origin and HTTP status (or `unreachable`).
pub const PROVIDER_REQUESTS: &str = "portcullis_provider_requests_total";
/// How long provider requests took, by origin.
pub const PROVIDER_REQUEST_SECONDS: &str = "portcullis_provider_request_seconds";

/// The largest discovery document or key set accepted.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a fetch failed (shown to administrators; never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// An HTTP client for provider documents.
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError(format!("HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        let (status, body) = self.send(url, request).await?;
        if !status.is_success() {
            return Err(FetchError(format!("{url} answered {status}")));
        }
        body
    }

    /// GETs a JSON document with a bearer token (the userinfo endpoint). The token goes only
    /// in the Authorization header; no error message carries it.
    pub async fn get_json_bearer(
        &self,
        url: &str,
        token: &str,
    ) -> Result<serde_json::Value, FetchError> {
        let request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .bearer_auth(token);
        let (status, body) = self.send(url, request).await?;
        if !status.is_success() {
            return Err(FetchError(format!("{url} answered {status}")));
        }
        body
    }

    /// POSTs a form to an OAuth endpoint (token, revocation, device authorization) with HTTP
    /// Basic client authentication (RFC 6749 §2.3.1: both halves form-encoded first) when a
    /// secret is given, else with `client_id` in the form. Answers the status and the JSON
    /// body, which carries `error` on a 400.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        client_id: &str,
        client_secret: Option<&str>,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), FetchError> {
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json");
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        match client_secret {
            Some(secret) => {
                let enc = |s: &str| -> String {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
                };
                request = request.basic_auth(enc(client_id), Some(enc(secret)));
            }
            None => fields.push(("client_id", client_id)),
        }
        let (status, body) = self.send(url, request.form(&fields)).await?;
        match body {
            Ok(v) => Ok((status, v)),
            // Revocation answers 200 with an empty body.
            Err(_) if status.is_success() => Ok((status, serde_json::Value::Null)),
            Err(e) => Err(FetchError(format!("{url} answered {status}: {e}"))),
        }
    }

    /// GETs an XML document (a SAML IdP's metadata), as text.
    pub async fn get_xml(&self, url: &str) -> Result<String, FetchError> {
        let request = self.client.get(url).header(
            reqwest::header::ACCEPT,
            "application/samlmetadata+xml, application/xml",
        );
        let (status, body) = self.send_raw(url, request).await?;
        if !status.is_success() {
            return Err(FetchError(format!("{url} answered {status}")));
        }
        String::from_utf8(body).map_err(|_| FetchError(format!("{url} did not send UTF-8 text")))
    }

    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Result<serde_json::Value, FetchError>), FetchError> {
        let (status, body) = self.send_raw(url, request).await?;
        Ok((
            status,
            serde_json::from_slice(&body)
                .map_err(|e| FetchError(format!("{url} did not send a JSON document: {e}"))),
        ))
    }

    async fn send_raw(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), FetchError> {
        let origin = url::Url::parse(url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let sent = request.send().await;
        let outcome = match &sent {
            Ok(r) => r.status().as_u16().to_string(),
            Err(_) => "unreachable".to_owned(),
        };
        metrics::counter!(PROVIDER_REQUESTS, "provider" => origin.clone(), "status" => outcome)
            .increment(1);
        metrics::histogram!(PROVIDER_REQUEST_SECONDS, "provider" => origin)
            .record(started.elapsed().as_secs_f64());
        let mut response = sent.map_err(|e| FetchError(describe(url, &e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError(format!(
                "{url} answered with a redirect ({status}); redirects are not followed"
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(FetchError(format!(
                "{url} sent more than {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError(describe(url, &e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError(format!(
                    "{url} sent more than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }
}

fn describe(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("{url} did not answer in time")
    } else if e.is_connect() {
        format!("{url} could not be reached")
    } else {
        format!("{url}: {e}")
    }
}
