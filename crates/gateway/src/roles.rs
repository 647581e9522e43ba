//! Upstream roles that follow the catalog: one NOLOGIN role per group or role a session acts
//! through, and one LOGIN role per person who signs in (password users and SSO identities
//! alike), holding exactly the session's memberships — revoking only what Portcullis granted.
//! Every role Portcullis creates is a member of the marker role `portcullis_managed`; a role
//! of the same name that is not (a superuser, the administrator itself, anyone's own role) is
//! never touched: the sign-in is refused instead.

use portcullis_catalog::upstream::{not_allowed, unreachable, UpstreamUrl};
use portcullis_catalog::CatalogError;

use crate::connect;

/// The marker role of every role Portcullis manages.
pub const MANAGED: &str = "portcullis_managed";

/// Serializes Portcullis's role changes on an upstream (sign-ins of the same person, or of
/// people sharing a new group, would otherwise race: "tuple concurrently updated", duplicate
/// roles) — across every Portcullis process that shares it. Taken first in each transaction.
pub const LOCK: &str = "SELECT pg_catalog.pg_advisory_xact_lock(7383117463253011)";

/// How the relay logs in as the person: their role and a fresh random password — valid until
/// the next sign-in of the same person sets another, so the administrator connection that set
/// it is kept (holding a lock on the person) until this login is done: drop it after.
pub struct UpstreamLogin {
    pub role: String,
    pub password: String,
    /// Holds `pg_advisory_lock` on the person until dropped.
    _hold: tokio_postgres::Client,
}

impl std::fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal (standard_conforming_strings on).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn failed(e: tokio_postgres::Error) -> CatalogError {
    match e.as_db_error() {
        Some(db) => unreachable(format!("provisioning roles: {}", db.message())),
        None => unreachable(format!("provisioning roles: {e}")),
    }
}

/// Makes `role` (LOGIN, a new random password) and `groups` (NOLOGIN) exist upstream and
/// gives `role` exactly the memberships in `groups` that Portcullis grants. One transaction:
/// a failure leaves the upstream as it was.
pub async fn provision(
    url: &UpstreamUrl,
    role: &str,
    groups: &[String],
) -> Result<UpstreamLogin, CatalogError> {
    if role.is_empty() || role.len() > 63 || groups.iter().any(|g| g.is_empty() || g.len() > 63) {
        return Err(not_allowed(format!(
            "role name {role:?} (or one of its groups) does not fit PostgreSQL's 63 bytes"
        )));
    }
    let mut client = connect(url).await?;
    // One sign-in of a person at a time, until its login upstream is done (a second one would
    // set another password in between).
    client
        .execute(
            "SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtextextended($1, 7383117463253012))",
            &[&role],
        )
        .await
        .map_err(failed)?;
    let tx = client.transaction().await.map_err(failed)?;
    tx.batch_execute(LOCK).await.map_err(failed)?;
    ensure_marker(&tx).await?;
    for g in groups {
        ensure(&tx, g, false).await?;
    }
    ensure(&tx, role, true).await?;
    let password: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    tx.batch_execute(&format!(
        "ALTER ROLE {} LOGIN PASSWORD {}",
        ident(role),
        literal(&password)
    ))
    .await
    .map_err(failed)?;
    let held: Vec<String> = tx
        .query(
            "SELECT g.rolname FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles g ON g.oid = m.roleid \
             JOIN pg_catalog.pg_roles u ON u.oid = m.member \
             WHERE u.rolname = $1 AND g.rolname <> $2 \
             AND m.grantor = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)",
            &[&role, &MANAGED],
        )
        .await
        .map_err(failed)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for g in groups.iter().filter(|g| !held.contains(g)) {
        tx.batch_execute(&format!("GRANT {} TO {}", ident(g), ident(role)))
            .await
            .map_err(failed)?;
    }
    for g in held.iter().filter(|h| !groups.contains(h)) {
        tx.batch_execute(&format!("REVOKE {} FROM {}", ident(g), ident(role)))
            .await
            .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    Ok(UpstreamLogin {
        role: role.to_owned(),
        password,
        _hold: client,
    })
}

async fn ensure_marker(tx: &tokio_postgres::Transaction<'_>) -> Result<(), CatalogError> {
    let exists = tx
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&MANAGED],
        )
        .await
        .map_err(failed)?
        .is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE ROLE {} NOLOGIN", ident(MANAGED)))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Creates `name` (marked as managed) if it does not exist; refuses one that exists unmarked
/// or with powers a managed role never has.
async fn ensure(
    tx: &tokio_postgres::Transaction<'_>,
    name: &str,
    login: bool,
) -> Result<(), CatalogError> {
    let row = tx
        .query_opt(
            "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication \
             OR r.rolbypassrls, \
             EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m \
                     JOIN pg_catalog.pg_roles k ON k.oid = m.roleid \
                     WHERE m.member = r.oid AND k.rolname = $2) \
             FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
            &[&name, &MANAGED],
        )
        .await
        .map_err(failed)?;
    match row {
        Some(r) => {
            let (powerful, managed): (bool, bool) = (r.get(0), r.get(1));
            if powerful || !managed {
                return Err(not_allowed(format!(
                    "role \"{name}\" exists upstream and is not managed by Portcullis; it is \
                     never taken over (rename it, or sign in under another name)"
                )));
            }
        }
        None => {
            tx.batch_execute(&format!(
                "CREATE ROLE {} {}; GRANT {} TO {}",
                ident(name),
                if login { "LOGIN" } else { "NOLOGIN" },
                ident(MANAGED),
                ident(name)
            ))
            .await
            .map_err(failed)?;
        }
    }
    Ok(())
}
