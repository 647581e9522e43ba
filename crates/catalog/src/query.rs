//! Catalog queries: `SELECT`s over the `sys` tables, run by SQLite on in-memory copies of the
//! catalog. A copy holds no password verifier; each `sys` table is a view showing only the rows
//! the caller may VIEW ([`visibility`]), and an authorizer lets a query read only those views —
//! no writes, no PRAGMA, no ATTACH. Queries run off the async workers on a small pool of engines
//! ([`QueryPool`]), within the time and size limits of [`limits`].

mod limits;
mod pg_catalog;
mod pool;
#[cfg(test)]
mod tests;
mod visibility;

use std::collections::HashMap;
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
    /// What the copy holds: each part is loaded when a query first reads it stale.
    copy: Copy,
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
#[derive(Debug, Default, Clone, Copy)]
struct Reads {
    catalog: bool,
    sessions: bool,
    events: bool,
}

impl Reads {
    fn any(self) -> bool {
        self.catalog || self.sessions || self.events
    }

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
            reads,
            loading,
            deadline,
            refusal,
            view,
            owners: Arc::default(),
            time_limit,
        })
    }

    /// Describes a query's result columns without running it (needs no copy of the catalog).
    pub fn describe(&self, sql: &str) -> Result<(Vec<Column>, usize), CatalogError> {
        let sql = rewrite_placeholders(&pg_catalog::translate(sql));
        let stmt = prepare_guarded(&self.conn, &self.refusal, &sql)?;
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
        *self.reads.lock() = Reads::default();
        let mut stmt = match prepare_guarded(&self.conn, &self.refusal, &sql) {
            Ok(stmt) => stmt,
            Err(e) => return Some(Err(e)),
        };
        let reads = *self.reads.lock();
        if small.is_some() && (reads.any() || self.copy.owners != job.catalog_generation) {
            return None;
        }
        let loader = Loader {
            conn: &self.conn,
            loading: &self.loading,
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
}

impl Loader<'_> {
    /// Brings the parts of the copy a statement `reads` up to the job's catalog, sessions and
    /// events. Returns the row owners when the catalog changed since they were worked out.
    fn refresh(
        &self,
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
            self.write(|conn| load_catalog(conn, state))?;
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
            let node = job.sessions.node();
            self.write(|conn| load_sessions(conn, &live.sessions, &remote, state, node))?;
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
        self.write(|conn| append_events(conn, &fresh, oldest))?;
        if let Some(last) = fresh.last() {
            copy.events_through = last.id;
        }
        Ok(())
    }

    fn write(
        &self,
        load: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<(), CatalogError> {
        use std::sync::atomic::Ordering;
        self.loading.store(true, Ordering::Release);
        let loaded = load(self.conn);
        self.loading.store(false, Ordering::Release);
        loaded.map_err(internal)
    }
}

/// Prepares a read of the `sys` views, or says clearly why not.
fn prepare_guarded<'c>(
    conn: &'c Connection,
    refusal: &Mutex<Option<CatalogError>>,
    sql: &str,
) -> Result<rusqlite::Statement<'c>, CatalogError> {
    limits::check_sql_length(sql)?;
    visibility::check_cte_names(sql)?;
    *refusal.lock() = None;
    let prepared = conn.prepare(sql);
    let refused = refusal.lock().take();
    // A refusal fails the prepare, with SQLITE_AUTH or a generic error that names it.
    let stmt = prepared.map_err(|e| refused.unwrap_or_else(|| query_error(e)))?;
    if !stmt.readonly() {
        return Err(not_a_read());
    }
    Ok(stmt)
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

/// Names by id, so that loading the copy takes time linear in the catalog's size.
struct Names<'a> {
    databases: HashMap<i64, &'a str>,
    users: HashMap<i64, &'a portcullis_store::UserRecord>,
    groups: HashMap<i64, &'a portcullis_store::GroupRecord>,
    roles: HashMap<i64, &'a portcullis_store::RoleRecord>,
}

impl<'a> Names<'a> {
    fn of(state: &'a CatalogState) -> Self {
        let s = &state.snap;
        Self {
            databases: s
                .databases
                .iter()
                .map(|d| (d.id, d.name.as_str()))
                .collect(),
            users: s.users.iter().map(|u| (u.id, u)).collect(),
            groups: s.groups.iter().map(|g| (g.id, g)).collect(),
            roles: s.roles.iter().map(|r| (r.id, r)).collect(),
        }
    }

    fn database(&self, id: i64) -> &'a str {
        self.databases.get(&id).copied().unwrap_or("?")
    }

    /// `name@database` of a user, group or role.
    fn user(&self, id: i64) -> Option<String> {
        let u = self.users.get(&id)?;
        Some(format!("{}@{}", u.name, self.database(u.database_id)))
    }

    fn group(&self, id: i64) -> Option<String> {
        let g = self.groups.get(&id)?;
        Some(format!("{}@{}", g.name, self.database(g.database_id)))
    }

    fn role(&self, id: i64) -> Option<String> {
        let r = self.roles.get(&id)?;
        Some(format!("{}@{}", r.name, self.database(r.database_id)))
    }
}

fn load_catalog(conn: &Connection, state: &CatalogState) -> rusqlite::Result<()> {
    use portcullis_store::{ObjectRef, PrincipalRef, ScopeRef};
    let s = &state.snap;
    let names = Names::of(state);
    let tx = conn.unchecked_transaction()?;
    for table in [
        "databases",
        "users",
        "groups",
        "group_members",
        "roles",
        "role_members",
        "privileges",
        "password_settings",
        "oidc_integrations",
        "connectivity_pools",
    ] {
        tx.execute(&format!("DELETE FROM sys.{table}_all"), [])?;
    }
    {
        let mut st = tx.prepare("INSERT INTO sys.databases_all VALUES (?1, ?2, ?3, ?4)")?;
        for d in &s.databases {
            // The URL without its password (the password is sealed, never in a copy).
            let upstream = s
                .upstreams
                .iter()
                .find(|u| u.database_id == d.id)
                .map(|u| u.url.clone());
            st.execute(params![d.id, d.name, timestamp(d.created_at), upstream])?;
        }
        let mut st = tx.prepare(
            "INSERT INTO sys.users_all VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for u in &s.users {
            let db = names.database(u.database_id);
            st.execute(params![
                u.id,
                u.name,
                format!("{}@{db}", u.name),
                u.database_id,
                db,
                u.first_name,
                u.last_name,
                u.email,
                u.state,
                u.failed_attempts,
                timestamp(u.password_set_at),
                timestamp(u.created_at)
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO sys.groups_all VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
        for g in &s.groups {
            let db = names.database(g.database_id);
            st.execute(params![
                g.id,
                g.name,
                format!("{}@{db}", g.name),
                g.database_id,
                db,
                timestamp(g.created_at)
            ])?;
        }
        let mut st = tx.prepare("INSERT INTO sys.group_members_all VALUES (?1, ?2, ?3, ?4)")?;
        for m in &s.group_members {
            let group = names.groups.get(&m.group_id).map(|g| g.name.as_str());
            st.execute(params![m.group_id, group, m.user_id, names.user(m.user_id)])?;
        }
        let mut st = tx.prepare("INSERT INTO sys.roles_all VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for r in &s.roles {
            st.execute(params![
                r.id,
                r.name,
                r.database_id,
                names.database(r.database_id),
                r.description
            ])?;
        }
        let principal = |p: &PrincipalRef| -> (&'static str, i64, Option<String>) {
            match *p {
                PrincipalRef::User(id) => ("USER", id, names.user(id)),
                PrincipalRef::Group(id) => ("GROUP", id, names.group(id)),
                PrincipalRef::Role(id) => ("ROLE", id, names.role(id)),
            }
        };
        let mut st = tx.prepare("INSERT INTO sys.role_members_all VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for m in &s.role_members {
            let role = names.roles.get(&m.role_id).map(|r| r.name.as_str());
            let (kind, id, name) = principal(&m.member);
            st.execute(params![m.role_id, role, kind, id, name])?;
        }
        let mut st = tx.prepare(
            "INSERT INTO sys.privileges_all VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for g in &s.grants {
            let (object_type, object_id, object_name) = match g.object {
                ObjectRef::System => ("SYSTEM", None, None),
                ObjectRef::Database(id) => {
                    ("DATABASE", Some(id), Some(names.database(id).to_owned()))
                }
                ObjectRef::User(id) => ("USER", Some(id), names.user(id)),
                ObjectRef::Group(id) => ("GROUP", Some(id), names.group(id)),
            };
            let (kind, id, name) = principal(&g.grantee);
            st.execute(params![
                g.privilege,
                object_type,
                object_id,
                object_name,
                kind,
                id,
                name,
                g.grantor,
                timestamp(g.granted_at)
            ])?;
        }
        let mut st =
            tx.prepare("INSERT INTO sys.password_settings_all VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for r in &s.settings {
            let (scope, id, name) = match r.scope {
                ScopeRef::System => ("SYSTEM", None, None),
                ScopeRef::Database(id) => {
                    ("DATABASE", Some(id), Some(names.database(id).to_owned()))
                }
                ScopeRef::Group(id) => ("GROUP", Some(id), names.group(id)),
            };
            st.execute(params![scope, id, name, r.name, r.value])?;
        }
    }
    load_integrations(&tx, state)?;
    tx.commit()
}

/// `sys.oidc_integrations` (through its filtering view) and `sys.connectivity_pools`. Lists and
/// maps are shown as JSON; the client secret only as whether one is set.
fn load_integrations(tx: &rusqlite::Transaction<'_>, state: &CatalogState) -> rusqlite::Result<()> {
    use portcullis_store::AssignmentTarget;
    let json = |v: &dyn erased_json::Json| v.json();
    let mut st = tx.prepare(
        "INSERT INTO sys.oidc_integrations_all VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, \
         ?28, ?29, ?30)",
    )?;
    for i in &state.snap.sso_integrations {
        let Ok(p) = crate::sso::SsoProperties::from_json(&i.properties) else {
            continue;
        };
        let assigned: Vec<String> = state
            .snap
            .sso_assignments
            .iter()
            .filter(|a| a.integration_id == i.id)
            .map(|a| match a.target {
                AssignmentTarget::Database(d) => format!("database {}", state.database_name(d)),
                AssignmentTarget::ConnectivityPool(id) => format!(
                    "connectivity_pool {}",
                    state
                        .snap
                        .connectivity_pools
                        .iter()
                        .find(|x| x.id == id)
                        .map_or("?", |x| x.name.as_str())
                ),
            })
            .collect();
        st.execute(params![
            i.id,
            i.name,
            i.database_id,
            state.database_name(i.database_id),
            i.protocol,
            p.issuer,
            p.client_id,
            i.sealed_secret.is_some(),
            p.default_group,
            p.redirect_host,
            p.redirect_ssl,
            p.disabled,
            p.enable_id_token_authentication,
            json(&p.user_id_claims),
            json(&p.additional_scopes),
            json(&p.additional_audiences),
            json(&p.groups_claim_ids),
            json(&p.groups_claim_mappings),
            json(&p.roles_claim_ids),
            json(&p.roles_claim_mappings),
            json(&p.allowed_groups),
            json(&p.allowed_roles),
            json(&p.blocked_groups),
            json(&p.blocked_roles),
            p.allow_offline_access,
            if p.protocol_version.is_empty() {
                "v1"
            } else {
                p.protocol_version.as_str()
            },
            assigned.join(", "),
            timestamp(i.created_at),
            timestamp(i.updated_at),
            p.ldap
                .as_ref()
                .map(|d| json(d as &dyn erased_json::Json))
                .or_else(|| p.saml.as_ref().map(saml_summary))
        ])?;
    }
    let mut st =
        tx.prepare("INSERT INTO sys.connectivity_pools_all VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
    for p in &state.snap.connectivity_pools {
        let integration = state
            .assigned_integration(AssignmentTarget::ConnectivityPool(p.id))
            .map(|i| i.name.clone());
        st.execute(params![
            p.id,
            p.name,
            p.listen,
            integration,
            timestamp(p.created_at),
            p.advertised
        ])?;
    }
    Ok(())
}

/// Lists and maps as JSON text for the catalog tables.
/// What `sys.oidc_integrations.directory` shows of a SAML integration: where its metadata
/// comes from (an inline document by its size), not the document.
fn saml_summary(idp: &crate::sso::SamlIdp) -> String {
    serde_json::json!({
        "idp_metadata_url": idp.idp_metadata_url,
        "idp_metadata": idp.idp_metadata.as_ref().map(|d| format!("inline, {} bytes", d.len())),
        "sp_entity_id": idp.sp_entity_id,
        "allow_idp_initiated": idp.allow_idp_initiated,
        "clock_skew_seconds": idp.clock_skew_seconds,
        "session_seconds": idp.session_seconds,
    })
    .to_string()
}

mod erased_json {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
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

/// A session as `sys.sessions` shows it (and as its node publishes it to the others).
pub fn session_row(
    s: &Session,
    state: &CatalogState,
    node: Option<i64>,
) -> crate::sessions::SessionRow {
    let (groups, roles) = group_and_role_names(s, state);
    let sso = s.sso.as_ref();
    crate::sessions::SessionRow {
        id: s.id.clone(),
        user_id: s.user_id,
        user: s.user.clone(),
        database: s.database.clone(),
        database_id: s.database_id,
        method: s.method.name().to_owned(),
        protocol: s.protocol.name().to_owned(),
        peer: s.peer.clone(),
        start_time: timestamp(s.started_at),
        expires_at: s.expires_at.map(timestamp),
        sso_integration: sso.map(|x| x.integration.clone()),
        groups: groups.join(","),
        roles: roles.join(","),
        token_expires_at: sso.map(|x| timestamp(x.token_expires_at)),
        node,
    }
}

fn load_sessions(
    conn: &Connection,
    sessions: &[Arc<Session>],
    remote: &[crate::sessions::SessionRow],
    state: &CatalogState,
    node: Option<i64>,
) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM sys.sessions_all", [])?;
    {
        let mut st = tx.prepare(
            "INSERT INTO sys.sessions_all VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
             ?13, ?14, ?15)",
        )?;
        let local: Vec<_> = sessions
            .iter()
            .map(|s| session_row(s, state, node))
            .collect();
        for r in local.iter().chain(remote) {
            st.execute(params![
                r.id,
                r.user_id,
                r.user,
                r.database,
                r.database_id,
                r.method,
                r.protocol,
                r.peer,
                r.start_time,
                r.expires_at,
                r.sso_integration,
                r.groups,
                r.roles,
                r.token_expires_at,
                r.node
            ])?;
        }
    }
    tx.commit()
}
