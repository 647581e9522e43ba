//! Names: fully qualified user names (`alice@example_database`) and `name@database` for groups
//! and roles.

use std::fmt;

/// A name that may carry its database (`name@database`). Without one, the current database is
/// meant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    pub name: String,
    pub database: Option<String>,
}

impl QualifiedName {
    /// Splits `name@database` at the last `@`. An empty part is an error.
    pub fn parse(text: &str) -> Option<Self> {
        match text.rsplit_once('@') {
            Some((name, database)) if !name.is_empty() && !database.is_empty() => Some(Self {
                name: name.to_owned(),
                database: Some(database.to_owned()),
            }),
            Some(_) => None,
            None if !text.is_empty() => Some(Self {
                name: text.to_owned(),
                database: None,
            }),
            None => None,
        }
    }

    /// The database this name lives in, given the current one.
    pub fn database_or<'a>(&'a self, current: &'a str) -> &'a str {
        self.database.as_deref().unwrap_or(current)
    }

    /// The fully qualified form against the current database.
    pub fn qualified(&self, current: &str) -> Fqun {
        Fqun {
            user: self.name.clone(),
            database: self.database_or(current).to_owned(),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.database {
            Some(db) => write!(f, "{}@{}", self.name, db),
            None => f.write_str(&self.name),
        }
    }
}

/// A fully qualified user (or group or role) name: `name@database`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fqun {
    pub user: String,
    pub database: String,
}

impl fmt::Display for Fqun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.database)
    }
}

/// Resolves the user and database a PostgreSQL client sent at startup.
///
/// `alice@example_database` names the user; `alice` with database `example_database` means the
/// same. libpq sends the user name as the database when none was given, so a database equal to
/// the user name is read as "not given". Returns the user's FQUN and the database to open.
pub fn resolve_login(user: &str, database: Option<&str>) -> Option<(Fqun, String)> {
    let database = database.filter(|d| !d.is_empty() && *d != user);
    let name = QualifiedName::parse(user)?;
    match (&name.database, database) {
        (Some(home), Some(target)) => Some((name.qualified(home), target.to_owned())),
        (Some(home), None) => Some((name.qualified(home), home.clone())),
        (None, Some(target)) => Some((name.qualified(target), target.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type LoginCase<'a> = (
        &'a str,
        Option<&'a str>,
        Option<(&'a str, &'a str, &'a str)>,
    );

    #[test]
    fn login_names() {
        let cases: &[LoginCase] = &[
            ("alice@sales", None, Some(("alice", "sales", "sales"))),
            (
                "alice@sales",
                Some("alice@sales"),
                Some(("alice", "sales", "sales")),
            ),
            (
                "alice@sales",
                Some("sales"),
                Some(("alice", "sales", "sales")),
            ),
            ("alice", Some("sales"), Some(("alice", "sales", "sales"))),
            (
                "admin@system",
                Some("sales"),
                Some(("admin", "system", "sales")),
            ),
            ("alice", None, None),
            ("alice", Some("alice"), None),
            ("@sales", None, None),
            ("alice@", None, None),
            ("", Some("sales"), None),
        ];
        for (user, db, want) in cases {
            let got = resolve_login(user, *db);
            let got = got
                .as_ref()
                .map(|(f, t)| (f.user.as_str(), f.database.as_str(), t.as_str()));
            assert_eq!(got, *want, "{user} {db:?}");
        }
    }

    #[test]
    fn qualified_names_split_at_the_last_at() {
        let q = QualifiedName::parse("a@b@sales").unwrap();
        assert_eq!(
            (q.name.as_str(), q.database.as_deref()),
            ("a@b", Some("sales"))
        );
        assert_eq!(
            QualifiedName::parse("g")
                .unwrap()
                .qualified("db")
                .to_string(),
            "g@db"
        );
    }
}
