//! Log setup: the operational log (human-readable, filtered by `PORTCULLIS_LOG`) on stderr,
//! and the audit log — every `portcullis::audit` event (sign-ins, session ends, refused
//! requests) as one JSON line — on stderr or appended to a file through a buffer that is
//! written out every quarter second (like the events' store batches: a sign-in never waits
//! for a write, and a crash loses at most that quarter second).

use std::path::Path;

use anyhow::Context;
use std::io::Write;
use std::sync::Arc;
use tracing_subscriber::filter::{filter_fn, EnvFilter};

use parking_lot::Mutex;
use tracing_subscriber::prelude::*;

mod audit_json;

/// The target of audit events.
pub const AUDIT: &str = "portcullis::audit";

/// Installs the subscriber. `client` commands log warnings only and have no audit log. The
/// audit sink is handed back: the server flushes it every quarter second and at the end.
pub fn init(client: bool, audit_file: Option<&Path>) -> anyhow::Result<Option<AuditSink>> {
    let filter = EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| EnvFilter::new(if client { "warn" } else { "info" }));
    let operational = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter_fn(|m| m.target() != AUDIT))
        .with_filter(filter);
    let mut guard = None;
    let audit = if client {
        None
    } else {
        let sink: Box<dyn std::io::Write + Send> = match audit_file {
            Some(path) => Box::new(
                open_append(path)
                    .with_context(|| format!("opening the audit log {}", path.display()))?,
            ),
            None => Box::new(std::io::stderr()),
        };
        let audit = AuditSink::new(sink);
        guard = Some(audit.clone());
        Some(
            audit_json::AuditJson { sink: audit }.with_filter(filter_fn(|m| {
                m.target() == AUDIT && *m.level() <= tracing::Level::INFO
            })),
        )
    };
    tracing_subscriber::registry()
        .with(operational)
        .with(audit)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(guard)
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

/// The audit log's buffered writer: lines go into a 64 KiB buffer (written out when it fills,
/// on [`AuditSink::flush`], and when dropped).
#[derive(Clone)]
pub struct AuditSink(Arc<Mutex<std::io::BufWriter<Box<dyn Write + Send>>>>);

impl AuditSink {
    fn new(sink: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(Mutex::new(std::io::BufWriter::with_capacity(
            64 * 1024,
            sink,
        ))))
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        if let Err(e) = self.0.lock().flush() {
            eprintln!("portcullis: writing the audit log failed: {e}");
        }
    }
}
