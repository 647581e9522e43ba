//! The embedded SQLite backend: one file in the data directory, WAL journal, versioned migrations.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::records::*;
use crate::{AuthEventRecord, Store, StoreError, StoredEvents};

/// Migrations, applied in order; the index + 1 is the schema version. Never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE databases (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    verifier TEXT NOT NULL,
    password_set_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE roles (
    id INTEGER PRIMARY KEY,
    database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    UNIQUE (database_id, name)
);
CREATE TABLE grants (
    grantee_kind TEXT NOT NULL,
    grantee_id INTEGER NOT NULL,
    privilege TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    grantor TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (grantee_kind, grantee_id, privilege, object_kind, object_id)
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE role_members (
    role_id INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    member_kind TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    PRIMARY KEY (role_id, member_kind, member_id)
);
CREATE TABLE settings (
    scope_kind TEXT NOT NULL,
    scope_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, name)
);
CREATE TABLE password_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    verifier TEXT NOT NULL,
    set_at INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE sso_integrations (
    id INTEGER PRIMARY KEY,
    database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    protocol TEXT NOT NULL,
    properties TEXT NOT NULL,
    sealed_secret BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE connectivity_pools (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    listen TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE sso_assignments (
    target_kind TEXT NOT NULL,
    target_id INTEGER NOT NULL,
    integration_id INTEGER NOT NULL REFERENCES sso_integrations(id) ON DELETE CASCADE,
    PRIMARY KEY (target_kind, target_id)
);
"#,
    // Ids are never reused: the largest one ever given out is kept. Integration names are
    // unique per database (the table is rebuilt; foreign keys are off while migrating).
    r#"
CREATE TABLE id_high_water (high INTEGER NOT NULL);
INSERT INTO id_high_water SELECT coalesce(max(id), 0) FROM (
    SELECT id FROM databases UNION ALL SELECT id FROM users UNION ALL SELECT id FROM groups
    UNION ALL SELECT id FROM roles UNION ALL SELECT id FROM sso_integrations
    UNION ALL SELECT id FROM connectivity_pools);
CREATE TABLE sso_integrations_new (
    id INTEGER PRIMARY KEY,
    database_id INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL,
    properties TEXT NOT NULL,
    sealed_secret BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (database_id, name)
);
INSERT INTO sso_integrations_new SELECT id, database_id, name, protocol, properties,
    sealed_secret, created_at, updated_at FROM sso_integrations;
DROP TABLE sso_integrations;
ALTER TABLE sso_integrations_new RENAME TO sso_integrations;
"#,
    // Authentication events (sys.authentication_events): appended in batches, pruned by age.
    r#"
CREATE TABLE authentication_events (
    id INTEGER PRIMARY KEY,
    at_micros INTEGER NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    identity TEXT NOT NULL,
    database_id INTEGER NOT NULL,
    database_name TEXT NOT NULL,
    integration TEXT,
    peer TEXT NOT NULL,
    application TEXT,
    result TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL,
    session_id TEXT,
    token_id TEXT
);
"#,
    // Databases bound to a PostgreSQL database upstream (issue 12).
    r#"
CREATE TABLE upstreams (
    database_id INTEGER PRIMARY KEY REFERENCES databases(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    sealed_password BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
"#,
    // A connectivity pool's advertised address (issue 14).
    r#"
ALTER TABLE connectivity_pools ADD COLUMN advertised TEXT;
"#,
];

/// The SQLite catalog store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the catalog file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a change is acknowledged only once it is on disk, power loss included (in WAL
        // mode NORMAL survives a crash of the process but may lose the last commits to a
        // crash of the machine). Catalog changes are few; events are written in batches.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Migrations may rebuild tables, which must not cascade: foreign keys come on after.
        migrate(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// SQLite's own checks of the file: `PRAGMA integrity_check` (pages, indexes) and
    /// `PRAGMA foreign_key_check` (every reference has its row). Empty: the file is sound.
    pub async fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let mut problems = Vec::new();
            let mut st = conn.prepare("PRAGMA integrity_check")?;
            for line in st.query_map([], |r| r.get::<_, String>(0))? {
                let line = line?;
                if line != "ok" {
                    problems.push(line);
                }
            }
            let mut st = conn.prepare("PRAGMA foreign_key_check")?;
            let rows = st.query_map([], |r| {
                Ok(format!(
                    "{} row {:?} refers to a missing row of {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?
                ))
            })?;
            for row in rows {
                problems.push(row?);
            }
            Ok(problems)
        })
        .await
    }

    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock())).await?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::FutureSchema { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_conn(load).await
    }

    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let changes = changes.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            for change in &changes {
                apply_one(&tx, change)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn append_events(&self, events: &[Arc<AuthEventRecord>]) -> Result<(), StoreError> {
        let events = events.to_vec();
        self.with_conn(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO authentication_events (id, at_micros, kind, method, \
                     identity, database_id, database_name, integration, peer, application, \
                     result, reason, detail, session_id, token_id) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )?;
                for e in &events {
                    insert.execute(params![
                        e.id,
                        e.at_micros,
                        e.kind,
                        e.method,
                        e.identity,
                        e.database_id,
                        e.database,
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
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn load_events(
        &self,
        since_micros: i64,
        limit: usize,
    ) -> Result<StoredEvents, StoreError> {
        self.with_conn(move |conn| {
            let max_id: i64 = conn.query_row(
                "SELECT coalesce(max(id), 0) FROM authentication_events",
                [],
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(
                "SELECT id, at_micros, kind, method, identity, database_id, database_name, \
                 integration, peer, application, result, reason, detail, session_id, token_id \
                 FROM authentication_events WHERE at_micros >= ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut events = stmt
                .query_map(params![since_micros, limit], |r| {
                    Ok(AuthEventRecord {
                        id: r.get(0)?,
                        at_micros: r.get(1)?,
                        kind: r.get(2)?,
                        method: r.get(3)?,
                        identity: r.get(4)?,
                        database_id: r.get(5)?,
                        database: r.get(6)?,
                        integration: r.get(7)?,
                        peer: r.get(8)?,
                        application: r.get(9)?,
                        result: r.get(10)?,
                        reason: r.get(11)?,
                        detail: r.get(12)?,
                        session_id: r.get(13)?,
                        token_id: r.get(14)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            events.reverse();
            Ok(StoredEvents { events, max_id })
        })
        .await
    }

    async fn prune_events(&self, before_micros: i64) -> Result<usize, StoreError> {
        self.with_conn(move |conn| {
            Ok(conn.execute(
                "DELETE FROM authentication_events WHERE at_micros < ?1",
                params![before_micros],
            )?)
        })
        .await
    }
}

use crate::kinds::{object_parts, principal_parts, scope_parts, target_parts};

fn principal_from(kind: &str, id: i64) -> rusqlite::Result<PrincipalRef> {
    crate::kinds::principal_from(kind, id).ok_or_else(|| bad_kind(kind))
}

fn object_from(kind: &str, id: i64) -> rusqlite::Result<ObjectRef> {
    crate::kinds::object_from(kind, id).ok_or_else(|| bad_kind(kind))
}

fn scope_from(kind: &str, id: i64) -> rusqlite::Result<ScopeRef> {
    crate::kinds::scope_from(kind, id).ok_or_else(|| bad_kind(kind))
}

fn target_from(kind: &str, id: i64) -> rusqlite::Result<AssignmentTarget> {
    crate::kinds::target_from(kind, id).ok_or_else(|| bad_kind(kind))
}

fn bad_kind(kind: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, format!("kind {kind}"), rusqlite::types::Type::Text)
}

fn load(conn: &mut Connection) -> Result<Snapshot, StoreError> {
    let tx = conn.transaction()?;
    let mut snap = Snapshot::default();
    {
        snap.id_high_water = tx.query_row("SELECT high FROM id_high_water", [], |r| r.get(0))?;
        let mut st = tx.prepare("SELECT id, name, created_at FROM databases ORDER BY id")?;
        snap.databases = st
            .query_map([], |r| {
                Ok(DatabaseRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT id, database_id, name, first_name, last_name, email, verifier, \
             password_set_at, state, failed_attempts, created_at FROM users ORDER BY id",
        )?;
        snap.users = st
            .query_map([], |r| {
                Ok(UserRecord {
                    id: r.get(0)?,
                    database_id: r.get(1)?,
                    name: r.get(2)?,
                    first_name: r.get(3)?,
                    last_name: r.get(4)?,
                    email: r.get(5)?,
                    verifier: r.get(6)?,
                    password_set_at: r.get(7)?,
                    state: r.get(8)?,
                    failed_attempts: r.get(9)?,
                    created_at: r.get(10)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare("SELECT id, database_id, name, created_at FROM groups ORDER BY id")?;
        snap.groups = st
            .query_map([], |r| {
                Ok(GroupRecord {
                    id: r.get(0)?,
                    database_id: r.get(1)?,
                    name: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare("SELECT id, database_id, name, description FROM roles ORDER BY id")?;
        snap.roles = st
            .query_map([], |r| {
                Ok(RoleRecord {
                    id: r.get(0)?,
                    database_id: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT grantee_kind, grantee_id, privilege, object_kind, object_id, grantor, \
             granted_at FROM grants ORDER BY granted_at, rowid",
        )?;
        snap.grants = st
            .query_map([], |r| {
                Ok(GrantRecord {
                    grantee: principal_from(&r.get::<_, String>(0)?, r.get(1)?)?,
                    privilege: r.get(2)?,
                    object: object_from(&r.get::<_, String>(3)?, r.get(4)?)?,
                    grantor: r.get(5)?,
                    granted_at: r.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare("SELECT group_id, user_id FROM group_members ORDER BY rowid")?;
        snap.group_members = st
            .query_map([], |r| {
                Ok(GroupMemberRecord {
                    group_id: r.get(0)?,
                    user_id: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare("SELECT role_id, member_kind, member_id FROM role_members ORDER BY rowid")?;
        snap.role_members = st
            .query_map([], |r| {
                Ok(RoleMemberRecord {
                    role_id: r.get(0)?,
                    member: principal_from(&r.get::<_, String>(1)?, r.get(2)?)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare("SELECT scope_kind, scope_id, name, value FROM settings ORDER BY rowid")?;
        snap.settings = st
            .query_map([], |r| {
                Ok(SettingRecord {
                    scope: scope_from(&r.get::<_, String>(0)?, r.get(1)?)?,
                    name: r.get(2)?,
                    value: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st =
            tx.prepare("SELECT user_id, verifier, set_at FROM password_history ORDER BY seq")?;
        snap.password_history = st
            .query_map([], |r| {
                Ok(PasswordHistoryRecord {
                    user_id: r.get(0)?,
                    verifier: r.get(1)?,
                    set_at: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT id, database_id, name, protocol, properties, sealed_secret, created_at, \
             updated_at FROM sso_integrations ORDER BY id",
        )?;
        snap.sso_integrations = st
            .query_map([], |r| {
                Ok(SsoIntegrationRecord {
                    id: r.get(0)?,
                    database_id: r.get(1)?,
                    name: r.get(2)?,
                    protocol: r.get(3)?,
                    properties: r.get(4)?,
                    sealed_secret: r.get(5)?,
                    created_at: r.get(6)?,
                    updated_at: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT target_kind, target_id, integration_id FROM sso_assignments ORDER BY rowid",
        )?;
        snap.sso_assignments = st
            .query_map([], |r| {
                Ok(SsoAssignmentRecord {
                    target: target_from(&r.get::<_, String>(0)?, r.get(1)?)?,
                    integration_id: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT database_id, url, sealed_password, updated_at FROM upstreams \
             ORDER BY database_id",
        )?;
        snap.upstreams = st
            .query_map([], |r| {
                Ok(UpstreamRecord {
                    database_id: r.get(0)?,
                    url: r.get(1)?,
                    sealed_password: r.get(2)?,
                    updated_at: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = tx.prepare(
            "SELECT id, name, listen, created_at, advertised FROM connectivity_pools ORDER BY id",
        )?;
        snap.connectivity_pools = st
            .query_map([], |r| {
                Ok(ConnectivityPoolRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    listen: r.get(2)?,
                    created_at: r.get(3)?,
                    advertised: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    tx.commit()?;
    Ok(snap)
}

/// Deletes the grants and role memberships that name a principal or object that is going away.
fn forget_refs(tx: &Transaction, kind: &str, id: i64) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM grants WHERE (grantee_kind = ?1 AND grantee_id = ?2) \
         OR (object_kind = ?1 AND object_id = ?2)",
        params![kind, id],
    )?;
    tx.execute(
        "DELETE FROM role_members WHERE member_kind = ?1 AND member_id = ?2",
        params![kind, id],
    )?;
    if kind == "group" || kind == "database" {
        tx.execute(
            "DELETE FROM settings WHERE scope_kind = ?1 AND scope_id = ?2",
            params![kind, id],
        )?;
    }
    Ok(())
}

fn apply_one(tx: &Transaction, change: &Change) -> Result<(), StoreError> {
    if let Some(id) = change.put_id() {
        tx.execute("UPDATE id_high_water SET high = max(high, ?1)", [id])?;
    }
    match change {
        Change::PutDatabase(d) => {
            tx.execute(
                "INSERT INTO databases (id, name, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                params![d.id, d.name, d.created_at],
            )?;
        }
        Change::DeleteDatabase(id) => {
            for (table, kind) in [("users", "user"), ("groups", "group"), ("roles", "role")] {
                let ids: Vec<i64> = tx
                    .prepare(&format!("SELECT id FROM {table} WHERE database_id = ?1"))?
                    .query_map([id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for member in ids {
                    forget_refs(tx, kind, member)?;
                }
            }
            forget_refs(tx, "database", *id)?;
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = 'database' AND target_id = ?1",
                [id],
            )?;
            tx.execute("DELETE FROM upstreams WHERE database_id = ?1", [id])?;
            tx.execute("DELETE FROM databases WHERE id = ?1", [id])?;
        }
        Change::PutUser(u) => {
            tx.execute(
                "INSERT INTO users (id, database_id, name, first_name, last_name, email, verifier, \
                 password_set_at, state, failed_attempts, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 first_name = excluded.first_name, last_name = excluded.last_name, \
                 email = excluded.email, verifier = excluded.verifier, \
                 password_set_at = excluded.password_set_at, state = excluded.state, \
                 failed_attempts = excluded.failed_attempts",
                params![
                    u.id,
                    u.database_id,
                    u.name,
                    u.first_name,
                    u.last_name,
                    u.email,
                    u.verifier,
                    u.password_set_at,
                    u.state,
                    u.failed_attempts,
                    u.created_at
                ],
            )?;
        }
        Change::DeleteUser(id) => {
            forget_refs(tx, "user", *id)?;
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        }
        Change::PutGroup(g) => {
            tx.execute(
                "INSERT INTO groups (id, database_id, name, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                params![g.id, g.database_id, g.name, g.created_at],
            )?;
        }
        Change::DeleteGroup(id) => {
            forget_refs(tx, "group", *id)?;
            tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
        }
        Change::PutRole(r) => {
            tx.execute(
                "INSERT INTO roles (id, database_id, name, description) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 description = excluded.description",
                params![r.id, r.database_id, r.name, r.description],
            )?;
        }
        Change::AddGrant(g) => {
            let (gk, gi) = principal_parts(g.grantee);
            let (ok, oi) = object_parts(g.object);
            tx.execute(
                "INSERT OR IGNORE INTO grants (grantee_kind, grantee_id, privilege, object_kind, \
                 object_id, grantor, granted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![gk, gi, g.privilege, ok, oi, g.grantor, g.granted_at],
            )?;
        }
        Change::RemoveGrant {
            grantee,
            privilege,
            object,
        } => {
            let (gk, gi) = principal_parts(*grantee);
            let (ok, oi) = object_parts(*object);
            tx.execute(
                "DELETE FROM grants WHERE grantee_kind = ?1 AND grantee_id = ?2 \
                 AND privilege = ?3 AND object_kind = ?4 AND object_id = ?5",
                params![gk, gi, privilege, ok, oi],
            )?;
        }
        Change::AddGroupMember(m) => {
            tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                params![m.group_id, m.user_id],
            )?;
        }
        Change::RemoveGroupMember(m) => {
            tx.execute(
                "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
                params![m.group_id, m.user_id],
            )?;
        }
        Change::AddRoleMember(m) => {
            let (k, i) = principal_parts(m.member);
            tx.execute(
                "INSERT OR IGNORE INTO role_members (role_id, member_kind, member_id) \
                 VALUES (?1, ?2, ?3)",
                params![m.role_id, k, i],
            )?;
        }
        Change::RemoveRoleMember(m) => {
            let (k, i) = principal_parts(m.member);
            tx.execute(
                "DELETE FROM role_members WHERE role_id = ?1 AND member_kind = ?2 \
                 AND member_id = ?3",
                params![m.role_id, k, i],
            )?;
        }
        Change::PutSetting(s) => {
            let (k, i) = scope_parts(s.scope);
            tx.execute(
                "INSERT INTO settings (scope_kind, scope_id, name, value) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (scope_kind, scope_id, name) DO UPDATE SET value = excluded.value",
                params![k, i, s.name, s.value],
            )?;
        }
        Change::RemoveSetting { scope, name } => {
            let (k, i) = scope_parts(*scope);
            tx.execute(
                "DELETE FROM settings WHERE scope_kind = ?1 AND scope_id = ?2 AND name = ?3",
                params![k, i, name],
            )?;
        }
        Change::AddPasswordHistory(h) => {
            tx.execute(
                "INSERT INTO password_history (user_id, verifier, set_at) VALUES (?1, ?2, ?3)",
                params![h.user_id, h.verifier, h.set_at],
            )?;
        }
        Change::PutSsoIntegration(i) => {
            tx.execute(
                "INSERT INTO sso_integrations (id, database_id, name, protocol, properties, \
                 sealed_secret, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 properties = excluded.properties, sealed_secret = excluded.sealed_secret, \
                 updated_at = excluded.updated_at",
                params![
                    i.id,
                    i.database_id,
                    i.name,
                    i.protocol,
                    i.properties,
                    i.sealed_secret,
                    i.created_at,
                    i.updated_at
                ],
            )?;
        }
        Change::DeleteSsoIntegration(id) => {
            tx.execute(
                "DELETE FROM sso_assignments WHERE integration_id = ?1",
                [id],
            )?;
            tx.execute("DELETE FROM sso_integrations WHERE id = ?1", [id])?;
        }
        Change::AssignSso(a) => {
            let (k, i) = target_parts(a.target);
            tx.execute(
                "INSERT INTO sso_assignments (target_kind, target_id, integration_id) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (target_kind, target_id) \
                 DO UPDATE SET integration_id = excluded.integration_id",
                params![k, i, a.integration_id],
            )?;
        }
        Change::UnassignSso(target) => {
            let (k, i) = target_parts(*target);
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = ?1 AND target_id = ?2",
                params![k, i],
            )?;
        }
        Change::PutConnectivityPool(p) => {
            tx.execute(
                "INSERT INTO connectivity_pools (id, name, listen, created_at, advertised) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 listen = excluded.listen, advertised = excluded.advertised",
                params![p.id, p.name, p.listen, p.created_at, p.advertised],
            )?;
        }
        Change::PutUpstream(u) => {
            tx.execute(
                "INSERT INTO upstreams (database_id, url, sealed_password, updated_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (database_id) DO UPDATE SET \
                 url = excluded.url, sealed_password = excluded.sealed_password, \
                 updated_at = excluded.updated_at",
                params![u.database_id, u.url, u.sealed_password, u.updated_at],
            )?;
        }
        Change::RemoveUpstream(database_id) => {
            tx.execute(
                "DELETE FROM upstreams WHERE database_id = ?1",
                [database_id],
            )?;
        }
        Change::DeleteConnectivityPool(id) => {
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = 'pool' AND target_id = ?1",
                [id],
            )?;
            tx.execute("DELETE FROM connectivity_pools WHERE id = ?1", [id])?;
        }
        Change::TrimPasswordHistory { user_id, keep } => {
            let cutoff: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM password_history WHERE user_id = ?1 \
                     ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                    params![user_id, *keep as i64],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(cutoff) = cutoff {
                tx.execute(
                    "DELETE FROM password_history WHERE user_id = ?1 AND seq <= ?2",
                    params![user_id, cutoff],
                )?;
            }
        }
    }
    Ok(())
}
