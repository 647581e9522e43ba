//! Loading the whole catalog from PostgreSQL, in the order the SQLite store answers (ids, or
//! insertion order for rows without one).

use tokio_postgres::{Row, Transaction};

use crate::kinds;
use crate::*;

/// A row's kind word that names nothing: the store was written by something else.
fn bad(kind: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown kind \"{kind}\" in the store"))
}

async fn rows(tx: &Transaction<'_>, sql: &str) -> Result<Vec<Row>, StoreError> {
    Ok(tx.query(sql, &[]).await?)
}

pub async fn load(tx: &Transaction<'_>) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot {
        id_high_water: tx
            .query_one("SELECT high FROM id_high_water", &[])
            .await?
            .get(0),
        ..Snapshot::default()
    };
    snap.databases = rows(tx, "SELECT id, name, created_at FROM databases ORDER BY id")
        .await?
        .iter()
        .map(|r| DatabaseRecord {
            id: r.get(0),
            name: r.get(1),
            created_at: r.get(2),
        })
        .collect();
    snap.users = rows(
        tx,
        "SELECT id, database_id, name, first_name, last_name, email, verifier, \
         password_set_at, state, failed_attempts, created_at FROM users ORDER BY id",
    )
    .await?
    .iter()
    .map(|r| UserRecord {
        id: r.get(0),
        database_id: r.get(1),
        name: r.get(2),
        first_name: r.get(3),
        last_name: r.get(4),
        email: r.get(5),
        verifier: r.get(6),
        password_set_at: r.get(7),
        state: r.get(8),
        failed_attempts: r.get(9),
        created_at: r.get(10),
    })
    .collect();
    snap.groups = rows(
        tx,
        "SELECT id, database_id, name, created_at FROM groups ORDER BY id",
    )
    .await?
    .iter()
    .map(|r| GroupRecord {
        id: r.get(0),
        database_id: r.get(1),
        name: r.get(2),
        created_at: r.get(3),
    })
    .collect();
    snap.roles = rows(
        tx,
        "SELECT id, database_id, name, description FROM roles ORDER BY id",
    )
    .await?
    .iter()
    .map(|r| RoleRecord {
        id: r.get(0),
        database_id: r.get(1),
        name: r.get(2),
        description: r.get(3),
    })
    .collect();
    snap.grants = rows(
        tx,
        "SELECT grantee_kind, grantee_id, privilege, object_kind, object_id, grantor, \
         granted_at FROM grants ORDER BY granted_at, seq",
    )
    .await?
    .iter()
    .map(|r| {
        let (gk, ok): (String, String) = (r.get(0), r.get(3));
        Ok(GrantRecord {
            grantee: kinds::principal_from(&gk, r.get(1)).ok_or_else(|| bad(&gk))?,
            privilege: r.get(2),
            object: kinds::object_from(&ok, r.get(4)).ok_or_else(|| bad(&ok))?,
            grantor: r.get(5),
            granted_at: r.get(6),
        })
    })
    .collect::<Result<_, StoreError>>()?;
    snap.group_members = rows(
        tx,
        "SELECT group_id, user_id FROM group_members ORDER BY seq",
    )
    .await?
    .iter()
    .map(|r| GroupMemberRecord {
        group_id: r.get(0),
        user_id: r.get(1),
    })
    .collect();
    snap.role_members = rows(
        tx,
        "SELECT role_id, member_kind, member_id FROM role_members ORDER BY seq",
    )
    .await?
    .iter()
    .map(|r| {
        let kind: String = r.get(1);
        Ok(RoleMemberRecord {
            role_id: r.get(0),
            member: kinds::principal_from(&kind, r.get(2)).ok_or_else(|| bad(&kind))?,
        })
    })
    .collect::<Result<_, StoreError>>()?;
    snap.settings = rows(
        tx,
        "SELECT scope_kind, scope_id, name, value FROM settings ORDER BY seq",
    )
    .await?
    .iter()
    .map(|r| {
        let kind: String = r.get(0);
        Ok(SettingRecord {
            scope: kinds::scope_from(&kind, r.get(1)).ok_or_else(|| bad(&kind))?,
            name: r.get(2),
            value: r.get(3),
        })
    })
    .collect::<Result<_, StoreError>>()?;
    snap.password_history = rows(
        tx,
        "SELECT user_id, verifier, set_at FROM password_history ORDER BY seq",
    )
    .await?
    .iter()
    .map(|r| PasswordHistoryRecord {
        user_id: r.get(0),
        verifier: r.get(1),
        set_at: r.get(2),
    })
    .collect();
    snap.sso_integrations = rows(
        tx,
        "SELECT id, database_id, name, protocol, properties, sealed_secret, created_at, \
         updated_at FROM sso_integrations ORDER BY id",
    )
    .await?
    .iter()
    .map(|r| SsoIntegrationRecord {
        id: r.get(0),
        database_id: r.get(1),
        name: r.get(2),
        protocol: r.get(3),
        properties: r.get(4),
        sealed_secret: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    })
    .collect();
    snap.sso_assignments = rows(
        tx,
        "SELECT target_kind, target_id, integration_id FROM sso_assignments ORDER BY seq",
    )
    .await?
    .iter()
    .map(|r| {
        let kind: String = r.get(0);
        Ok(SsoAssignmentRecord {
            target: kinds::target_from(&kind, r.get(1)).ok_or_else(|| bad(&kind))?,
            integration_id: r.get(2),
        })
    })
    .collect::<Result<_, StoreError>>()?;
    snap.upstreams = rows(
        tx,
        "SELECT database_id, url, sealed_password, updated_at FROM upstreams \
         ORDER BY database_id",
    )
    .await?
    .iter()
    .map(|r| UpstreamRecord {
        database_id: r.get(0),
        url: r.get(1),
        sealed_password: r.get(2),
        updated_at: r.get(3),
    })
    .collect();
    snap.connectivity_pools = rows(
        tx,
        "SELECT id, name, listen, created_at, advertised FROM connectivity_pools ORDER BY id",
    )
    .await?
    .iter()
    .map(|r| ConnectivityPoolRecord {
        id: r.get(0),
        name: r.get(1),
        listen: r.get(2),
        created_at: r.get(3),
        advertised: r.get(4),
    })
    .collect();
    Ok(snap)
}
