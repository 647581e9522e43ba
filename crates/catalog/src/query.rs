//! Catalog queries: `SELECT`s over the `sys` tables, run by SQLite on in-memory copies of the
//! catalog. A copy holds no password verifier; each `sys` table is a view showing only the rows
//! the caller may VIEW ([`visibility`]), and an authorizer lets a query read only those views —
//! no writes, no PRAGMA, no ATTACH. Queries run off the async workers on a small pool of engines
//! ([`QueryPool`]), within the time and size limits of [`limits`].

mod copy;
mod limits;
mod pg_catalog;
mod pool;
mod prepared;
mod project;
#[cfg(test)]
mod tests;
mod visibility;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};

use crate::error::{sqlstate, CatalogError};
use crate::events::EventLog;
use crate::model::CatalogState;
use crate::sessions::Session;
use crate::value::{Column, ColumnType, QueryResult, Value};
use portcullis_store::AuthEventRecord;

pub use pool::{QueryJob, QueryPool};
pub use project::session_row;
use visibility::{Owners, Visibility};

/// The hidden tables; the public `sys.x` are views over `sys.x_all` (see [`visibility`]).
const SCHEMA: &str = r#"
CREATE TABLE sys.databases_all (id INTEGER, name TEXT, created_at TEXT, upstream TEXT);
CREATE TABLE sys.users_all (id INTEGER, name TEXT, fqun TEXT, database_id INTEGER,
    database_name TEXT, first_name TEXT, last_name TEXT, email TEXT, state TEXT,
    failed_attempts INTEGER, password_set_at TEXT, created_at TEXT);
CREATE TABLE sys.groups_all (id INTEGER, name TEXT, fqgn TEXT, database_id INTEGER,
    database_name TEXT, created_at TEXT);
CREATE TABLE sys.group_members_all (group_id INTEGER, group_name TEXT, user_id INTEGER,
    user_name TEXT);
CREATE TABLE sys.roles_all (id INTEGER, name TEXT, database_id INTEGER, database_name TEXT,
    description TEXT);
CREATE TABLE sys.role_members_all (role_id INTEGER, role_name TEXT, member_type TEXT,
    member_id INTEGER, member_name TEXT);
CREATE TABLE sys.privileges_all (privilege TEXT, object_type TEXT, object_id INTEGER,
    object_name TEXT, grantee_type TEXT, grantee_id INTEGER, grantee TEXT, grantor TEXT,
    granted_at TEXT);
CREATE TABLE sys.password_settings_all (scope TEXT, scope_id INTEGER, scope_name TEXT,
    name TEXT, value INTEGER);
CREATE TABLE sys.sessions_all (id TEXT, user_id INTEGER, user TEXT, database TEXT,
    database_id INTEGER, authentication_method TEXT, protocol TEXT, peer TEXT,
    start_time TEXT, expires_at TEXT, sso_integration TEXT, groups TEXT, roles TEXT,
    token_expires_at TEXT, node INTEGER);
CREATE TABLE sys.oidc_integrations_all (id INTEGER, name TEXT, database_id INTEGER,
    database_name TEXT, protocol TEXT, issuer TEXT, client_id TEXT, client_secret_set INTEGER,
    default_group TEXT, redirect_host TEXT, redirect_ssl INTEGER, disabled INTEGER,
    enable_id_token_authentication INTEGER, user_id_claims TEXT, additional_scopes TEXT,
    additional_audiences TEXT, groups_claim_ids TEXT, groups_claim_mappings TEXT,
    roles_claim_ids TEXT, roles_claim_mappings TEXT, allowed_groups TEXT, allowed_roles TEXT,
    blocked_groups TEXT, blocked_roles TEXT, allow_offline_access INTEGER,
    protocol_version TEXT, assigned_to TEXT, created_at TEXT, updated_at TEXT,
    directory TEXT);
CREATE TABLE sys.connectivity_pools_all (id INTEGER, name TEXT, listen TEXT,
    sso_integration TEXT, created_at TEXT, advertised TEXT);
CREATE TABLE sys.authentication_events_all (id INTEGER PRIMARY KEY, time TEXT, event TEXT,
    method TEXT, identity TEXT, database TEXT, database_id INTEGER, sso_integration TEXT,
    peer TEXT, application TEXT, result TEXT, reason TEXT, detail TEXT, session_id TEXT,
    token_id TEXT);
"#;

/// What the session functions (`CURRENT_USER()` …) answer during one query.
#[derive(Debug, Default, Clone)]
struct SessionView {
    id: String,
    user: String,
    database: String,
    groups: String,
    roles: String,
    /// Databases whose SSO integrations the session may see.
    administers: Vec<i64>,
    /// Which rows of the `sys` tables the session may see.
    visible: Visibility,
}

/// One in-memory query engine: a connection over its own copy of the catalog, used by one
/// query at a time (the [`QueryPool`] hands it out).
pub struct QueryEngine {
    conn: Connection,
    /// What the copy holds: each part is brought up to date when a query first reads it stale.
    copy: Copy,
    /// The copy's tables, row by row.
    tables: copy::Tables,
    /// What the statement being prepared reads (the authorizer notes it).
    reads: Arc<Mutex<Reads>>,
    /// Set while the engine writes its copy: the authorizer lets its statements through.
    /// (Swapping the authorizer instead would expire the prepared statement.)
    loading: Arc<std::sync::atomic::AtomicBool>,
    /// When the running query must stop; `None` while no query runs (the copy is loaded with
    /// no deadline, however long it takes).
    deadline: Arc<Mutex<Option<Instant>>>,
    /// Why the authorizer refused the statement being prepared, for a clear error.
    refusal: Arc<Mutex<Option<CatalogError>>>,
    view: Arc<Mutex<SessionView>>,
    owners: Arc<Owners>,
    time_limit: Duration,
    /// What each statement in SQLite's statement cache reads: a statement taken from that
    /// cache is not prepared again, so the authorizer is not asked again either.
    known_reads: std::collections::HashMap<String, Reads>,
}

pub fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S+00").to_string())
        .unwrap_or_default()
}

/// The generations each part of an engine's copy was loaded at (`u64::MAX`: not loaded).
#[derive(Debug, Clone, Copy)]
struct Copy {
    /// The catalog tables (`sys.users` …).
    catalog: u64,
    /// The catalog the row owners were worked out from (needed by every query's visibility).
    owners: u64,
    sessions: u64,
    /// Unix seconds at which a loaded session reaches an end: the copy is stale from then on.
    sessions_until: i64,
    /// The newest authentication event in the copy.
    events_through: i64,
}

impl Default for Copy {
    fn default() -> Self {
        Self {
            catalog: u64::MAX,
            owners: u64::MAX,
            sessions: u64::MAX,
            sessions_until: i64::MIN,
            events_through: 0,
        }
    }
}

/// Which parts of the copy a statement reads, from the authorizer's calls while preparing it
/// (tables read through a view are reported too).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Reads {
    catalog: bool,
    sessions: bool,
    events: bool,
    /// The authorizer was asked anything: SQLite prepared the statement now.
    asked: bool,
}

impl Reads {
    fn any(self) -> bool {
        self.catalog || self.sessions || self.events
    }

    const ALL: Self = Self {
        catalog: true,
        sessions: true,
        events: true,
        asked: false,
    };

    /// Notes a read of a hidden `sys.<name>_all` table.
    fn note(&mut self, table: &str) {
        match table {
            "sessions_all" => self.sessions = true,
            "authentication_events_all" => self.events = true,
            _ => self.catalog = true,
        }
    }
}

/// Arms the deadline for one query; disarms it when dropped.
struct Armed(Arc<Mutex<Option<Instant>>>);

impl Armed {
    fn new(deadline: &Arc<Mutex<Option<Instant>>>, at: Instant) -> Self {
        *deadline.lock() = Some(at);
        Self(deadline.clone())
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

impl QueryEngine {
    pub fn new() -> Result<Self, CatalogError> {
        Self::with_time_limit(limits::QUERY_TIME_LIMIT)
    }

    /// An engine whose queries stop after `time_limit`.
    pub fn with_time_limit(time_limit: Duration) -> Result<Self, CatalogError> {
        let conn = Connection::open_in_memory().map_err(internal)?;
        conn.execute("ATTACH DATABASE ':memory:' AS sys", [])
            .map_err(internal)?;
        let view = Arc::new(Mutex::new(SessionView::default()));
        register_functions(&conn, &view).map_err(internal)?;
        visibility::register_functions(&conn, &view).map_err(internal)?;
        limits::register_functions(&conn).map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        visibility::create_views(&conn).map_err(internal)?;
        pg_catalog::register_functions(&conn).map_err(internal)?;
        pg_catalog::create_views(&conn).map_err(internal)?;
        limits::apply(&conn);
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 2);
        conn.set_prepared_statement_cache_capacity(prepared::CACHED_STATEMENTS);
        let refusal: Arc<Mutex<Option<CatalogError>>> = Arc::default();
        let reads: Arc<Mutex<Reads>> = Arc::default();
        let loading: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        conn.authorizer(Some(read_only_sys(
            refusal.clone(),
            reads.clone(),
            loading.clone(),
        )));
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::default();
        let progress_deadline = deadline.clone();
        conn.progress_handler(
            limits::PROGRESS_STEPS,
            Some(move || progress_deadline.lock().is_some_and(|d| Instant::now() > d)),
        );
        Ok(Self {
            conn,
            copy: Copy::default(),
            tables: copy::Tables::default(),
            reads,
            loading,
            deadline,
            refusal,
            view,
            owners: Arc::default(),
            time_limit,
            known_reads: Default::default(),
        })
    }

    /// Describes a query's result columns without running it (needs no copy of the catalog).
    pub fn describe(&self, sql: &str) -> Result<(Vec<Column>, usize), CatalogError> {
        let sql = rewrite_placeholders(&pg_catalog::translate(sql));
        let stmt = prepared::prepare_authorized(
            &self.conn,
            &self.refusal,
            &self.reads,
            &self.known_reads,
            &sql,
        )?
        .stmt;
        Ok((columns_of(&stmt), stmt.parameter_count()))
    }

    /// Runs a query for a session. The statement is prepared first; the parts of the copy it
    /// reads are then brought up to date, so a query that reads no `sys` table (`SELECT 1`)
    /// costs nothing per session or event.
    pub fn run(&mut self, job: &QueryJob) -> Result<QueryResult, CatalogError> {
        self.execute(job, None)
            .unwrap_or_else(|| Err(CatalogError::internal("a catalog query was not run")))
    }

    /// Runs a query on the spot if it is small: it reads no `sys` table (so the copy need not
    /// be touched) and finishes within `budget`. `None`: it is not; run it with [`Self::run`]
    /// off the async workers (it is a read, so running it again changes nothing).
    pub fn run_small(
        &mut self,
        job: &QueryJob,
        budget: Duration,
    ) -> Option<Result<QueryResult, CatalogError>> {
        self.execute(job, Some(budget))
    }

    fn execute(
        &mut self,
        job: &QueryJob,
        small: Option<Duration>,
    ) -> Option<Result<QueryResult, CatalogError>> {
        let sql = rewrite_placeholders(&pg_catalog::translate(&job.sql));
        *self.deadline.lock() = None;
        let prepared = prepared::prepare_authorized(
            &self.conn,
            &self.refusal,
            &self.reads,
            &self.known_reads,
            &sql,
        );
        let prepared::Authorized {
            mut stmt,
            reads,
            remember,
        } = match prepared {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        if remember {
            prepared::remember(&mut self.known_reads, &sql, reads);
        }
        if small.is_some() && (reads.any() || self.copy.owners != job.catalog_generation) {
            return None;
        }
        let mut loader = Loader {
            conn: &self.conn,
            loading: &self.loading,
            tables: &mut self.tables,
        };
        match loader.refresh(&mut self.copy, job, reads) {
            Ok(Some(owners)) => self.owners = Arc::new(owners),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        *self.view.lock() = session_view(&job.session, &job.state, self.owners.clone());
        let columns = columns_of(&stmt);
        let params = &job.params;
        if stmt.parameter_count() != params.len() {
            return Some(Err(CatalogError::new(
                sqlstate::SYNTAX_ERROR,
                format!(
                    "the query has {} parameters but {} values were given",
                    stmt.parameter_count(),
                    params.len()
                ),
            )));
        }
        for (i, p) in params.iter().enumerate() {
            let bound = match p {
                Value::Null => stmt.raw_bind_parameter(i + 1, rusqlite::types::Null),
                Value::Bool(b) => stmt.raw_bind_parameter(i + 1, *b),
                Value::Int(n) => stmt.raw_bind_parameter(i + 1, *n),
                Value::Float(f) => stmt.raw_bind_parameter(i + 1, *f),
                Value::Text(s) => stmt.raw_bind_parameter(i + 1, s.as_str()),
            };
            if let Err(e) = bound {
                return Some(Err(query_error(e)));
            }
        }
        let deadline = Instant::now() + small.unwrap_or(self.time_limit);
        let _armed = Armed::new(&self.deadline, deadline);
        let ran = rows_of(&mut stmt, &columns, deadline);
        match ran {
            Err(e) if small.is_some() && e.sqlstate == sqlstate::QUERY_CANCELED => None,
            ran => Some(ran.map(|rows| QueryResult { columns, rows })),
        }
    }
}

/// Steps a bound statement to its end, within the deadline and the result limits.
fn rows_of(
    stmt: &mut rusqlite::Statement<'_>,
    columns: &[Column],
    deadline: Instant,
) -> Result<Vec<Vec<Value>>, CatalogError> {
    let mut rows = Vec::new();
    let mut budget = limits::ResultBudget::new(deadline);
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next().map_err(query_error)? {
        budget.row()?;
        let mut out = Vec::with_capacity(columns.len());
        for (i, col) in columns.iter().enumerate() {
            let v = to_value(row.get_ref(i).map_err(query_error)?, col.kind);
            budget.value(&v)?;
            out.push(v);
        }
        rows.push(out);
    }
    Ok(rows)
}

/// Writes an engine's copy (with no deadline: the copy is loaded however long it takes; and
/// with the authorizer letting the engine's own statements through).
struct Loader<'a> {
    conn: &'a Connection,
    loading: &'a std::sync::atomic::AtomicBool,
    tables: &'a mut copy::Tables,
}

impl Loader<'_> {
    /// Brings the parts of the copy a statement `reads` up to the job's catalog, sessions and
    /// events. Returns the row owners when the catalog changed since they were worked out.
    fn refresh(
        &mut self,
        copy: &mut Copy,
        job: &QueryJob,
        reads: Reads,
    ) -> Result<Option<Owners>, CatalogError> {
        let state = &job.state;
        let owners = (copy.owners != job.catalog_generation).then(|| Owners::of(state));
        copy.owners = job.catalog_generation;
        if reads.events {
            if let Some(log) = &job.events {
                self.load_events(copy, log)?;
            }
        }
        if reads.catalog && copy.catalog != job.catalog_generation {
            copy.catalog = u64::MAX;
            write_copy(self.conn, self.loading, |conn| {
                self.tables.sync_catalog(conn, state)
            })?;
            copy.catalog = job.catalog_generation;
        }
        // Sessions are listed with the limits of the catalog the query runs over.
        let now = crate::catalog::now();
        let generation = job.sessions.generation();
        if reads.sessions && (copy.sessions != generation || now >= copy.sessions_until) {
            copy.sessions = u64::MAX;
            let live = job
                .sessions
                .live(now, |s| crate::catalog::limits_in(state, s));
            let remote = job.sessions.remote();
            let rows = project::sessions(&live.sessions, &remote, state, job.sessions.node());
            write_copy(self.conn, self.loading, |conn| {
                self.tables.sync_sessions(conn, rows)
            })?;
            copy.sessions = generation;
            copy.sessions_until = live.valid_until;
        }
        Ok(owners)
    }

    /// Appends the events newer than the copy's and drops those the log no longer keeps.
    fn load_events(&self, copy: &mut Copy, log: &EventLog) -> Result<(), CatalogError> {
        let (fresh, oldest) = log.since(copy.events_through);
        let nothing_dropped = oldest <= copy.events_through.saturating_add(1)
            || (oldest == i64::MAX && copy.events_through == 0);
        if fresh.is_empty() && nothing_dropped {
            return Ok(());
        }
        write_copy(self.conn, self.loading, |conn| {
            append_events(conn, &fresh, oldest)
        })?;
        if let Some(last) = fresh.last() {
            copy.events_through = last.id;
        }
        Ok(())
    }
}

/// Writes the copy (the authorizer lets the engine's own statements through meanwhile).
fn write_copy<T>(
    conn: &Connection,
    loading: &std::sync::atomic::AtomicBool,
    load: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, CatalogError> {
    use std::sync::atomic::Ordering;
    loading.store(true, Ordering::Release);
    let loaded = load(conn);
    loading.store(false, Ordering::Release);
    loaded.map_err(internal)
}

fn read_only_sys(
    refusal: Arc<Mutex<Option<CatalogError>>>,
    reads: Arc<Mutex<Reads>>,
    loading: Arc<std::sync::atomic::AtomicBool>,
) -> impl for<'r> FnMut(AuthContext<'r>) -> Authorization + Send + 'static {
    move |ctx: AuthContext<'_>| {
        if loading.load(std::sync::atomic::Ordering::Acquire) {
            return Authorization::Allow;
        }
        reads.lock().asked = true;
        let decision = match ctx.action {
            AuthAction::Select | AuthAction::Recursive => Ok(()),
            AuthAction::Read { table_name, .. } if ctx.database_name == Some("sys") => {
                match visibility::may_read(table_name, ctx.accessor) {
                    Some(false) => Err(not_a_read()),
                    Some(true) => {
                        reads.lock().note(table_name);
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            // A common table expression or a subquery (no database): `count(*)` over one asks
            // to read it with no column.
            AuthAction::Read { .. } if ctx.database_name.is_none() => Ok(()),
            AuthAction::Function { function_name } => limits::check_function(function_name),
            _ => Err(not_a_read()),
        };
        match decision {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                refusal.lock().get_or_insert(reason);
                Authorization::Deny
            }
        }
    }
}

fn not_a_read() -> CatalogError {
    CatalogError::denied("catalog queries may only read the sys tables")
}

fn internal(e: rusqlite::Error) -> CatalogError {
    tracing::error!(error = %e, "query engine failed");
    CatalogError::internal("the catalog query engine failed")
}

/// Maps SQLite's complaint to an SQLSTATE and a message that names no internals.
fn query_error(e: rusqlite::Error) -> CatalogError {
    match &e {
        rusqlite::Error::SqlInputError {
            msg, offset, sql, ..
        } => {
            let state = if msg.contains("no such table") {
                sqlstate::UNDEFINED_TABLE
            } else if msg.contains("no such column") {
                "42703"
            } else if msg.contains("no such function") || msg.contains("wrong number of arguments")
            {
                "42883"
            } else {
                sqlstate::SYNTAX_ERROR
            };
            let position = usize::try_from(*offset)
                .ok()
                .and_then(|o| sql.get(..o))
                .map(|s| s.chars().count() + 1);
            CatalogError {
                sqlstate: state,
                message: msg.clone(),
                position,
            }
        }
        rusqlite::Error::SqliteFailure(err, msg) => match err.code {
            rusqlite::ErrorCode::AuthorizationForStatementDenied => not_a_read(),
            rusqlite::ErrorCode::OperationInterrupted => limits::time_limit_exceeded(),
            rusqlite::ErrorCode::TooBig => limits::value_too_large(),
            _ => {
                let text = msg.clone().unwrap_or_else(|| err.to_string());
                let state = if text.contains("no such table") {
                    sqlstate::UNDEFINED_TABLE
                } else if text.contains("not authorized") {
                    return not_a_read();
                } else if text.contains("pattern too complex") {
                    return limits::pattern_too_long();
                } else {
                    "22000"
                };
                CatalogError::new(state, text)
            }
        },
        rusqlite::Error::MultipleStatement => {
            CatalogError::new(sqlstate::SYNTAX_ERROR, "one statement at a time")
        }
        _ => CatalogError::new("22000", e.to_string()),
    }
}

fn columns_of(stmt: &rusqlite::Statement<'_>) -> Vec<Column> {
    stmt.columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_owned(),
            kind: match c.decl_type().map(str::to_ascii_uppercase).as_deref() {
                Some("INTEGER") => ColumnType::Int,
                _ => ColumnType::Text,
            },
        })
        .collect()
}

fn to_value(v: ValueRef<'_>, kind: ColumnType) -> Value {
    match (v, kind) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), ColumnType::Int) => Value::Int(i),
        (ValueRef::Integer(i), _) => Value::Text(i.to_string()),
        (ValueRef::Real(f), _) => Value::Text(f.to_string()),
        (ValueRef::Text(t), _) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        (ValueRef::Blob(b), _) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut text = String::with_capacity(2 + 2 * b.len());
            text.push_str("\\x");
            for x in b {
                text.push(char::from(HEX[usize::from(x >> 4)]));
                text.push(char::from(HEX[usize::from(x & 15)]));
            }
            Value::Text(text)
        }
    }
}

/// PostgreSQL clients number parameters `$1`; SQLite reads `?1` positionally.
fn rewrite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(ch) = chars.next() {
        match quote {
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                out.push(ch);
            }
            None => match ch {
                '\'' | '"' => {
                    quote = Some(ch);
                    out.push(ch);
                }
                '$' if chars.peek().is_some_and(|c| c.is_ascii_digit()) => out.push('?'),
                _ => out.push(ch),
            },
        }
    }
    out
}

fn register_functions(conn: &Connection, view: &Arc<Mutex<SessionView>>) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    type Getter = fn(&SessionView) -> String;
    let getters: [(&str, Getter); 5] = [
        ("current_user", |v| v.user.clone()),
        ("current_database", |v| v.database.clone()),
        ("current_session_id", |v| v.id.clone()),
        ("current_groups", |v| v.groups.clone()),
        ("current_roles", |v| v.roles.clone()),
    ];
    for (name, get) in getters {
        let view = view.clone();
        conn.create_scalar_function(name, 0, flags, move |_| Ok(get(&view.lock())))?;
    }
    let admin_view = view.clone();
    conn.create_scalar_function("portcullis_administers", 1, flags, move |ctx| {
        let id: Option<i64> = ctx.get(0)?;
        Ok(id.is_some_and(|id| admin_view.lock().administers.contains(&id)))
    })?;
    conn.create_scalar_function(
        "version",
        0,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |_| {
            Ok(format!(
                "Portcullis {} (PostgreSQL 16 protocol)",
                env!("CARGO_PKG_VERSION")
            ))
        },
    )?;
    Ok(())
}

/// The fully qualified names of a session's groups and roles (`name@database`).
fn group_and_role_names(session: &Session, state: &CatalogState) -> (Vec<String>, Vec<String>) {
    let principals = crate::privileges::session_principals(state, session);
    let mut groups = Vec::new();
    let mut roles = Vec::new();
    for p in &principals {
        match p {
            portcullis_store::PrincipalRef::Group(id) => {
                if let Some(g) = state.group_by_id(*id) {
                    groups.push(format!("{}@{}", g.name, state.database_name(g.database_id)));
                }
            }
            portcullis_store::PrincipalRef::Role(id) => {
                if let Some(r) = state.role_by_id(*id) {
                    roles.push(format!("{}@{}", r.name, state.database_name(r.database_id)));
                }
            }
            portcullis_store::PrincipalRef::User(_) => {}
        }
    }
    (groups, roles)
}

fn session_view(session: &Session, state: &CatalogState, owners: Arc<Owners>) -> SessionView {
    let (groups, roles) = group_and_role_names(session, state);
    let principals = crate::privileges::session_principals(state, session);
    let administers = state
        .snap
        .databases
        .iter()
        .filter(|d| crate::privileges::administers(state, &principals, d.id))
        .map(|d| d.id)
        .collect();
    SessionView {
        id: session.id.clone(),
        user: session.user.clone(),
        database: session.database.clone(),
        groups: groups.join(","),
        roles: roles.join(","),
        administers,
        visible: Visibility::of(state, session, &principals, owners),
    }
}

/// The event time with microseconds, UTC.
fn event_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
        .unwrap_or_default()
}

fn append_events(
    conn: &Connection,
    fresh: &[Arc<AuthEventRecord>],
    oldest: i64,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "DELETE FROM sys.authentication_events_all WHERE id < ?1",
        params![oldest],
    )?;
    {
        let mut st = tx.prepare(
            "INSERT OR REPLACE INTO sys.authentication_events_all VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
             ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for e in fresh {
            st.execute(params![
                e.id,
                event_time(e.at_micros),
                e.kind,
                e.method,
                e.identity,
                e.database,
                e.database_id,
                e.integration,
                e.peer,
                e.application,
                e.result,
                e.reason,
                e.detail,
                e.session_id,
                e.token_id
            ])?;
        }
    }
    tx.commit()
}
