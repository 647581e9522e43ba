//! Row visibility of the `sys` tables (reference §5.4): a caller sees only rows of objects it
//! may VIEW. Each `sys.x` is a view over a hidden `sys.x_all` table that keeps the rows the
//! `portcullis_may_view_*` functions allow for the session of the running query.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use portcullis_store::{ObjectRef, PrincipalRef};
use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;

use crate::error::CatalogError;
use crate::model::CatalogState;
use crate::privileges::{Action, Privilege};
use crate::sessions::Session;

use super::SessionView;

/// Each public `sys` table and the condition its rows must meet; its rows live in `sys.<name>_all`.
///
/// The views end in `LIMIT -1 OFFSET 0` so that SQLite neither flattens them into the caller's
/// query nor pushes the caller's conditions into them: a caller's expression only ever sees
/// rows that passed the filter (an error it raises cannot tell about a hidden row).
const VIEWS: &[(&str, &str)] = &[
    (
        "databases",
        "portcullis_may_view_database(id) OR portcullis_is_home_database(id)",
    ),
    ("users", "portcullis_may_view_user(id)"),
    ("groups", "portcullis_may_view_group(id)"),
    (
        "group_members",
        "portcullis_may_view_group(group_id) AND portcullis_may_view_user(user_id)",
    ),
    ("roles", "portcullis_may_view_role(id)"),
    (
        "role_members",
        "portcullis_may_view_role(role_id) AND CASE member_type \
         WHEN 'USER' THEN portcullis_may_view_user(member_id) \
         WHEN 'GROUP' THEN portcullis_may_view_group(member_id) \
         ELSE portcullis_may_view_role(member_id) END",
    ),
    (
        "privileges",
        "CASE object_type WHEN 'SYSTEM' THEN portcullis_may_view_system() \
         WHEN 'DATABASE' THEN portcullis_may_view_database(object_id) \
         WHEN 'USER' THEN portcullis_may_view_user(object_id) \
         WHEN 'GROUP' THEN portcullis_may_view_group(object_id) ELSE 0 END",
    ),
    (
        "password_settings",
        "CASE scope WHEN 'SYSTEM' THEN portcullis_may_view_system() \
         WHEN 'DATABASE' THEN portcullis_may_view_database(scope_id) \
         WHEN 'GROUP' THEN portcullis_may_view_group(scope_id) ELSE 0 END",
    ),
    (
        "sessions",
        // Sessions are rows of the database they are in: VIEW there (not on the user, whose
        // sessions in other databases are those databases' business), or one's own.
        "id = current_session_id() OR portcullis_may_view_database(database_id) \
         OR (user_id <> 0 AND user = current_user())",
    ),
    (
        "authentication_events",
        // Rows of the database named (VIEW there; an unknown database's: VIEW on the system),
        // or one's own sign-ins and ends.
        "CASE WHEN database_id = 0 THEN portcullis_may_view_system() \
         ELSE portcullis_may_view_database(database_id) END \
         OR (identity <> '' AND identity = current_user())",
    ),
    ("oidc_integrations", "portcullis_administers(database_id)"),
    ("connectivity_pools", "portcullis_may_view_system()"),
];

/// Creates the filtering views over the `_all` tables.
pub fn create_views(conn: &Connection) -> rusqlite::Result<()> {
    for (name, filter) in VIEWS {
        conn.execute_batch(&format!(
            "CREATE VIEW sys.{name} AS SELECT * FROM sys.{name}_all WHERE {filter} \
             LIMIT -1 OFFSET 0;"
        ))?;
    }
    Ok(())
}

/// Whether `accessor` (the view SQLite names as reading a table) may read the hidden table
/// `table`: only the view over it may. [`check_cte_names`] keeps a query's own CTE from
/// borrowing a view's name.
pub fn may_read(table: &str, accessor: Option<&str>) -> Option<bool> {
    let base = table.strip_suffix("_all")?;
    let (name, _) = VIEWS.iter().find(|(v, _)| v.eq_ignore_ascii_case(base))?;
    Some(accessor.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Which database each user, group and role is in: built with each copy of the catalog, so a
/// row's check is a lookup.
#[derive(Debug, Default)]
pub struct Owners {
    users: HashMap<i64, i64>,
    groups: HashMap<i64, i64>,
    roles: HashMap<i64, i64>,
}

impl Owners {
    pub fn of(state: &CatalogState) -> Self {
        let s = &state.snap;
        Self {
            users: s.users.iter().map(|u| (u.id, u.database_id)).collect(),
            groups: s.groups.iter().map(|g| (g.id, g.database_id)).collect(),
            roles: s.roles.iter().map(|r| (r.id, r.database_id)).collect(),
        }
    }
}

/// What one session may see, worked out once per query from the grants its principals hold.
/// A grant covering VIEW on the system shows everything; on a database, the database and its
/// users, groups and roles; on a user or a group, that object. Besides, a caller always sees its
/// own user, the groups and roles it acts through, and its session's and its user's database.
#[derive(Debug, Default, Clone)]
pub struct Visibility {
    system: bool,
    databases: HashSet<i64>,
    users: HashSet<i64>,
    groups: HashSet<i64>,
    roles: HashSet<i64>,
    home_databases: Vec<i64>,
    owners: Arc<Owners>,
}

impl Visibility {
    pub fn of(
        state: &CatalogState,
        session: &Session,
        principals: &[PrincipalRef],
        owners: Arc<Owners>,
    ) -> Self {
        let view = Privilege::new(Action::View);
        let mut v = Self {
            owners,
            ..Self::default()
        };
        for g in &state.snap.grants {
            let covers = principals.contains(&g.grantee)
                && Privilege::parse(&g.privilege).is_some_and(|p| p.covers(&view, &g.object));
            if !covers {
                continue;
            }
            match g.object {
                ObjectRef::System => v.system = true,
                ObjectRef::Database(id) => {
                    v.databases.insert(id);
                }
                ObjectRef::User(id) => {
                    v.users.insert(id);
                }
                ObjectRef::Group(id) => {
                    v.groups.insert(id);
                }
            }
        }
        for p in principals {
            let _ = match *p {
                PrincipalRef::User(id) => v.users.insert(id),
                PrincipalRef::Group(id) => v.groups.insert(id),
                PrincipalRef::Role(id) => v.roles.insert(id),
            };
        }
        v.home_databases.push(session.database_id);
        if session.sso.is_none() {
            v.users.insert(session.user_id);
            if let Some(d) = v.owners.users.get(&session.user_id) {
                v.home_databases.push(*d);
            }
        }
        v
    }

    pub fn system(&self) -> bool {
        self.system
    }

    pub fn database(&self, id: i64) -> bool {
        self.system || self.databases.contains(&id)
    }

    pub fn home_database(&self, id: i64) -> bool {
        self.home_databases.contains(&id)
    }

    fn in_visible_database(&self, owner: Option<&i64>) -> bool {
        owner.is_some_and(|d| self.database(*d))
    }

    pub fn user(&self, id: i64) -> bool {
        self.system
            || self.users.contains(&id)
            || self.in_visible_database(self.owners.users.get(&id))
    }

    pub fn group(&self, id: i64) -> bool {
        self.system
            || self.groups.contains(&id)
            || self.in_visible_database(self.owners.groups.get(&id))
    }

    pub fn role(&self, id: i64) -> bool {
        self.system
            || self.roles.contains(&id)
            || self.in_visible_database(self.owners.roles.get(&id))
    }
}

/// The `portcullis_may_view_*` functions the views filter with; they answer for the session of
/// the running query (the engine sets it before each query).
pub fn register_functions(
    conn: &Connection,
    view: &Arc<Mutex<SessionView>>,
) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    let system = view.clone();
    conn.create_scalar_function("portcullis_may_view_system", 0, flags, move |_| {
        Ok(system.lock().visible.system())
    })?;
    type Check = fn(&Visibility, i64) -> bool;
    let checks: [(&str, Check); 5] = [
        ("portcullis_may_view_database", Visibility::database),
        ("portcullis_is_home_database", Visibility::home_database),
        ("portcullis_may_view_user", Visibility::user),
        ("portcullis_may_view_group", Visibility::group),
        ("portcullis_may_view_role", Visibility::role),
    ];
    for (name, check) in checks {
        let view = view.clone();
        conn.create_scalar_function(name, 1, flags, move |ctx| {
            let id: Option<i64> = ctx.get(0)?;
            Ok(id.is_some_and(|id| check(&view.lock().visible, id)))
        })?;
    }
    Ok(())
}

/// Refuses a query that defines a common table expression named like a `sys` view. SQLite names
/// the accessor of a read after the FROM item it expands, so inside a CTE called `users` a read
/// of `sys.users_all` would look as if the view made it.
pub fn check_cte_names(sql: &str) -> Result<(), CatalogError> {
    let tokens = tokenize(sql);
    let word = |i: usize, w: &str| matches!(tokens.get(i), Some(Token::Name { text, bare: true }) if text.eq_ignore_ascii_case(w));
    for (i, token) in tokens.iter().enumerate() {
        let Token::Name { text, .. } = token else {
            continue;
        };
        let Some((name, _)) = VIEWS.iter().find(|(v, _)| v.eq_ignore_ascii_case(text)) else {
            continue;
        };
        let mut j = i + 1;
        if tokens.get(j) == Some(&Token::Punct(b'(')) {
            j = after_parentheses(&tokens, j);
        }
        if !word(j, "AS") {
            continue;
        }
        j += 1;
        if word(j, "NOT") {
            j += 1;
        }
        if word(j, "MATERIALIZED") {
            j += 1;
        }
        if tokens.get(j) == Some(&Token::Punct(b'(')) {
            return Err(CatalogError::new(
                "42939",
                format!(
                    "\"{name}\" is the name of a sys table; give the common table expression \
                     another name"
                ),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// An identifier, bare or quoted, or a string literal (SQLite takes one as a name where a
    /// name is expected).
    Name {
        text: String,
        bare: bool,
    },
    Punct(u8),
    Other,
}

/// The index after the parenthesis group that starts at `open`.
fn after_parentheses(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Punct(b'(') => depth += 1,
            Token::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Splits SQL into tokens the way SQLite's tokenizer does, as far as names, quotes, comments
/// and parentheses go.
fn tokenize(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let text = |from: usize, to: usize| String::from_utf8_lossy(&b[from..to]).into_owned();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
            b'\'' | b'"' | b'`' => {
                let mut name = Vec::new();
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            name.push(c);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    name.push(b[i]);
                    i += 1;
                }
                out.push(Token::Name {
                    text: String::from_utf8_lossy(&name).into_owned(),
                    bare: false,
                });
            }
            b'[' => {
                let start = i + 1;
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
                out.push(Token::Name {
                    text: text(start, i.min(b.len())),
                    bare: false,
                });
                i = (i + 1).min(b.len());
            }
            b'x' | b'X' if b.get(i + 1) == Some(&b'\'') => {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push(Token::Other);
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                out.push(Token::Name {
                    text: text(start, i),
                    bare: true,
                });
            }
            b'0'..=b'9' | b'$' | b'@' | b':' | b'#' | b'?' => {
                i += 1;
                while i < b.len() && (ident(b[i]) || b[i] == b'.') {
                    i += 1;
                }
                out.push(Token::Other);
            }
            _ => {
                out.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cte_named_like_a_view_is_refused_in_every_spelling() {
        for sql in [
            "WITH users AS (SELECT * FROM sys.users_all) SELECT * FROM users",
            "with USERS as materialized (select 1) select 1",
            "WITH x AS (SELECT 1), \"sessions\"(a, b) AS NOT MATERIALIZED (SELECT 1, 2) SELECT 1",
            "WITH [privileges] AS (SELECT 1) SELECT 1",
            "WITH `groups` AS (SELECT 1) SELECT 1",
            "WITH 'databases' AS (SELECT 1) SELECT 1",
            "WITH RECURSIVE oidc_integrations/* c */AS--c\n(SELECT 1) SELECT 1",
        ] {
            let err = check_cte_names(sql).unwrap_err();
            assert_eq!(err.sqlstate, "42939", "{sql}");
        }
    }

    #[test]
    fn names_in_other_places_pass() {
        for sql in [
            "SELECT * FROM sys.users AS u",
            "SELECT users.name FROM sys.users JOIN sys.groups ON 1",
            "SELECT 'users AS (' FROM sys.users",
            "SELECT \"x\" FROM sys.users -- users AS (",
            "WITH mine AS (SELECT * FROM sys.users) SELECT * FROM mine",
            "SELECT x'7573657273' AS users",
        ] {
            assert!(check_cte_names(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn only_the_view_reads_its_table() {
        assert_eq!(may_read("users_all", Some("users")), Some(true));
        assert_eq!(may_read("users_all", Some("USERS")), Some(true));
        assert_eq!(may_read("users_all", Some("groups")), Some(false));
        assert_eq!(may_read("users_all", None), Some(false));
        assert_eq!(may_read("users", None), None);
        assert_eq!(may_read("nothing_all", None), None);
    }
}
