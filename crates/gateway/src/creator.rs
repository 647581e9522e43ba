//! The creator group (seed 003): what an SSO user creates upstream is owned by one of their
//! groups — those with CREATE on the target schema (for `CREATE SCHEMA`, on the database)
//! win, ties go alphabetically. The relay sends a query of its own before the client's
//! (`SET ROLE` to that group, chosen by PostgreSQL from the privileges it holds at that
//! moment) and one after it (back to the role before); their answers are Portcullis's own and
//! never reach the client ([`crate::flow::Flow::sent_own`]).
//!
//! In PostgreSQL an object's owner must be allowed to create in its schema, so for an object in
//! a schema the database-level tier can never pick a group the schema tier did not: when no
//! group of the person may create in that schema, the person owns what they create. A group
//! chosen this way can do no more than the person (who holds its privileges), so running the
//! client's statement as that group never escalates. Password users own what they create.

use portcullis_catalog::sql::creates::{pieces, Creates};

/// The client's query as the upstream gets it: `before` and `after` go around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    pub before: String,
    pub after: String,
}

/// The groups of a person the rule may pick (upstream role names), and a switch that waits
/// for the end of an extended-protocol batch.
#[derive(Debug, Default, Clone)]
pub struct Creator {
    /// The upstream roles of the SSO session's groups; empty for password users.
    pub groups: Vec<String>,
    /// The query that switches back, sent after the next Sync.
    pub after_sync: Option<String>,
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Whether a statement text begins with CREATE (after blanks and comments): the cheap test
/// before any tokenizing, so the relay's other statements pay nothing.
fn may_create(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("create"))
}

impl Creator {
    /// The queries around `sql` when its first statement creates something a group should own
    /// (in a query of several statements, the others then run as that group too); `None`
    /// otherwise.
    pub fn wrap(&self, sql: &str) -> Option<Wrap> {
        if self.groups.is_empty() || !may_create(sql) {
            return None;
        }
        let creates = pieces(sql)?.into_iter().next()?.creates?;
        Some(wrap_for(&self.groups, &creates))
    }
}

/// The switch to the group the rule picks for `creates` among `groups`, and the way back. The
/// role and search path before are kept in `portcullis.*` settings of the session; a role the
/// client set itself is left alone; the search path is pinned as the person sees it (a
/// `"$user"` in it would name the group's schema otherwise).
pub fn wrap_for(groups: &[String], creates: &Creates) -> Wrap {
    let candidates = groups
        .iter()
        .map(|g| literal(g))
        .collect::<Vec<_>>()
        .join(", ");
    let may_create = match creates {
        Creates::Schema => "pg_catalog.has_database_privilege(r.oid, \
             (SELECT d.oid FROM pg_catalog.pg_database d \
              WHERE d.datname = pg_catalog.current_database()), 'CREATE')"
            .to_owned(),
        Creates::InSchema(schema) => {
            let schema = schema
                .as_deref()
                .map_or("pg_catalog.current_schema()".to_owned(), literal);
            format!(
                "EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = {schema} \
                 AND pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE'))"
            )
        }
    };
    let before = format!(
        "SELECT pg_catalog.set_config('portcullis.role_before', \
         pg_catalog.current_setting('role'), false), \
         pg_catalog.set_config('portcullis.search_path_before', \
         pg_catalog.current_setting('search_path'), false), \
         pg_catalog.set_config('search_path', (SELECT coalesce(\
         pg_catalog.string_agg(pg_catalog.quote_ident(s), ', ' ORDER BY o), '') \
         FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS u(s, o)), \
         false), \
         pg_catalog.set_config('role', CASE WHEN pg_catalog.current_setting('role') <> 'none' \
         THEN pg_catalog.current_setting('role') ELSE coalesce(\
         (SELECT r.rolname::text FROM pg_catalog.pg_roles r \
          WHERE r.rolname = ANY (ARRAY[{candidates}]::text[]) \
          AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER') AND {may_create} \
          ORDER BY r.rolname COLLATE \"C\" LIMIT 1), 'none') END, false)"
    );
    let after = "SELECT pg_catalog.set_config('role', \
                 pg_catalog.current_setting('portcullis.role_before'), false), \
                 pg_catalog.set_config('search_path', \
                 pg_catalog.current_setting('portcullis.search_path_before'), false)"
        .to_owned();
    Wrap { before, after }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_creates_of_sso_users_are_wrapped() {
        let c = Creator {
            groups: vec!["analysts@sales".into(), "o'neil@sales".into()],
            after_sync: None,
        };
        let w = c
            .wrap("/* x */ -- y\n create table finance.t (a int)")
            .unwrap();
        assert!(w.before.contains("'analysts@sales', 'o''neil@sales'"));
        assert!(w.before.contains("n.nspname = 'finance'"));
        assert!(c
            .wrap("CREATE SCHEMA s")
            .unwrap()
            .before
            .contains("has_database_privilege"));
        assert!(c
            .wrap("CREATE TABLE t ()")
            .unwrap()
            .before
            .contains("pg_catalog.current_schema()"));
        assert_eq!(c.wrap("SELECT 1; CREATE TABLE t ()"), None);
        assert_eq!(c.wrap("CREATE INDEX i ON t (a)"), None);
        assert_eq!(c.wrap("CREATE TEMP TABLE t ()"), None);
        let password_user = Creator::default();
        assert_eq!(password_user.wrap("CREATE TABLE t ()"), None);
    }
}
