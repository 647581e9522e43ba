//! Turns admin statements into catalog changes: privilege checks, validation, and the list of
//! [`Change`]s to commit. Pure functions of the current catalog state.

mod databases;
mod grants;
mod groups;
mod settings;
pub mod sso;
mod users;

use portcullis_store::{
    Change, DatabaseRecord, GroupRecord, ObjectRef, PrincipalRef, RoleRecord, UserRecord,
};

use crate::error::CatalogError;
use crate::model::CatalogState;
use crate::names::QualifiedName;
use crate::privileges::{holds, Privilege};
use crate::sessions::Session;
use crate::sql::Statement;

pub use databases::bootstrap_changes;
pub use users::policy_for;

/// Who runs a statement, and the settings that shape its changes.
pub struct Actor<'a> {
    pub session: &'a Session,
    pub now: i64,
    pub scram_iterations: u32,
    pub sealer: &'a crate::sealing::Sealer,
}

impl Actor<'_> {
    fn principals(&self, state: &CatalogState) -> Vec<PrincipalRef> {
        crate::privileges::session_principals(state, self.session)
    }

    /// Fails with 42501 unless the actor holds `need` on `object`.
    fn require(
        &self,
        state: &CatalogState,
        need: Privilege,
        object: ObjectRef,
        describe: impl FnOnce() -> String,
    ) -> Result<(), CatalogError> {
        if holds(state, &self.principals(state), need, object) {
            Ok(())
        } else {
            Err(CatalogError::denied(format!(
                "{need} on {} is required",
                describe()
            )))
        }
    }

    fn current_database(&self) -> &str {
        &self.session.database
    }

    /// Fails with 42501 unless the actor holds every privilege `target` carries (see
    /// [`crate::privileges::uncovered_privilege`]); `doing` says what was attempted.
    fn require_dominates(
        &self,
        state: &CatalogState,
        target: PrincipalRef,
        doing: impl FnOnce() -> String,
    ) -> Result<(), CatalogError> {
        match crate::privileges::uncovered_privilege(state, &self.principals(state), target) {
            None => Ok(()),
            Some((p, object)) => Err(CatalogError::denied(format!(
                "{}: it holds {p} on {}, which you do not",
                doing(),
                crate::privileges::object_name(state, object)
            ))),
        }
    }
}

/// The changes a catalog-changing statement makes, or why it may not.
pub fn plan(
    actor: &Actor,
    state: &CatalogState,
    stmt: &Statement,
) -> Result<Vec<Change>, CatalogError> {
    match stmt {
        Statement::CreateDatabase {
            name,
            if_not_exists,
            upstream,
        } => {
            let mut changes = databases::create(actor, state, name, *if_not_exists)?;
            if let (Some(url), Some(id)) = (upstream, changes.first().and_then(Change::put_id)) {
                changes.push(databases::upstream_binding(actor, state, id, url)?);
            }
            Ok(changes)
        }
        Statement::SetUpstream { database, url } => {
            databases::set_upstream(actor, state, database, url.as_deref())
        }
        Statement::DropDatabase { names, if_exists } => {
            databases::drop(actor, state, names, *if_exists)
        }
        Statement::CreateUser {
            name,
            if_not_exists,
            attributes,
        } => users::create(actor, state, name, *if_not_exists, attributes),
        Statement::AlterUser { name, action } => users::alter(actor, state, name, action),
        Statement::DropUser { names, if_exists } => users::drop(actor, state, names, *if_exists),
        Statement::CreateGroup {
            name,
            if_not_exists,
        } => groups::create(actor, state, name, *if_not_exists),
        Statement::DropGroup { names, if_exists } => groups::drop(actor, state, names, *if_exists),
        Statement::AlterGroupMembers { group, add, users } => {
            groups::members(actor, state, group, *add, users)
        }
        Statement::SetSecuritySetting {
            scope,
            setting,
            value,
        } => settings::set(actor, state, scope, *setting, *value),
        Statement::Grant {
            privileges,
            target,
            grantee,
        } => grants::privileges(actor, state, privileges, target, grantee, true),
        Statement::Revoke {
            privileges,
            target,
            grantee,
        } => grants::privileges(actor, state, privileges, target, grantee, false),
        Statement::GrantRole { role, grantee } => {
            grants::role_membership(actor, state, role, grantee, true)
        }
        Statement::RevokeRole { role, grantee } => {
            grants::role_membership(actor, state, role, grantee, false)
        }
        Statement::CreateSsoIntegration {
            name,
            if_not_exists,
            protocol,
            properties,
        } => sso::create(actor, state, name, *if_not_exists, protocol, properties),
        Statement::AlterSsoIntegration { name, properties } => {
            sso::alter(actor, state, name, properties)
        }
        Statement::DropSsoIntegration { names, if_exists } => {
            sso::drop(actor, state, names, *if_exists)
        }
        Statement::AssignSsoIntegration { target, name } => sso::assign(actor, state, target, name),
        Statement::RemoveSsoIntegration { target } => sso::remove(actor, state, target),
        Statement::DatabaseSsoProperties {
            database,
            replace,
            protocol,
            properties,
        } => sso::database_properties(actor, state, database, *replace, protocol, properties),
        Statement::CreateConnectivityPool {
            name,
            if_not_exists,
            listen,
            advertised,
        } => sso::create_pool(
            actor,
            state,
            name,
            *if_not_exists,
            listen,
            advertised.as_deref(),
        ),
        Statement::DropConnectivityPool { names, if_exists } => {
            sso::drop_pools(actor, state, names, *if_exists)
        }
        _ => Ok(Vec::new()),
    }
}

fn database<'a>(state: &'a CatalogState, name: &str) -> Result<&'a DatabaseRecord, CatalogError> {
    state
        .database(name)
        .ok_or_else(|| CatalogError::undefined("database", name))
}

fn user<'a>(
    state: &'a CatalogState,
    name: &QualifiedName,
    current: &str,
) -> Result<&'a UserRecord, CatalogError> {
    let fq = name.qualified(current);
    state
        .database(&fq.database)
        .and_then(|d| state.user(d.id, &fq.user))
        .ok_or_else(|| CatalogError::undefined("user", &fq.to_string()))
}

fn group<'a>(
    state: &'a CatalogState,
    name: &QualifiedName,
    current: &str,
) -> Result<&'a GroupRecord, CatalogError> {
    let fq = name.qualified(current);
    state
        .database(&fq.database)
        .and_then(|d| state.group(d.id, &fq.user))
        .ok_or_else(|| CatalogError::undefined("group", &fq.to_string()))
}

fn role<'a>(
    state: &'a CatalogState,
    name: &QualifiedName,
    current: &str,
) -> Result<&'a RoleRecord, CatalogError> {
    let fq = name.qualified(current);
    state
        .database(&fq.database)
        .and_then(|d| state.role(d.id, &fq.user))
        .ok_or_else(|| CatalogError::undefined("role", &fq.to_string()))
}

/// Names are at most 128 characters and never empty.
fn check_name(kind: &str, name: &str) -> Result<(), CatalogError> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(CatalogError::invalid(format!(
            "a {kind} name must be 1 to 128 characters long"
        )));
    }
    Ok(())
}
