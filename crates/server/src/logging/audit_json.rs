//! The audit log's lines: each `portcullis::audit` event as one JSON object, written straight
//! into the audit sink's buffer. The same shape as tracing-subscriber's flattened JSON
//! (`timestamp`, `level`, `message`, the event's fields, `target`), without its per-event
//! machinery, which was ~4% of a token sign-in's CPU (docs/benchmarks.md).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer};

use super::AuditSink;

/// Writes audit events (the caller filters them to the audit target) into `sink`.
pub struct AuditJson {
    pub sink: AuditSink,
}

thread_local! {
    /// The line being written, and a scratch string for values given by `Debug`/`Display`.
    static LINE: RefCell<(Vec<u8>, String)> = RefCell::new((Vec::with_capacity(1024), String::new()));
}

impl<S: tracing::Subscriber> Layer<S> for AuditJson {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        LINE.with(|buffers| match buffers.try_borrow_mut() {
            Ok(mut buffers) => {
                let (line, scratch) = &mut *buffers;
                self.write(event, line, scratch);
            }
            // An audit event raised while this thread writes one (from a value's Display,
            // say): fresh buffers, not a panic.
            Err(_) => self.write(event, &mut Vec::new(), &mut String::new()),
        });
    }
}

impl AuditJson {
    fn write(&self, event: &tracing::Event<'_>, line: &mut Vec<u8>, scratch: &mut String) {
        line.clear();
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let _ = write!(line, "{{\"timestamp\":\"{now}\",\"level\":");
        string(line, event.metadata().level().as_str());
        event.record(&mut Fields { line, scratch });
        line.extend_from_slice(b",\"target\":");
        string(line, event.metadata().target());
        line.extend_from_slice(b"}\n");
        if let Err(e) = self.sink.0.lock().write_all(line) {
            eprintln!("portcullis: writing the audit log failed: {e}");
        }
    }
}

/// Appends `,"name":value` for each field of an event.
struct Fields<'a> {
    line: &'a mut Vec<u8>,
    scratch: &'a mut String,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(b',');
        string(self.line, field.name());
        self.line.push(b':');
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        string(self.line, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(self.line, "{n}");
            }
            None => self.line.extend_from_slice(b"null"),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value:?}");
        self.key(field);
        string(self.line, self.scratch);
    }
}

/// Appends `s` as a JSON string.
fn string(line: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *line, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The line is the JSON object tracing-subscriber's flattened JSON wrote: every kind of
    /// field, escaping included, and a field left out when its value is `None`.
    #[test]
    fn a_line_is_one_json_object_with_the_events_fields() {
        let out = Buffer::default();
        let sink = AuditSink::new(Box::new(out.clone()));
        let subscriber = tracing_subscriber::registry().with(AuditJson { sink: sink.clone() });
        tracing::subscriber::with_default(subscriber, || {
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 5));
            let none: Option<&str> = None;
            tracing::info!(
                target: "portcullis::audit",
                event = %"sign_in",
                id = 7_i64,
                count = 3_u64,
                ok = true,
                ratio = 0.5_f64,
                %peer,
                identity = "al\"ice\n\u{1}@db",
                reason = none,
                refusal = ?Some("x"),
                "authentication event"
            );
        });
        sink.flush();
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "portcullis::audit");
        assert_eq!(line["message"], "authentication event");
        assert_eq!(line["event"], "sign_in");
        assert_eq!(line["id"], 7);
        assert_eq!(line["count"], 3);
        assert_eq!(line["ok"], true);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["peer"], "127.0.0.1:5");
        assert_eq!(line["identity"], "al\"ice\n\u{1}@db");
        assert_eq!(line["refusal"], "Some(\"x\")");
        assert!(line.get("reason").is_none(), "{line}");
        let stamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    /// A value whose Display raises an audit event itself: no panic, the outer line is whole
    /// (tracing's own re-entrancy guard drops the inner event before any layer sees it).
    #[test]
    fn an_event_raised_while_one_is_written_breaks_nothing() {
        struct Noisy;
        impl std::fmt::Display for Noisy {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                tracing::info!(target: "portcullis::audit", "inner");
                f.write_str("outer value")
            }
        }
        let out = Buffer::default();
        let sink = AuditSink::new(Box::new(out.clone()));
        let subscriber = tracing_subscriber::registry().with(AuditJson { sink: sink.clone() });
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "portcullis::audit", value = %Noisy, "outer");
        });
        sink.flush();
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let outer = lines.last().unwrap();
        assert_eq!(outer["message"], "outer", "{text}");
        assert_eq!(outer["value"], "outer value");
    }
}
