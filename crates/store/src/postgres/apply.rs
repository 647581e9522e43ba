//! One catalog change in PostgreSQL, inside the caller's transaction: the same statements as
//! the SQLite store's (`ON CONFLICT` upserts, the same cascades by hand for references that
//! are a kind and an id).

use tokio_postgres::Transaction;

use crate::kinds::{object_parts, principal_parts, scope_parts, target_parts};
use crate::*;

/// Deletes the grants, role memberships and settings that name something going away.
async fn forget_refs(tx: &Transaction<'_>, kind: &str, id: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM grants WHERE (grantee_kind = $1 AND grantee_id = $2) \
         OR (object_kind = $1 AND object_id = $2)",
        &[&kind, &id],
    )
    .await?;
    tx.execute(
        "DELETE FROM role_members WHERE member_kind = $1 AND member_id = $2",
        &[&kind, &id],
    )
    .await?;
    if kind == "group" || kind == "database" {
        tx.execute(
            "DELETE FROM settings WHERE scope_kind = $1 AND scope_id = $2",
            &[&kind, &id],
        )
        .await?;
    }
    Ok(())
}

pub async fn apply_one(tx: &Transaction<'_>, change: &Change) -> Result<(), StoreError> {
    if let Some(id) = change.put_id() {
        tx.execute("UPDATE id_high_water SET high = GREATEST(high, $1)", &[&id])
            .await?;
    }
    match change {
        Change::PutDatabase(d) => {
            tx.execute(
                "INSERT INTO databases (id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                &[&d.id, &d.name, &d.created_at],
            )
            .await?;
        }
        Change::DeleteDatabase(id) => {
            for (table, kind) in [("users", "user"), ("groups", "group"), ("roles", "role")] {
                let members = tx
                    .query(
                        &format!("SELECT id FROM {table} WHERE database_id = $1"),
                        &[id],
                    )
                    .await?;
                for member in members {
                    forget_refs(tx, kind, member.get(0)).await?;
                }
            }
            forget_refs(tx, "database", *id).await?;
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = 'database' AND target_id = $1",
                &[id],
            )
            .await?;
            tx.execute("DELETE FROM upstreams WHERE database_id = $1", &[id])
                .await?;
            tx.execute("DELETE FROM databases WHERE id = $1", &[id])
                .await?;
        }
        Change::PutUser(u) => {
            tx.execute(
                "INSERT INTO users (id, database_id, name, first_name, last_name, email, verifier, \
                 password_set_at, state, failed_attempts, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 first_name = excluded.first_name, last_name = excluded.last_name, \
                 email = excluded.email, verifier = excluded.verifier, \
                 password_set_at = excluded.password_set_at, state = excluded.state, \
                 failed_attempts = excluded.failed_attempts",
                &[
                    &u.id,
                    &u.database_id,
                    &u.name,
                    &u.first_name,
                    &u.last_name,
                    &u.email,
                    &u.verifier,
                    &u.password_set_at,
                    &u.state,
                    &u.failed_attempts,
                    &u.created_at,
                ],
            )
            .await?;
        }
        Change::DeleteUser(id) => {
            forget_refs(tx, "user", *id).await?;
            tx.execute("DELETE FROM users WHERE id = $1", &[id]).await?;
        }
        Change::PutGroup(g) => {
            tx.execute(
                "INSERT INTO groups (id, database_id, name, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                &[&g.id, &g.database_id, &g.name, &g.created_at],
            )
            .await?;
        }
        Change::DeleteGroup(id) => {
            forget_refs(tx, "group", *id).await?;
            tx.execute("DELETE FROM groups WHERE id = $1", &[id])
                .await?;
        }
        Change::PutRole(r) => {
            tx.execute(
                "INSERT INTO roles (id, database_id, name, description) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 description = excluded.description",
                &[&r.id, &r.database_id, &r.name, &r.description],
            )
            .await?;
        }
        Change::AddGrant(g) => {
            let (gk, gi) = principal_parts(g.grantee);
            let (ok, oi) = object_parts(g.object);
            tx.execute(
                "INSERT INTO grants (grantee_kind, grantee_id, privilege, object_kind, \
                 object_id, grantor, granted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT DO NOTHING",
                &[&gk, &gi, &g.privilege, &ok, &oi, &g.grantor, &g.granted_at],
            )
            .await?;
        }
        Change::RemoveGrant {
            grantee,
            privilege,
            object,
        } => {
            let (gk, gi) = principal_parts(*grantee);
            let (ok, oi) = object_parts(*object);
            tx.execute(
                "DELETE FROM grants WHERE grantee_kind = $1 AND grantee_id = $2 \
                 AND privilege = $3 AND object_kind = $4 AND object_id = $5",
                &[&gk, &gi, privilege, &ok, &oi],
            )
            .await?;
        }
        Change::AddGroupMember(m) => {
            tx.execute(
                "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&m.group_id, &m.user_id],
            )
            .await?;
        }
        Change::RemoveGroupMember(m) => {
            tx.execute(
                "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
                &[&m.group_id, &m.user_id],
            )
            .await?;
        }
        Change::AddRoleMember(m) => {
            let (k, i) = principal_parts(m.member);
            tx.execute(
                "INSERT INTO role_members (role_id, member_kind, member_id) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&m.role_id, &k, &i],
            )
            .await?;
        }
        Change::RemoveRoleMember(m) => {
            let (k, i) = principal_parts(m.member);
            tx.execute(
                "DELETE FROM role_members WHERE role_id = $1 AND member_kind = $2 \
                 AND member_id = $3",
                &[&m.role_id, &k, &i],
            )
            .await?;
        }
        Change::PutSetting(s) => {
            let (k, i) = scope_parts(s.scope);
            tx.execute(
                "INSERT INTO settings (scope_kind, scope_id, name, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (scope_kind, scope_id, name) DO UPDATE SET value = excluded.value",
                &[&k, &i, &s.name, &s.value],
            )
            .await?;
        }
        Change::RemoveSetting { scope, name } => {
            let (k, i) = scope_parts(*scope);
            tx.execute(
                "DELETE FROM settings WHERE scope_kind = $1 AND scope_id = $2 AND name = $3",
                &[&k, &i, name],
            )
            .await?;
        }
        Change::AddPasswordHistory(h) => {
            tx.execute(
                "INSERT INTO password_history (user_id, verifier, set_at) VALUES ($1, $2, $3)",
                &[&h.user_id, &h.verifier, &h.set_at],
            )
            .await?;
        }
        Change::TrimPasswordHistory { user_id, keep } => {
            let keep = i64::try_from(*keep).unwrap_or(i64::MAX);
            tx.execute(
                "DELETE FROM password_history WHERE user_id = $1 AND seq <= (SELECT seq FROM \
                 password_history WHERE user_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
                &[user_id, &keep],
            )
            .await?;
        }
        Change::PutSsoIntegration(i) => {
            tx.execute(
                "INSERT INTO sso_integrations (id, database_id, name, protocol, properties, \
                 sealed_secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 properties = excluded.properties, sealed_secret = excluded.sealed_secret, \
                 updated_at = excluded.updated_at",
                &[
                    &i.id,
                    &i.database_id,
                    &i.name,
                    &i.protocol,
                    &i.properties,
                    &i.sealed_secret,
                    &i.created_at,
                    &i.updated_at,
                ],
            )
            .await?;
        }
        Change::DeleteSsoIntegration(id) => {
            tx.execute(
                "DELETE FROM sso_assignments WHERE integration_id = $1",
                &[id],
            )
            .await?;
            tx.execute("DELETE FROM sso_integrations WHERE id = $1", &[id])
                .await?;
        }
        Change::AssignSso(a) => {
            let (k, i) = target_parts(a.target);
            tx.execute(
                "INSERT INTO sso_assignments (target_kind, target_id, integration_id) \
                 VALUES ($1, $2, $3) ON CONFLICT (target_kind, target_id) \
                 DO UPDATE SET integration_id = excluded.integration_id",
                &[&k, &i, &a.integration_id],
            )
            .await?;
        }
        Change::UnassignSso(target) => {
            let (k, i) = target_parts(*target);
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = $1 AND target_id = $2",
                &[&k, &i],
            )
            .await?;
        }
        Change::PutConnectivityPool(p) => {
            tx.execute(
                "INSERT INTO connectivity_pools (id, name, listen, created_at, advertised) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 listen = excluded.listen, advertised = excluded.advertised",
                &[&p.id, &p.name, &p.listen, &p.created_at, &p.advertised],
            )
            .await?;
        }
        Change::DeleteConnectivityPool(id) => {
            tx.execute(
                "DELETE FROM sso_assignments WHERE target_kind = 'pool' AND target_id = $1",
                &[id],
            )
            .await?;
            tx.execute("DELETE FROM connectivity_pools WHERE id = $1", &[id])
                .await?;
        }
        Change::PutUpstream(u) => {
            tx.execute(
                "INSERT INTO upstreams (database_id, url, sealed_password, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (database_id) DO UPDATE SET \
                 url = excluded.url, sealed_password = excluded.sealed_password, \
                 updated_at = excluded.updated_at",
                &[&u.database_id, &u.url, &u.sealed_password, &u.updated_at],
            )
            .await?;
        }
        Change::RemoveUpstream(database_id) => {
            tx.execute(
                "DELETE FROM upstreams WHERE database_id = $1",
                &[database_id],
            )
            .await?;
        }
    }
    Ok(())
}
