//! The query copy's tables following the model row by row: each table remembers the rows it
//! holds (with their rowids), and bringing it up to date deletes the rows that are gone and
//! inserts the new ones, so a change to one user rewrites one row, not the catalog. What the
//! rows hold is [`super::project`]'s; this module only decides which to rewrite.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use portcullis_store::{
    GrantRecord, GroupMemberRecord, GroupRecord, ObjectRef, PrincipalRef, RoleMemberRecord,
    RoleRecord, UserRecord,
};
use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::{params_from_iter, Connection};

use super::project::{self, Names};
use crate::model::CatalogState;

/// One value of a copied row (the copy holds no reals or blobs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

pub type Row = Vec<Cell>;

impl ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Self::Null => ToSqlOutput::from(rusqlite::types::Null),
            Self::Int(n) => ToSqlOutput::from(*n),
            Self::Text(s) => ToSqlOutput::from(s.as_str()),
        })
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Self::Int(i64::from(b))
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// How much a sync wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub deleted: usize,
    pub inserted: usize,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Self) {
        self.deleted += other.deleted;
        self.inserted += other.inserted;
    }
}

/// One table of the copy (`sys.<name>_all`) and the rows it holds.
pub struct TableCopy {
    table: &'static str,
    /// Each distinct row with the rowids holding it (a table may hold a row twice).
    rows: HashMap<Row, Vec<i64>>,
    /// The table may hold rows `rows` does not know of (a sync failed half way): empty it
    /// before the next sync.
    unknown: bool,
}

impl TableCopy {
    /// A table whose content is not known yet: the first sync empties it.
    pub fn new(table: &'static str) -> Self {
        Self {
            table,
            rows: HashMap::new(),
            unknown: true,
        }
    }

    /// Makes the table hold exactly `wanted` (as a multiset), writing only the difference.
    /// Runs inside the caller's transaction; if it fails, the next sync starts from empty.
    pub fn sync(&mut self, conn: &Connection, wanted: Vec<Row>) -> rusqlite::Result<Written> {
        let synced = self.try_sync(conn, wanted);
        if synced.is_err() {
            self.forget();
        }
        synced
    }

    /// Stops trusting what the table is known to hold: the next sync empties it first.
    fn forget(&mut self) {
        self.rows.clear();
        self.unknown = true;
    }

    fn try_sync(&mut self, conn: &Connection, wanted: Vec<Row>) -> rusqlite::Result<Written> {
        let table = self.table;
        let mut written = Written::default();
        if self.unknown {
            conn.execute(&format!("DELETE FROM sys.{table}_all"), [])?;
            self.rows.clear();
            self.unknown = false;
        }
        let mut counts: HashMap<Row, usize> = HashMap::with_capacity(wanted.len());
        for row in wanted {
            *counts.entry(row).or_default() += 1;
        }
        let mut surplus = Vec::new();
        self.rows.retain(|row, ids| {
            let keep = counts.get(row).copied().unwrap_or(0);
            while ids.len() > keep {
                surplus.extend(ids.pop());
            }
            !ids.is_empty()
        });
        if !surplus.is_empty() {
            let mut delete =
                conn.prepare_cached(&format!("DELETE FROM sys.{table}_all WHERE rowid = ?1"))?;
            for id in surplus {
                delete.execute([id])?;
                written.deleted += 1;
            }
        }
        let mut insert = None;
        for (row, want) in counts {
            let have = self.rows.get(&row).map_or(0, Vec::len);
            if have >= want {
                continue;
            }
            if insert.is_none() {
                let marks = vec!["?"; row.len()].join(", ");
                insert = Some(
                    conn.prepare_cached(&format!("INSERT INTO sys.{table}_all VALUES ({marks})"))?,
                );
            }
            let Some(st) = insert.as_mut() else {
                continue;
            };
            let mut ids = Vec::with_capacity(want - have);
            for _ in have..want {
                st.execute(params_from_iter(row.iter()))?;
                ids.push(conn.last_insert_rowid());
                written.inserted += 1;
            }
            self.rows.entry(row).or_default().extend(ids);
        }
        Ok(written)
    }
}

/// One table of the copy whose rows are each about one catalog record (a user, a grant …),
/// followed by key: only the rows whose record or whose names changed are rewritten.
pub struct KeyedCopy<K> {
    table: &'static str,
    rowids: HashMap<K, i64>,
    unknown: bool,
}

impl<K: std::hash::Hash + Eq> KeyedCopy<K> {
    pub fn new(table: &'static str) -> Self {
        Self {
            table,
            rowids: HashMap::new(),
            unknown: true,
        }
    }

    /// Makes the table hold one row per item: `(key, changed, record)`. The row of a record
    /// that is `changed`, or new to the table, is projected and written; the rows of keys no
    /// item names are deleted.
    pub fn sync<'r, R: 'r>(
        &mut self,
        conn: &Connection,
        items: impl IntoIterator<Item = (K, bool, &'r R)>,
        project: impl Fn(&R) -> Row,
    ) -> rusqlite::Result<Written> {
        let synced = self.try_sync(conn, items, project);
        if synced.is_err() {
            self.forget();
        }
        synced
    }

    fn forget(&mut self) {
        self.rowids.clear();
        self.unknown = true;
    }

    fn try_sync<'r, R: 'r>(
        &mut self,
        conn: &Connection,
        items: impl IntoIterator<Item = (K, bool, &'r R)>,
        project: impl Fn(&R) -> Row,
    ) -> rusqlite::Result<Written> {
        let table = self.table;
        let mut written = Written::default();
        if self.unknown {
            conn.execute(&format!("DELETE FROM sys.{table}_all"), [])?;
            self.rowids.clear();
            self.unknown = false;
        }
        let mut delete =
            conn.prepare_cached(&format!("DELETE FROM sys.{table}_all WHERE rowid = ?1"))?;
        let mut insert = None;
        let mut next = HashMap::with_capacity(self.rowids.len());
        for (key, changed, record) in items {
            let held = self.rowids.remove(&key);
            if let (Some(id), false) = (held, changed) {
                next.insert(key, id);
                continue;
            }
            if let Some(id) = held {
                delete.execute([id])?;
                written.deleted += 1;
            }
            let row = project(record);
            if insert.is_none() {
                let marks = vec!["?"; row.len()].join(", ");
                insert = Some(
                    conn.prepare_cached(&format!("INSERT INTO sys.{table}_all VALUES ({marks})"))?,
                );
            }
            if let Some(st) = insert.as_mut() {
                st.execute(params_from_iter(row.iter()))?;
                next.insert(key, conn.last_insert_rowid());
                written.inserted += 1;
            }
        }
        for (_, id) in self.rowids.drain() {
            delete.execute([id])?;
            written.deleted += 1;
        }
        self.rowids = next;
        Ok(written)
    }
}

type GrantKey = (PrincipalRef, String, ObjectRef);

/// The copy's catalog tables and `sys.sessions`. The small tables (databases, roles, settings,
/// integrations, pools) are projected whole and diffed; the ones that grow with the number of
/// people (users, groups, memberships, grants) are followed by key against the catalog they
/// were last brought to.
pub struct Tables {
    /// The catalog the tables were last brought to (`None`: not known).
    synced: Option<Arc<CatalogState>>,
    databases: TableCopy,
    users: KeyedCopy<i64>,
    groups: KeyedCopy<i64>,
    group_members: KeyedCopy<GroupMemberRecord>,
    roles: TableCopy,
    role_members: KeyedCopy<RoleMemberRecord>,
    privileges: KeyedCopy<GrantKey>,
    password_settings: TableCopy,
    oidc_integrations: TableCopy,
    connectivity_pools: TableCopy,
    sessions: TableCopy,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            synced: None,
            databases: TableCopy::new("databases"),
            users: KeyedCopy::new("users"),
            groups: KeyedCopy::new("groups"),
            group_members: KeyedCopy::new("group_members"),
            roles: TableCopy::new("roles"),
            role_members: KeyedCopy::new("role_members"),
            privileges: KeyedCopy::new("privileges"),
            password_settings: TableCopy::new("password_settings"),
            oidc_integrations: TableCopy::new("oidc_integrations"),
            connectivity_pools: TableCopy::new("connectivity_pools"),
            sessions: TableCopy::new("sessions"),
        }
    }
}

impl Tables {
    /// Brings the catalog tables to `state`, in one transaction.
    pub fn sync_catalog(
        &mut self,
        conn: &Connection,
        state: &Arc<CatalogState>,
    ) -> rusqlite::Result<Written> {
        // Until this sync commits, what the tables hold is known only row by row.
        let old = self.synced.take();
        let synced = (|| {
            let tx = conn.unchecked_transaction()?;
            let written = self.write_catalog(&tx, old.as_deref(), state)?;
            tx.commit()?;
            Ok(written)
        })();
        match synced {
            Ok(_) => self.synced = Some(state.clone()),
            // The transaction rolled back the tables that had synced too.
            Err(_) => self.forget_catalog(),
        }
        synced
    }

    fn write_catalog(
        &mut self,
        tx: &Connection,
        old: Option<&CatalogState>,
        state: &CatalogState,
    ) -> rusqlite::Result<Written> {
        let s = &state.snap;
        let names = Names::of(state);
        let since = Since::of(old, state);
        let mut w = Written::default();
        w += self.databases.sync(tx, project::databases(state))?;
        w += self
            .users
            .sync(tx, s.users.iter().map(|u| (u.id, since.user(u), u)), |u| {
                project::user(u, &names)
            })?;
        w += self.groups.sync(
            tx,
            s.groups.iter().map(|g| (g.id, since.group(g), g)),
            |g| project::group(g, &names),
        )?;
        w += self.group_members.sync(
            tx,
            s.group_members
                .iter()
                .map(|m| (*m, since.group_member(m), m)),
            |m| project::group_member(m, &names),
        )?;
        w += self.roles.sync(tx, project::roles(state, &names))?;
        w += self.role_members.sync(
            tx,
            s.role_members.iter().map(|m| (*m, since.role_member(m), m)),
            |m| project::role_member(m, &names),
        )?;
        w += self.privileges.sync(
            tx,
            s.grants.iter().map(|g| {
                let key = (g.grantee, g.privilege.clone(), g.object);
                (key, since.grant(g), g)
            }),
            |g| project::privilege(g, &names),
        )?;
        w += self
            .password_settings
            .sync(tx, project::password_settings(state, &names))?;
        w += self
            .oidc_integrations
            .sync(tx, project::integrations(state))?;
        w += self.connectivity_pools.sync(tx, project::pools(state))?;
        Ok(w)
    }

    fn forget_catalog(&mut self) {
        self.synced = None;
        self.databases.forget();
        self.users.forget();
        self.groups.forget();
        self.group_members.forget();
        self.roles.forget();
        self.role_members.forget();
        self.privileges.forget();
        self.password_settings.forget();
        self.oidc_integrations.forget();
        self.connectivity_pools.forget();
    }

    /// Brings `sys.sessions` to `rows`.
    pub fn sync_sessions(
        &mut self,
        conn: &Connection,
        rows: Vec<Row>,
    ) -> rusqlite::Result<Written> {
        let synced = (|| {
            let tx = conn.unchecked_transaction()?;
            let written = self.sessions.sync(&tx, rows)?;
            tx.commit()?;
            Ok(written)
        })();
        if synced.is_err() {
            self.sessions.forget();
        }
        synced
    }
}

/// What changed between the catalog the tables hold and the new one: the old records by key,
/// and whose shown name (`name@database`) changed. With no old catalog, everything did.
struct Since<'a> {
    old: Option<Old<'a>>,
}

struct Old<'a> {
    users: HashMap<i64, &'a UserRecord>,
    groups: HashMap<i64, &'a GroupRecord>,
    grants: HashMap<(PrincipalRef, &'a str, ObjectRef), &'a GrantRecord>,
    renamed_databases: HashSet<i64>,
    renamed_users: HashSet<i64>,
    renamed_groups: HashSet<i64>,
    renamed_roles: HashSet<i64>,
}

impl<'a> Since<'a> {
    fn of(old: Option<&'a CatalogState>, new: &CatalogState) -> Self {
        let Some(old) = old else {
            return Self { old: None };
        };
        let (o, n) = (&old.snap, &new.snap);
        let new_databases: HashMap<i64, &str> = n
            .databases
            .iter()
            .map(|d| (d.id, d.name.as_str()))
            .collect();
        let renamed_databases: HashSet<i64> = o
            .databases
            .iter()
            .filter(|d| new_databases.get(&d.id) != Some(&d.name.as_str()))
            .map(|d| d.id)
            .collect();
        let users: HashMap<i64, &UserRecord> = o.users.iter().map(|u| (u.id, u)).collect();
        let groups: HashMap<i64, &GroupRecord> = o.groups.iter().map(|g| (g.id, g)).collect();
        let roles: HashMap<i64, &RoleRecord> = o.roles.iter().map(|r| (r.id, r)).collect();
        // A shown name changes with the name, the database, or the database's name.
        let moved = |old: Option<(&str, i64)>, name: &str, database: i64| {
            old.is_some_and(|(n, d)| n != name || d != database)
                || renamed_databases.contains(&database)
        };
        let renamed_users = n
            .users
            .iter()
            .filter(|u| {
                let was = users.get(&u.id).map(|x| (x.name.as_str(), x.database_id));
                moved(was, &u.name, u.database_id)
            })
            .map(|u| u.id)
            .collect();
        let renamed_groups = n
            .groups
            .iter()
            .filter(|g| {
                let was = groups.get(&g.id).map(|x| (x.name.as_str(), x.database_id));
                moved(was, &g.name, g.database_id)
            })
            .map(|g| g.id)
            .collect();
        let renamed_roles = n
            .roles
            .iter()
            .filter(|r| {
                let was = roles.get(&r.id).map(|x| (x.name.as_str(), x.database_id));
                moved(was, &r.name, r.database_id)
            })
            .map(|r| r.id)
            .collect();
        let grants = o
            .grants
            .iter()
            .map(|g| ((g.grantee, g.privilege.as_str(), g.object), g))
            .collect();
        Self {
            old: Some(Old {
                users,
                groups,
                grants,
                renamed_databases,
                renamed_users,
                renamed_groups,
                renamed_roles,
            }),
        }
    }

    fn user(&self, u: &UserRecord) -> bool {
        self.old.as_ref().is_none_or(|o| {
            o.users.get(&u.id) != Some(&u) || o.renamed_databases.contains(&u.database_id)
        })
    }

    fn group(&self, g: &GroupRecord) -> bool {
        self.old.as_ref().is_none_or(|o| {
            o.groups.get(&g.id) != Some(&g) || o.renamed_databases.contains(&g.database_id)
        })
    }

    fn group_member(&self, m: &GroupMemberRecord) -> bool {
        self.old.as_ref().is_none_or(|o| {
            o.renamed_groups.contains(&m.group_id) || o.renamed_users.contains(&m.user_id)
        })
    }

    fn role_member(&self, m: &RoleMemberRecord) -> bool {
        self.old
            .as_ref()
            .is_none_or(|o| o.renamed_roles.contains(&m.role_id) || o.principal_renamed(&m.member))
    }

    fn grant(&self, g: &GrantRecord) -> bool {
        self.old.as_ref().is_none_or(|o| {
            let object_renamed = match g.object {
                ObjectRef::System => false,
                ObjectRef::Database(id) => o.renamed_databases.contains(&id),
                ObjectRef::User(id) => o.renamed_users.contains(&id),
                ObjectRef::Group(id) => o.renamed_groups.contains(&id),
            };
            o.grants.get(&(g.grantee, g.privilege.as_str(), g.object)) != Some(&g)
                || object_renamed
                || o.principal_renamed(&g.grantee)
        })
    }
}

impl Old<'_> {
    fn principal_renamed(&self, p: &PrincipalRef) -> bool {
        match *p {
            PrincipalRef::User(id) => self.renamed_users.contains(&id),
            PrincipalRef::Group(id) => self.renamed_groups.contains(&id),
            PrincipalRef::Role(id) => self.renamed_roles.contains(&id),
        }
    }
}

#[cfg(test)]
mod tests;
