//! Log setup: the operational log (human-readable, filtered by `PORTCULLIS_LOG`) on stderr,
//! and the audit log — every `portcullis::audit` event (sign-ins, session ends, refused
//! requests) as one JSON line — on stderr or appended to a file.

use std::path::Path;

use anyhow::Context;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::prelude::*;

/// The target of audit events.
pub const AUDIT: &str = "portcullis::audit";

/// Installs the subscriber. `client` commands log warnings only and have no audit log.
pub fn init(client: bool, audit_file: Option<&Path>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| EnvFilter::new(if client { "warn" } else { "info" }));
    let operational = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter_fn(|m| m.target() != AUDIT))
        .with_filter(filter);
    let audit = if client {
        None
    } else {
        let writer = match audit_file {
            Some(path) => {
                let file = open_append(path)
                    .with_context(|| format!("opening the audit log {}", path.display()))?;
                BoxMakeWriter::new(std::sync::Mutex::new(file))
            }
            None => BoxMakeWriter::new(std::io::stderr),
        };
        Some(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(writer)
                .with_filter(filter_fn(|m| {
                    m.target() == AUDIT && *m.level() <= tracing::Level::INFO
                })),
        )
    };
    tracing_subscriber::registry()
        .with(operational)
        .with(audit)
        .try_init()
        .context("installing the log subscriber")
}

/// Opens the audit file for appending, readable by its owner only.
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}
