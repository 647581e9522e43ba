//! Fetching provider documents: no redirects, connect and total time limits, a size limit, JSON
//! only. Counts every request so that benchmarks can show the hot path makes none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The largest discovery document or key set accepted.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a fetch failed (shown to administrators; never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// An HTTP client for provider documents.
pub struct Fetcher {
    client: reqwest::Client,
    requests: AtomicU64,
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
        Ok(Self {
            client,
            requests: AtomicU64::new(0),
        })
    }

    /// How many requests were sent so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError(describe(url, &e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError(format!(
                "{url} answered with a redirect ({status}); redirects are not followed"
            )));
        }
        if !status.is_success() {
            return Err(FetchError(format!("{url} answered {status}")));
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
        serde_json::from_slice(&body)
            .map_err(|e| FetchError(format!("{url} did not send a JSON document: {e}")))
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
