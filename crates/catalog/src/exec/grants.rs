//! GRANT / REVOKE of privileges and of built-in roles.

use portcullis_store::*;

use super::{database, group, role, user, Actor};
use crate::error::{sqlstate, CatalogError};
use crate::model::{roles, CatalogState, SYSTEM_DATABASE};
use crate::names::QualifiedName;
use crate::privileges::{holds_to_grant, Action, Privilege};
use crate::sql::{GrantTarget, Grantee};

/// A grantee resolved to its principal, its display name and its database (None for users,
/// who may hold privileges anywhere).
fn resolve_grantee(
    actor: &Actor,
    state: &CatalogState,
    grantee: &Grantee,
) -> Result<(PrincipalRef, String, Option<i64>), CatalogError> {
    let current = actor.current_database();
    Ok(match grantee {
        Grantee::User(n) => {
            let u = user(state, n, current)?;
            (PrincipalRef::User(u.id), state.user_fqun(u), None)
        }
        Grantee::Group(n) => {
            let g = group(state, n, current)?;
            (
                PrincipalRef::Group(g.id),
                format!("{}@{}", g.name, state.database_name(g.database_id)),
                Some(g.database_id),
            )
        }
        Grantee::Role(n) => {
            let r = role(state, n, current)?;
            (
                PrincipalRef::Role(r.id),
                format!("{}@{}", r.name, state.database_name(r.database_id)),
                Some(r.database_id),
            )
        }
    })
}

fn resolve_target(
    actor: &Actor,
    state: &CatalogState,
    target: &GrantTarget,
) -> Result<(ObjectRef, String, Option<i64>), CatalogError> {
    let current = actor.current_database();
    Ok(match target {
        GrantTarget::System => (
            ObjectRef::System,
            "the system".into(),
            state.database(SYSTEM_DATABASE).map(|d| d.id),
        ),
        GrantTarget::Database(n) => {
            let d = database(state, n)?;
            (
                ObjectRef::Database(d.id),
                format!("database \"{n}\""),
                Some(d.id),
            )
        }
        GrantTarget::User(n) => {
            let u = user(state, n, current)?;
            (
                ObjectRef::User(u.id),
                format!("user \"{}\"", state.user_fqun(u)),
                Some(u.database_id),
            )
        }
        GrantTarget::Group(n) => {
            let g = group(state, n, current)?;
            (
                ObjectRef::Group(g.id),
                format!(
                    "group \"{}@{}\"",
                    g.name,
                    state.database_name(g.database_id)
                ),
                Some(g.database_id),
            )
        }
    })
}

pub fn privileges(
    actor: &Actor,
    state: &CatalogState,
    privileges: &[Privilege],
    target: &GrantTarget,
    grantee: &Grantee,
    is_grant: bool,
) -> Result<Vec<Change>, CatalogError> {
    let (object, object_name, object_db) = resolve_target(actor, state, target)?;
    let (principal, grantee_name, grantee_db) = resolve_grantee(actor, state, grantee)?;
    actor.require(state, Privilege::new(Action::Sysauth), object, || {
        object_name.clone()
    })?;
    // Groups may hold privileges on other databases (seed 003's cross-database SSO: "GRANT USE
    // ON DATABASE target_db TO GROUP sso_users"); users and roles only in their own.
    let cross_database_ok = matches!(principal, PrincipalRef::Group(_));
    if let (Some(gdb), Some(odb)) = (grantee_db, object_db) {
        if gdb != odb && !cross_database_ok {
            return Err(CatalogError::invalid(format!(
                "{grantee_name} belongs to database \"{}\" and cannot hold privileges on {object_name}",
                state.database_name(gdb)
            )));
        }
    }
    let mut changes = Vec::new();
    let principals = actor.principals(state);
    for p in privileges {
        if !p.valid_on(&object) {
            return Err(CatalogError::invalid(format!(
                "privilege {p} cannot be granted on {object_name}"
            )));
        }
        // Granting or revoking a privilege needs holding it (or ALL) there, besides SYSAUTH:
        // an authorization administrator neither hands on nor takes away more than they hold.
        if !holds_to_grant(state, &principals, *p, object) {
            let verb = if is_grant { "granting" } else { "revoking" };
            return Err(CatalogError::denied(format!(
                "{verb} {p} on {object_name} needs holding {p} (or ALL) there, besides SYSAUTH"
            )));
        }
        let text = p.to_string();
        let exists = state
            .snap
            .grants
            .iter()
            .any(|g| g.grantee == principal && g.object == object && g.privilege == text);
        if is_grant {
            if !exists {
                changes.push(Change::AddGrant(GrantRecord {
                    grantee: principal,
                    privilege: text,
                    object,
                    grantor: actor.session.user.clone(),
                    granted_at: actor.now,
                }));
            }
        } else {
            if !exists {
                return Err(CatalogError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!("{grantee_name} does not hold {p} on {object_name}"),
                ));
            }
            changes.push(Change::RemoveGrant {
                grantee: principal,
                privilege: text,
                object,
            });
        }
    }
    Ok(changes)
}

pub fn role_membership(
    actor: &Actor,
    state: &CatalogState,
    name: &QualifiedName,
    grantee: &Grantee,
    is_grant: bool,
) -> Result<Vec<Change>, CatalogError> {
    let r = role(state, name, actor.current_database())?;
    let role_name = format!("{}@{}", r.name, state.database_name(r.database_id));
    let (principal, grantee_name, grantee_db) = resolve_grantee(actor, state, grantee)?;
    if matches!(principal, PrincipalRef::Role(_)) {
        return Err(CatalogError::invalid("roles cannot hold roles"));
    }
    if r.name == roles::PUBLIC_ROLE {
        return Err(CatalogError::invalid(format!(
            "every session in its database already holds {role_name}"
        )));
    }
    let in_system = state.database_name(r.database_id) == SYSTEM_DATABASE;
    let scope = if in_system {
        ObjectRef::System
    } else {
        ObjectRef::Database(r.database_id)
    };
    actor.require(state, Privilege::new(Action::Sysauth), scope, || {
        format!("the scope of role {role_name}")
    })?;
    // A role carries privileges: only someone who holds each of them (or ALL there) may hand
    // the role out or take it away (administrator roles carry ALL, so they need ALL).
    let principals = actor.principals(state);
    for carried in state
        .snap
        .grants
        .iter()
        .filter(|g| g.grantee == PrincipalRef::Role(r.id))
    {
        let Some(p) = Privilege::parse(&carried.privilege) else {
            continue;
        };
        if !holds_to_grant(state, &principals, p, carried.object) {
            return Err(CatalogError::denied(format!(
                "{role_name} carries {p}, which you do not hold there; granting or revoking it \
                 needs holding every privilege it carries (or ALL)"
            )));
        }
    }
    if let Some(gdb) = grantee_db {
        if gdb != r.database_id {
            return Err(CatalogError::invalid(format!(
                "{grantee_name} and {role_name} are in different databases"
            )));
        }
    }
    let record = RoleMemberRecord {
        role_id: r.id,
        member: principal,
    };
    let exists = state.snap.role_members.contains(&record);
    match (is_grant, exists) {
        (true, true) => Ok(Vec::new()),
        (true, false) => Ok(vec![Change::AddRoleMember(record)]),
        (false, true) => Ok(vec![Change::RemoveRoleMember(record)]),
        (false, false) => Err(CatalogError::new(
            sqlstate::UNDEFINED_OBJECT,
            format!("{grantee_name} does not hold {role_name}"),
        )),
    }
}
