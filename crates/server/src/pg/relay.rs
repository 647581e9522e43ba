//! The relay of a session in a database bound to an upstream: the client's messages go to the
//! person's own upstream session and its answers come back byte for byte — except the
//! statements that are Portcullis's own (its DDL/DCL, EXPLAIN AUTHENTICATION, queries over
//! `sys.*` and the seed's `CURRENT_USER()`-style functions), which Portcullis answers.

use pgwire::messages::PgWireFrontendMessage;
use portcullis_catalog::sql::{parse_statements, Statement};
use portcullis_gateway::session::UpstreamSession;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::bytes::BytesMut;

/// The seed's functions; PostgreSQL has none of them with parentheses but
/// `current_database()`, which Portcullis answers with its own database.
const OWN_FUNCTIONS: &[&str] = &[
    "current_user",
    "current_groups",
    "current_roles",
    "current_database",
    "current_session_id",
];

/// Whether a query text names a `sys` table or one of the seed's functions (outside quotes).
fn names_portcullis(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                i += 1;
                continue;
            }
            None if c == b'\'' || c == b'"' => {
                quote = Some(c);
                i += 1;
                continue;
            }
            None => {}
        }
        let starts_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts_word {
            if lower[i..].starts_with("sys.") {
                return true;
            }
            for f in OWN_FUNCTIONS {
                if lower[i..].starts_with(f) {
                    let rest = lower[i + f.len()..].trim_start();
                    if rest.starts_with('(') {
                        return true;
                    }
                }
            }
        }
        i += 1;
    }
    false
}

/// Whether a simple-protocol query is Portcullis's to answer: every statement in it is one of
/// its own (SET, SHOW and transaction control go upstream).
pub fn ours(sql: &str) -> bool {
    let Ok(statements) = parse_statements(sql) else {
        return false;
    };
    !statements.is_empty()
        && statements.iter().all(|s| match s {
            Statement::Query(text) => names_portcullis(text),
            Statement::SetParameter(_)
            | Statement::Show(_)
            | Statement::Transaction(_)
            | Statement::Noop(_) => false,
            _ => true,
        })
}

/// Whether a client message goes to the upstream (the extended protocol always does).
pub fn forwards(msg: &PgWireFrontendMessage) -> bool {
    match msg {
        PgWireFrontendMessage::Query(q) => !ours(&q.query),
        PgWireFrontendMessage::Parse(_)
        | PgWireFrontendMessage::Bind(_)
        | PgWireFrontendMessage::Describe(_)
        | PgWireFrontendMessage::Execute(_)
        | PgWireFrontendMessage::Close(_)
        | PgWireFrontendMessage::Sync(_)
        | PgWireFrontendMessage::Flush(_)
        | PgWireFrontendMessage::CopyData(_)
        | PgWireFrontendMessage::CopyDone(_)
        | PgWireFrontendMessage::CopyFail(_) => true,
        _ => false,
    }
}

/// A simple query as the upstream gets it: a vendor object grant (`GRANT SELECT ON TABLE t TO
/// GROUP analysts`) with its grantees resolved to their upstream roles in the session's own
/// database; anything else as it is. A grantee that does not resolve is the client's error.
pub fn for_upstream(
    msg: PgWireFrontendMessage,
    catalog: &portcullis_catalog::Catalog,
    database_id: i64,
) -> Result<PgWireFrontendMessage, portcullis_catalog::CatalogError> {
    let PgWireFrontendMessage::Query(q) = &msg else {
        return Ok(msg);
    };
    match portcullis_catalog::upstream::object_grant_upstream(
        &catalog.state(),
        database_id,
        &q.query,
    ) {
        None => Ok(msg),
        Some(Ok(sql)) => Ok(PgWireFrontendMessage::Query(
            pgwire::messages::simplequery::Query::new(sql),
        )),
        Some(Err(e)) => Err(e),
    }
}

/// The message as bytes for the upstream.
pub fn encode(msg: &PgWireFrontendMessage) -> std::io::Result<BytesMut> {
    let mut out = BytesMut::new();
    msg.encode(&mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(out)
}

/// A simple Query frame.
fn query_frame(sql: &str) -> std::io::Result<BytesMut> {
    encode(&PgWireFrontendMessage::Query(
        pgwire::messages::simplequery::Query::new(sql.to_owned()),
    ))
}

/// Sends a client's message upstream — with the creator group's switch around a simple Query
/// whose first statement creates what an SSO user's group should own.
pub async fn send_message(
    up: &mut UpstreamSession,
    msg: &PgWireFrontendMessage,
) -> std::io::Result<()> {
    let frames = encode(msg)?;
    let wrap = match msg {
        PgWireFrontendMessage::Query(q) if up.flow.synced() => up.creator.wrap(&q.query),
        _ => None,
    };
    let out = match wrap {
        None => {
            up.flow.sent(&frames);
            frames
        }
        Some(w) => {
            let mut out = query_frame(&w.before)?;
            up.flow.sent_own(&out);
            up.flow.sent(&frames);
            out.extend_from_slice(&frames);
            let after = query_frame(&w.after)?;
            up.flow.sent_own(&after);
            out.extend_from_slice(&after);
            out
        }
    };
    up.stream.write_all(&out).await?;
    up.stream.flush().await
}

/// The statement name and query text of a Parse frame, and where the text ends.
fn parse_text(frame: &[u8]) -> Option<(&str, usize)> {
    let body = frame.get(5..)?;
    let name_end = body.iter().position(|&b| b == 0)?;
    let rest = &body[name_end + 1..];
    let text_end = rest.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&rest[..text_end]).ok()?;
    Some((text, 5 + name_end + 1 + text_end))
}

/// A Parse frame with another query text (name and parameter types as they were).
fn reparse(frame: &[u8], text_end: usize, sql: &str) -> BytesMut {
    let body_start = 5;
    let name_end = frame[body_start..]
        .iter()
        .position(|&b| b == 0)
        .map_or(body_start, |i| body_start + i + 1);
    let mut out = BytesMut::with_capacity(frame.len() + sql.len());
    out.extend_from_slice(b"P\0\0\0\0");
    out.extend_from_slice(&frame[body_start..name_end]);
    out.extend_from_slice(sql.as_bytes());
    out.extend_from_slice(&frame[text_end..]);
    let len = i32::try_from(out.len() - 1).unwrap_or(i32::MAX);
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out
}

/// A statement that fails upstream with `e`'s SQLSTATE and message: a refused object grant in
/// an extended-protocol batch errs in its place, so the error arrives in order and the batch
/// is skipped up to its Sync, as PostgreSQL would.
fn failing(e: &portcullis_catalog::CatalogError) -> String {
    format!(
        "DO $portcullis$ BEGIN RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = '{}'; END \
         $portcullis$",
        e.sqlstate.replace('\'', ""),
        // No `$` (the body's quote stays closed) and no backslash (whatever the session's
        // standard_conforming_strings).
        e.message.replace(['$', '\\'], "").replace('\'', "''")
    )
}

/// Whether a statement text begins with GRANT or REVOKE (the cheap test before parsing).
fn may_grant(sql: &str) -> bool {
    let t = sql.trim_start().as_bytes();
    t.get(..5).is_some_and(|w| w.eq_ignore_ascii_case(b"GRANT"))
        || t.get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"REVOKE"))
}

/// Sends whole extended-protocol frames upstream — as they are, but for a Parse of a vendor
/// object grant (its grantees resolved, as in [`for_upstream`]) and the creator group's switch
/// before a batch that begins by parsing a `CREATE` of an SSO user, and back after that
/// batch's Sync. Frames are copied only when one of those happens.
pub async fn send_frames(
    up: &mut UpstreamSession,
    frames: &[u8],
    object_grant: impl Fn(&str) -> Option<Result<String, portcullis_catalog::CatalogError>>,
) -> std::io::Result<()> {
    let mut out: Option<BytesMut> = None;
    let mut i = 0;
    while i + 5 <= frames.len() {
        let len = usize::try_from(i32::from_be_bytes([
            frames[i + 1],
            frames[i + 2],
            frames[i + 3],
            frames[i + 4],
        ]))
        .unwrap_or(4)
        .max(4);
        let frame = &frames[i..(i + 1 + len).min(frames.len())];
        let mut replaced = None;
        if frame[0] == b'P' {
            if let Some((sql, text_end)) = parse_text(frame) {
                if may_grant(sql) {
                    replaced = match object_grant(sql) {
                        None => None,
                        Some(Ok(sql)) => Some(reparse(frame, text_end, &sql)),
                        Some(Err(e)) => Some(reparse(frame, text_end, &failing(&e))),
                    };
                }
                if up.flow.synced() && up.creator.after_sync.is_none() {
                    if let Some(w) = up.creator.wrap(sql) {
                        let o = out.get_or_insert_with(|| BytesMut::from(&frames[..i]));
                        let before = query_frame(&w.before)?;
                        up.flow.sent_own(&before);
                        o.extend_from_slice(&before);
                        up.creator.after_sync = Some(w.after);
                    }
                }
            }
        }
        let frame: &[u8] = match &replaced {
            Some(f) => {
                out.get_or_insert_with(|| BytesMut::from(&frames[..i]));
                f
            }
            None => frame,
        };
        up.flow.sent(frame);
        if let Some(o) = out.as_mut() {
            o.extend_from_slice(frame);
        }
        if frame[0] == b'S' {
            // The switch back only if this Sync is owed its answer (not caught in a COPY): an
            // own query's answers must be told from the client's. A session in doubt is never
            // kept; it goes on in the group's role, one of the person's own.
            let after = up.creator.after_sync.take();
            if let Some(after) = after.filter(|_| up.flow.may_send_own()) {
                let after = query_frame(&after)?;
                up.flow.sent_own(&after);
                out.get_or_insert_with(|| BytesMut::from(&frames[..i + 1 + len]))
                    .extend_from_slice(&after);
            }
        }
        i += 1 + len;
    }
    up.stream
        .write_all(out.as_deref().unwrap_or(frames))
        .await?;
    up.stream.flush().await
}

/// The next bytes the upstream sends for the client (never resolves without a relay): answers
/// to Portcullis's own queries are taken out. Cancel-safe.
pub async fn read_upstream(relay: &mut Option<Box<UpstreamSession>>) -> std::io::Result<BytesMut> {
    let Some(up) = relay.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        // One buffer per session, its capacity reused read after read.
        if up.inbuf.capacity() < 4096 {
            up.inbuf.reserve(16 * 1024);
        }
        let n = up.stream.read_buf(&mut up.inbuf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let bytes = up.flow.received(up.inbuf.split());
        if !bytes.is_empty() {
            return Ok(bytes);
        }
    }
}

/// The key a client was given (BackendKeyData), as the registry keys it.
pub type ClientKey = (i32, Vec<u8>);

fn key_bytes(secret: &pgwire::messages::startup::SecretKey) -> Vec<u8> {
    match secret {
        pgwire::messages::startup::SecretKey::I32(n) => n.to_be_bytes().to_vec(),
        pgwire::messages::startup::SecretKey::Bytes(b) => b.to_vec(),
    }
}

/// Where a relayed session's queries are cancelled.
#[derive(Debug, Clone)]
struct CancelTarget {
    host: String,
    port: u16,
    process_id: i32,
    secret_key: i32,
}

/// Relayed sessions by their client's key.
#[derive(Debug, Default)]
pub struct Cancels(parking_lot::Mutex<std::collections::HashMap<ClientKey, CancelTarget>>);

impl Cancels {
    /// Registers a relayed session under the key its client holds; answers that key.
    pub fn register(
        &self,
        pid: i32,
        secret: &pgwire::messages::startup::SecretKey,
        up: &UpstreamSession,
    ) -> ClientKey {
        let key = (pid, key_bytes(secret));
        self.0.lock().insert(
            key.clone(),
            CancelTarget {
                host: up.host.clone(),
                port: up.port,
                process_id: up.process_id,
                secret_key: up.secret_key,
            },
        );
        key
    }

    pub fn forget(&self, key: &ClientKey) {
        self.0.lock().remove(key);
    }
}

/// Passes a client's cancel request on to its relayed upstream session (a request with an
/// unknown key does nothing, as PostgreSQL's does).
pub struct CancelRelay(pub std::sync::Arc<super::PgShared>);

#[async_trait::async_trait]
impl pgwire::api::cancel::CancelHandler for CancelRelay {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        let target = self
            .0
            .cancels
            .0
            .lock()
            .get(&(request.pid, key_bytes(&request.secret_key)))
            .cloned();
        if let Some(t) = target {
            portcullis_gateway::session::cancel(&t.host, t.port, t.process_id, t.secret_key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portcullis_answers_its_own_statements_and_nothing_else() {
        for own in [
            "SELECT * FROM sys.sessions",
            "select id from SYS.users where 1 = 1",
            "SELECT CURRENT_USER()",
            "SELECT current_database ()",
            "CREATE GROUP analysts@sales",
            "GRANT USE ON DATABASE sales TO GROUP analysts@sales",
            "EXPLAIN AUTHENTICATION 'x'",
        ] {
            assert!(ours(own), "{own}");
        }
        for theirs in [
            "SELECT 1",
            "SELECT current_user",
            "SELECT 'sys.users' AS x",
            "SELECT * FROM mysys.users",
            "CREATE TABLE t (a int)",
            "INSERT INTO t VALUES (1)",
            "BEGIN",
            "SET search_path = x",
            "SHOW server_version",
            "COPY t FROM STDIN",
            "",
        ] {
            assert!(!ours(theirs), "{theirs}");
        }
    }
}
