//! Catalog changes mirrored to upstreams as they happen: a new group is a NOLOGIN role, a
//! dropped one is dropped; memberships (users in groups, roles granted) are granted and
//! revoked on the roles of people who have signed in; a dropped user's role hands what it owns
//! to the administrator and is dropped. Only roles Portcullis manages are touched. One
//! transaction per upstream, committed after the catalog.

use portcullis_catalog::model::CatalogState;
use portcullis_catalog::upstream::{unreachable, MirrorCommit, UpstreamMirror, UpstreamUrl};
use portcullis_catalog::CatalogError;
use portcullis_store::{Change, PrincipalRef};

use crate::roles::{ident, MANAGED};
use crate::Gateway;

/// One statement, run only if the named roles exist and are managed.
struct Step {
    sql: String,
    /// Roles that must exist, managed (else the step is skipped: nobody signed in yet).
    needs: Vec<String>,
    /// Roles this step creates (a new group): the marker is ensured first.
    creates: bool,
    /// The role this step drops (its idle sessions are closed).
    drops: Option<String>,
}

fn group_name(state: &CatalogState, id: i64) -> Option<(i64, String)> {
    let g = state.group_by_id(id)?;
    Some((
        g.database_id,
        format!("{}@{}", g.name, state.database_name(g.database_id)),
    ))
}

fn role_name(state: &CatalogState, id: i64) -> Option<(i64, String)> {
    let r = state.role_by_id(id)?;
    Some((
        r.database_id,
        format!("{}@{}", r.name, state.database_name(r.database_id)),
    ))
}

fn user_name(state: &CatalogState, id: i64) -> Option<String> {
    let u = state.user_by_id(id)?;
    Some(format!("{}@{}", u.name, state.database_name(u.database_id)))
}

/// What `changes` mean upstream, per database id.
fn steps(before: &CatalogState, changes: &[Change]) -> Vec<(i64, Step)> {
    let bound = |db: i64| before.snap.upstreams.iter().any(|u| u.database_id == db);
    // Objects the same batch creates are looked up in the state after it.
    let mut after = before.clone();
    after.apply(changes);
    let mut out = Vec::new();
    for change in changes {
        match change {
            Change::PutGroup(g) if bound(g.database_id) && before.group_by_id(g.id).is_none() => {
                let name = format!("{}@{}", g.name, after.database_name(g.database_id));
                out.push((
                    g.database_id,
                    Step {
                        sql: format!(
                            "CREATE ROLE {r} NOLOGIN; GRANT {m} TO {r}",
                            r = ident(&name),
                            m = ident(MANAGED)
                        ),
                        needs: Vec::new(),
                        creates: true,
                        drops: None,
                    },
                ));
            }
            Change::DeleteGroup(id) => {
                if let Some((db, name)) = group_name(before, *id).filter(|(db, _)| bound(*db)) {
                    out.push((
                        db,
                        Step {
                            sql: drop_role(&name),
                            needs: vec![name.clone()],
                            creates: false,
                            drops: Some(name),
                        },
                    ));
                }
            }
            Change::AddGroupMember(m) | Change::RemoveGroupMember(m) => {
                let grant = matches!(change, Change::AddGroupMember(_));
                let group =
                    group_name(&after, m.group_id).or_else(|| group_name(before, m.group_id));
                let user = user_name(&after, m.user_id).or_else(|| user_name(before, m.user_id));
                if let (Some((db, g)), Some(u)) = (group, user) {
                    if bound(db) {
                        out.push((db, membership(grant, &g, &u)));
                    }
                }
            }
            Change::AddRoleMember(m) | Change::RemoveRoleMember(m) => {
                let grant = matches!(change, Change::AddRoleMember(_));
                let role = role_name(&after, m.role_id).or_else(|| role_name(before, m.role_id));
                let member = match m.member {
                    PrincipalRef::User(id) => {
                        user_name(&after, id).or_else(|| user_name(before, id))
                    }
                    PrincipalRef::Group(id) => group_name(&after, id)
                        .or_else(|| group_name(before, id))
                        .map(|(_, n)| n),
                    PrincipalRef::Role(id) => role_name(&after, id)
                        .or_else(|| role_name(before, id))
                        .map(|(_, n)| n),
                };
                if let (Some((db, r)), Some(member)) = (role, member) {
                    if bound(db) {
                        out.push((db, membership(grant, &r, &member)));
                    }
                }
            }
            Change::DeleteUser(id) => {
                if let Some(u) = user_name(before, *id) {
                    for b in &before.snap.upstreams {
                        out.push((
                            b.database_id,
                            Step {
                                sql: drop_role(&u),
                                needs: vec![u.clone()],
                                creates: false,
                                drops: Some(u.clone()),
                            },
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Drops a managed role: what it owns goes to the administrator (data is never dropped with a
/// person or a group), its privileges are revoked, then the role. (REASSIGN OWNED needs the
/// administrator in the role: CREATEROLE may grant that to itself.)
fn drop_role(name: &str) -> String {
    format!(
        "GRANT {r} TO CURRENT_USER; REASSIGN OWNED BY {r} TO CURRENT_USER; \
         DROP OWNED BY {r}; DROP ROLE {r}",
        r = ident(name)
    )
}

fn membership(grant: bool, of: &str, member: &str) -> Step {
    Step {
        sql: if grant {
            format!("GRANT {} TO {}", ident(of), ident(member))
        } else {
            format!("REVOKE {} FROM {}", ident(of), ident(member))
        },
        needs: vec![of.to_owned(), member.to_owned()],
        creates: false,
        drops: None,
    }
}

/// An open upstream transaction; once it commits, the pool forgets what it knew of the
/// upstream's roles (again: a sign-in may have noted them while the change was running).
struct Open {
    client: tokio_postgres::Client,
    pool: std::sync::Arc<crate::pool::Pool>,
    upstream: String,
    dropped: Vec<String>,
}

#[async_trait::async_trait]
impl MirrorCommit for Open {
    async fn commit(self: Box<Self>) -> Result<(), CatalogError> {
        let done = self
            .client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| unreachable(format!("committing mirrored changes: {e}")));
        self.pool.forget(&self.upstream, &self.dropped);
        done
    }
}

fn failed(what: &str, e: &tokio_postgres::Error) -> CatalogError {
    let why = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    unreachable(format!("{what}: {why}; nothing was changed"))
}

#[async_trait::async_trait]
impl UpstreamMirror for Gateway {
    async fn begin(
        &self,
        before: &CatalogState,
        changes: &[Change],
        bindings: &[(i64, UpstreamUrl)],
    ) -> Result<Vec<Box<dyn MirrorCommit>>, CatalogError> {
        let steps = steps(before, changes);
        let mut open: Vec<Box<dyn MirrorCommit>> = Vec::new();
        let mut databases: Vec<i64> = steps.iter().map(|(db, _)| *db).collect();
        databases.sort_unstable();
        databases.dedup();
        for db in databases {
            let Some((_, url)) = bindings.iter().find(|(id, _)| *id == db) else {
                continue;
            };
            let client = crate::connect(url).await?;
            client
                .batch_execute(&format!("BEGIN; {}", crate::roles::LOCK))
                .await
                .map_err(|e| failed("upstream", &e))?;
            for (_, step) in steps.iter().filter(|(d, _)| *d == db) {
                if step.creates {
                    client
                        .batch_execute(&format!(
                            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles \
                             WHERE rolname = '{m}') THEN CREATE ROLE \"{m}\" NOLOGIN; END IF; END $$",
                            m = MANAGED
                        ))
                        .await
                        .map_err(|e| failed("upstream", &e))?;
                }
                if !managed_all(&client, &step.needs).await? {
                    continue;
                }
                client
                    .batch_execute(&step.sql)
                    .await
                    .map_err(|e| failed(&format!("upstream {}", url.display()), &e))?;
            }
            let dropped: Vec<String> = steps
                .iter()
                .filter(|(d, _)| *d == db)
                .filter_map(|(_, s)| s.drops.clone())
                .collect();
            self.pool.forget(&url.display(), &dropped);
            open.push(Box::new(Open {
                client,
                pool: self.pool.clone(),
                upstream: url.display(),
                dropped,
            }));
        }
        Ok(open)
    }
}

/// Whether every role exists upstream and is managed by Portcullis.
async fn managed_all(
    client: &tokio_postgres::Client,
    roles: &[String],
) -> Result<bool, CatalogError> {
    for role in roles {
        let managed = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_auth_members m \
                 ON m.member = r.oid JOIN pg_catalog.pg_roles k ON k.oid = m.roleid \
                 WHERE r.rolname = $1 AND k.rolname = $2 AND NOT r.rolsuper",
                &[role, &MANAGED],
            )
            .await
            .map_err(|e| failed("upstream", &e))?
            .is_some();
        if !managed {
            return Ok(false);
        }
    }
    Ok(true)
}
