//! CREATE DATABASE, DROP DATABASE, and the first-start bootstrap of the `system` database.

use portcullis_store::*;

use super::{check_name, database, Actor};
use crate::credential::ScramVerifier;
use crate::error::CatalogError;
use crate::model::{roles, user_state, CatalogState, SYSTEM_DATABASE};
use crate::privileges::{Action, ObjectKind, Privilege};

fn grant(
    grantee: PrincipalRef,
    privilege: &str,
    object: ObjectRef,
    grantor: &str,
    now: i64,
) -> Change {
    Change::AddGrant(GrantRecord {
        grantee,
        privilege: privilege.into(),
        object,
        grantor: grantor.into(),
        granted_at: now,
    })
}

/// A database with its built-in roles: `database_administrator` (ALL on it) and `public_role`.
fn database_with_roles(id: i64, name: &str, grantor: &str, now: i64) -> Vec<Change> {
    vec![
        Change::PutDatabase(DatabaseRecord {
            id,
            name: name.into(),
            created_at: now,
        }),
        Change::PutRole(RoleRecord {
            id: id + 1,
            database_id: id,
            name: roles::DATABASE_ADMINISTRATOR.into(),
            description: format!("All privileges on database {name}"),
        }),
        grant(
            PrincipalRef::Role(id + 1),
            "ALL",
            ObjectRef::Database(id),
            grantor,
            now,
        ),
        Change::PutRole(RoleRecord {
            id: id + 2,
            database_id: id,
            name: roles::PUBLIC_ROLE.into(),
            description: format!("Held by every session in database {name}"),
        }),
        Change::PutRole(RoleRecord {
            id: id + 3,
            database_id: id,
            name: roles::ANALYST.into(),
            description: format!("May use database {name} and view its catalog"),
        }),
        grant(
            PrincipalRef::Role(id + 3),
            "USE",
            ObjectRef::Database(id),
            grantor,
            now,
        ),
        grant(
            PrincipalRef::Role(id + 3),
            "VIEW",
            ObjectRef::Database(id),
            grantor,
            now,
        ),
    ]
}

/// The catalog of a first start: the `system` database, its roles, and `admin@system`.
pub fn bootstrap_changes(admin_password: &str, iterations: u32, now: i64) -> Vec<Change> {
    let mut changes = database_with_roles(1, SYSTEM_DATABASE, "system", now);
    changes.extend([
        Change::PutRole(RoleRecord {
            id: 5,
            database_id: 1,
            name: roles::SYSTEM_ADMINISTRATOR.into(),
            description: "All privileges on the system and every database".into(),
        }),
        grant(PrincipalRef::Role(5), "ALL", ObjectRef::System, "system", now),
        Change::PutRole(RoleRecord {
            id: 6,
            database_id: 1,
            name: roles::SECURITY_ADMINISTRATOR.into(),
            description: "Administers users, groups, privileges, password settings and SSO everywhere".into(),
        }),
        grant(PrincipalRef::Role(6), "SYSAUTH", ObjectRef::System, "system", now),
        grant(PrincipalRef::Role(6), "USE", ObjectRef::Database(1), "system", now),
        Change::PutUser(UserRecord {
            id: 7,
            database_id: 1,
            name: crate::model::BUILTIN_ADMIN.into(),
            first_name: None,
            last_name: None,
            email: None,
            verifier: ScramVerifier::derive(admin_password, iterations).encode(),
            password_set_at: now,
            state: user_state::ACTIVE.into(),
            failed_attempts: 0,
            created_at: now,
        }),
        Change::AddRoleMember(RoleMemberRecord { role_id: 5, member: PrincipalRef::User(7) }),
    ]);
    changes
}

pub fn create(
    actor: &Actor,
    state: &CatalogState,
    name: &str,
    if_not_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    actor.require(
        state,
        Privilege::on_kind(Action::Create, ObjectKind::Database),
        ObjectRef::System,
        || "the system".into(),
    )?;
    check_name("database", name)?;
    if state.database(name).is_some() {
        return if if_not_exists {
            Ok(Vec::new())
        } else {
            Err(CatalogError::duplicate("database", name))
        };
    }
    let id = state.next_id();
    let grantor = actor.session.user.as_str();
    let mut changes = database_with_roles(id, name, grantor, actor.now);
    // Creators get every privilege on what they create. A creator signed in with SSO has no
    // catalog user to hold it (they act through their groups, whose privileges let them create
    // databases at all): nothing is granted to a user that does not exist.
    if actor.session.sso.is_none() && state.user_by_id(actor.session.user_id).is_some() {
        changes.push(grant(
            PrincipalRef::User(actor.session.user_id),
            "ALL",
            ObjectRef::Database(id),
            grantor,
            actor.now,
        ));
    }
    Ok(changes)
}

pub fn drop(
    actor: &Actor,
    state: &CatalogState,
    names: &[String],
    if_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    let mut changes = Vec::new();
    for name in names {
        if name == SYSTEM_DATABASE {
            return Err(CatalogError::invalid(
                "the system database cannot be dropped",
            ));
        }
        let db = match database(state, name) {
            Ok(db) => db,
            Err(_) if if_exists => continue,
            Err(e) => return Err(e),
        };
        actor.require(
            state,
            Privilege::new(Action::Drop),
            ObjectRef::Database(db.id),
            || format!("database \"{name}\""),
        )?;
        changes.push(Change::DeleteDatabase(db.id));
    }
    Ok(changes)
}

/// Binding a database to an upstream (or unbinding it) is the system's administrators' work:
/// the URL makes the server connect somewhere and holds a credential to a whole database.
fn require_system_alter(actor: &Actor, state: &CatalogState) -> Result<(), CatalogError> {
    actor.require(
        state,
        Privilege::new(Action::Alter),
        ObjectRef::System,
        || "the system (binding a database to an upstream)".into(),
    )
}

/// The change that binds database `id` to `url` (its password sealed, the URL stored without).
pub fn upstream_binding(
    actor: &Actor,
    state: &CatalogState,
    id: i64,
    url: &str,
) -> Result<Change, CatalogError> {
    require_system_alter(actor, state)?;
    let url = crate::upstream::UpstreamUrl::parse(url)?;
    Ok(Change::PutUpstream(UpstreamRecord {
        database_id: id,
        url: url.display(),
        sealed_password: actor
            .sealer
            .seal(&crate::upstream::seal_context(id), &url.password)?,
        updated_at: actor.now,
    }))
}

/// `ALTER DATABASE d SET UPSTREAM 'url'` / `REMOVE UPSTREAM`.
pub fn set_upstream(
    actor: &Actor,
    state: &CatalogState,
    name: &str,
    url: Option<&str>,
) -> Result<Vec<Change>, CatalogError> {
    let db = database(state, name)?;
    if db.name == SYSTEM_DATABASE {
        return Err(CatalogError::invalid(
            "the system database holds the catalog; it cannot be bound to an upstream",
        ));
    }
    match url {
        Some(url) => Ok(vec![upstream_binding(actor, state, db.id, url)?]),
        None => {
            require_system_alter(actor, state)?;
            if !state.snap.upstreams.iter().any(|u| u.database_id == db.id) {
                return Err(CatalogError::new(
                    crate::error::sqlstate::UNDEFINED_OBJECT,
                    format!("database \"{name}\" has no upstream"),
                ));
            }
            Ok(vec![Change::RemoveUpstream(db.id)])
        }
    }
}
