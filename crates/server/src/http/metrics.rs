//! `GET /metrics`: the Prometheus text format, rendered by `metrics-exporter-prometheus` from
//! what every layer records with the `metrics` macros (sign-ins, session ends, provider
//! requests, key refreshes, flows, refused requests), plus gauges read at scrape time
//! (sessions open by method, pending browser flows, device grants held).

use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis_catalog::SignInMethod;

use super::HttpState;

/// Requests the HTTP front end refused before any handler ran, by reason.
pub const REQUESTS_REFUSED: &str = "portcullis_requests_refused_total";

/// Installs the process-wide recorder; its handle renders `/metrics`.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    const BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .context("metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Counts a request refused by a guard (flood, cross-site, plain http).
pub fn refused(reason: &'static str) {
    metrics::counter!(REQUESTS_REFUSED, "reason" => reason).increment(1);
}

pub async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let Some(handle) = &state.metrics else {
        return super::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "42704",
            "metrics are not recorded in this process",
        )
        .into_response();
    };
    let sessions = state.auth.catalog().sessions.list();
    for method in SignInMethod::ALL {
        let open = sessions.iter().filter(|s| s.via == method).count();
        metrics::gauge!("portcullis_sessions_open", "method" => method.name()).set(open as f64);
    }
    metrics::gauge!("portcullis_sso_flows_pending").set(state.flows.pending() as f64);
    metrics::gauge!("portcullis_sso_device_grants_held").set(state.device.held() as f64);
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
