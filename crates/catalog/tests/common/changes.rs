//! Catalog changes for the tests that check one meaning of a change: record builders, and
//! random steps that are valid against the catalog as it stands (shared by the model/store
//! property test and the query copy's).
#![allow(dead_code)]

use portcullis_store::*;

pub fn db(id: i64, name: &str) -> Change {
    Change::PutDatabase(DatabaseRecord {
        id,
        name: name.into(),
        created_at: 1,
    })
}

pub fn user(id: i64, database_id: i64, name: &str) -> Change {
    Change::PutUser(UserRecord {
        id,
        database_id,
        name: name.into(),
        first_name: None,
        last_name: Some("L".into()),
        email: None,
        verifier: format!("v-{id}"),
        password_set_at: 5,
        state: "ACTIVE".into(),
        failed_attempts: 0,
        created_at: 5,
    })
}

pub fn group(id: i64, database_id: i64, name: &str) -> Change {
    Change::PutGroup(GroupRecord {
        id,
        database_id,
        name: name.into(),
        created_at: 2,
    })
}

pub fn role(id: i64, database_id: i64, name: &str) -> Change {
    Change::PutRole(RoleRecord {
        id,
        database_id,
        name: name.into(),
        description: "d".into(),
    })
}

pub fn grant(grantee: PrincipalRef, privilege: &str, object: ObjectRef) -> GrantRecord {
    GrantRecord {
        grantee,
        privilege: privilege.into(),
        object,
        grantor: "admin@system".into(),
        granted_at: 3,
    }
}

pub fn integration(id: i64, database_id: i64, name: &str) -> Change {
    Change::PutSsoIntegration(SsoIntegrationRecord {
        id,
        database_id,
        name: name.into(),
        protocol: "oidc".into(),
        properties: format!("{{\"issuer\":\"https://idp/{id}\"}}"),
        sealed_secret: Some(vec![1, 2, 3]),
        created_at: 4,
        updated_at: 4,
    })
}

pub fn history(user_id: i64, n: i64) -> Change {
    Change::AddPasswordHistory(PasswordHistoryRecord {
        user_id,
        verifier: format!("old-{n}"),
        set_at: n,
    })
}

/// One step of a random script: a kind and two numbers, read against the catalog as it stands
/// (`pick` chooses among what exists), so every generated change is one the catalog could make:
/// references point at existing rows and names are unique.
#[derive(Debug, Clone)]
pub struct Op(pub u8, pub u8, pub u8);

/// The `n`th (modulo) of `ids`, if there are any.
pub fn pick(ids: &[i64], n: u8) -> Option<i64> {
    (!ids.is_empty()).then(|| ids[usize::from(n) % ids.len()])
}

pub fn to_change(op: &Op, s: &Snapshot, next: &mut i64) -> Option<Change> {
    let Op(kind, a, b) = *op;
    let dbs: Vec<i64> = s.databases.iter().map(|d| d.id).collect();
    let users: Vec<i64> = s.users.iter().map(|u| u.id).collect();
    let groups: Vec<i64> = s.groups.iter().map(|g| g.id).collect();
    let roles: Vec<i64> = s.roles.iter().map(|r| r.id).collect();
    let integrations: Vec<i64> = s.sso_integrations.iter().map(|i| i.id).collect();
    let pools: Vec<i64> = s.connectivity_pools.iter().map(|p| p.id).collect();
    let mut fresh = || {
        *next += 1;
        *next
    };
    let principal = |n: u8| match n % 3 {
        0 => pick(&users, n / 3).map(PrincipalRef::User),
        1 => pick(&groups, n / 3).map(PrincipalRef::Group),
        _ => pick(&roles, n / 3).map(PrincipalRef::Role),
    };
    Some(match kind % 24 {
        0 => {
            let id = fresh();
            db(id, &format!("d{id}"))
        }
        1 => {
            let id = pick(&dbs, a)?;
            db(id, &format!("d{id}x"))
        }
        // Dropping a database takes most of a small catalog with it: now and then.
        2 if b % 8 == 0 => Change::DeleteDatabase(pick(&dbs, a)?),
        2 => {
            let (d, id) = (pick(&dbs, a)?, fresh());
            user(id, d, &format!("u{id}"))
        }
        3 => {
            let (d, id) = (pick(&dbs, a)?, fresh());
            user(id, d, &format!("u{id}"))
        }
        4 => Change::DeleteUser(pick(&users, a)?),
        5 => {
            let (d, id) = (pick(&dbs, a)?, fresh());
            group(id, d, &format!("g{id}"))
        }
        6 => Change::DeleteGroup(pick(&groups, a)?),
        7 => {
            let (d, id) = (pick(&dbs, a)?, fresh());
            role(id, d, &format!("r{id}"))
        }
        8 => {
            let object = match b % 4 {
                0 => ObjectRef::System,
                1 => ObjectRef::Database(pick(&dbs, b / 4)?),
                2 => ObjectRef::User(pick(&users, b / 4)?),
                _ => ObjectRef::Group(pick(&groups, b / 4)?),
            };
            let privilege = ["USE", "ALTER", "VIEW"][usize::from(b) % 3];
            Change::AddGrant(grant(principal(a)?, privilege, object))
        }
        9 => {
            let g = s.grants.get(usize::from(a) % s.grants.len().max(1))?;
            Change::RemoveGrant {
                grantee: g.grantee,
                privilege: g.privilege.clone(),
                object: g.object,
            }
        }
        10 => Change::AddGroupMember(GroupMemberRecord {
            group_id: pick(&groups, a)?,
            user_id: pick(&users, b)?,
        }),
        11 => Change::RemoveGroupMember(
            *s.group_members
                .get(usize::from(a) % s.group_members.len().max(1))?,
        ),
        12 => Change::AddRoleMember(RoleMemberRecord {
            role_id: pick(&roles, a)?,
            member: principal(b)?,
        }),
        13 => Change::RemoveRoleMember(
            *s.role_members
                .get(usize::from(a) % s.role_members.len().max(1))?,
        ),
        14 => {
            let scope = match a % 3 {
                0 => ScopeRef::System,
                1 => ScopeRef::Database(pick(&dbs, a / 3)?),
                _ => ScopeRef::Group(pick(&groups, a / 3)?),
            };
            Change::PutSetting(SettingRecord {
                scope,
                name: ["password_minimum_length", "session_idle_timeout"][usize::from(b) % 2]
                    .into(),
                value: i64::from(b),
            })
        }
        15 => {
            let r = s.settings.get(usize::from(a) % s.settings.len().max(1))?;
            Change::RemoveSetting {
                scope: r.scope,
                name: r.name.clone(),
            }
        }
        16 => history(pick(&users, a)?, i64::from(b)),
        17 => Change::TrimPasswordHistory {
            user_id: pick(&users, a)?,
            keep: usize::from(b % 4),
        },
        18 => {
            let (d, id) = (pick(&dbs, a)?, fresh());
            integration(id, d, &format!("i{id}"))
        }
        19 => Change::DeleteSsoIntegration(pick(&integrations, a)?),
        20 => {
            let target = if b % 2 == 0 {
                AssignmentTarget::Database(pick(&dbs, b / 2)?)
            } else {
                AssignmentTarget::ConnectivityPool(pick(&pools, b / 2)?)
            };
            Change::AssignSso(SsoAssignmentRecord {
                target,
                integration_id: pick(&integrations, a)?,
            })
        }
        21 => Change::UnassignSso(
            s.sso_assignments
                .get(usize::from(a) % s.sso_assignments.len().max(1))?
                .target,
        ),
        22 => {
            let id = fresh();
            Change::PutConnectivityPool(ConnectivityPoolRecord {
                id,
                name: format!("p{id}"),
                listen: format!("127.0.0.1:{}", 10_000 + id),
                advertised: (a % 2 == 0).then(|| format!("p{id}.example")),
                created_at: 7,
            })
        }
        _ => match a % 3 {
            0 => Change::DeleteConnectivityPool(pick(&pools, b)?),
            1 => Change::PutUpstream(UpstreamRecord {
                database_id: pick(&dbs, b)?,
                url: format!("postgresql://a@127.0.0.1:5432/x{b}"),
                sealed_password: vec![b, 1, 2],
                updated_at: i64::from(b),
            }),
            _ => Change::RemoveUpstream(pick(&dbs, b)?),
        },
    })
}

/// A small catalog to start from, so the random steps have things to refer to.
pub fn base() -> Vec<Change> {
    let mut base: Vec<Change> = (1..=3).map(|d| db(d, &format!("d{d}"))).collect();
    base.extend((10..16).map(|u| user(u, 1 + u % 3, &format!("u{u}"))));
    base.extend((20..24).map(|g| group(g, 1 + g % 3, &format!("g{g}"))));
    base.extend((30..32).map(|r| role(r, 1 + r % 3, &format!("r{r}"))));
    base.push(integration(40, 1, "i40"));
    base
}
