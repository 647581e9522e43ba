//! SSO integration statements: CREATE / ALTER / DROP SSO INTEGRATION, the database forms
//! (`ALTER DATABASE d {SET | ALTER | REMOVE} SSO INTEGRATION …`), connectivity pools and their
//! assignments.
//!
//! An integration belongs to the database it was created in (its `database_id`); a database
//! uses at most one integration (the assigned one): one of its own, or one of `system`'s (a
//! system-wide integration, assigned by someone who administers SSO on both); a connectivity
//! pool may use any. Names in an integration's mappings resolve in its own database wherever it
//! is assigned (a system-wide integration confers `g@system` unless a mapping names another).

use std::net::SocketAddr;

use portcullis_store::*;

use super::{check_name, database, Actor};
use crate::error::CatalogError;
use crate::model::{CatalogState, SYSTEM_DATABASE};
use crate::privileges::{holds, Action, Privilege};
use crate::sql::SsoTarget;
use crate::sso::{Property, SecretChange, SsoProperties, SsoProtocol};

/// The sealing context of an integration's secret — its client secret, or an LDAP
/// integration's bind password (binds the sealed bytes to the record and to their meaning).
pub fn secret_context(integration_id: i64, protocol: SsoProtocol) -> String {
    format!(
        "sso_integration:{integration_id}:{}",
        protocol.secret_property()
    )
}

fn protocol_of(word: &str) -> Result<SsoProtocol, CatalogError> {
    SsoProtocol::parse(word).ok_or_else(|| {
        CatalogError::invalid(format!(
            "unknown SSO protocol \"{word}\": the protocols are OIDC, LDAP and SAML"
        ))
    })
}

/// Database administrators (ALL on the database) and security administrators (SYSAUTH, which
/// the Security Administrator role holds on the system) may manage a database's SSO.
pub fn may_administer_sso(state: &CatalogState, actor: &Actor, database_id: i64) -> bool {
    crate::privileges::administers(state, &actor.principals(state), database_id)
}

fn require_sso_admin(
    actor: &Actor,
    state: &CatalogState,
    database_id: i64,
) -> Result<(), CatalogError> {
    if may_administer_sso(state, actor, database_id) {
        Ok(())
    } else {
        Err(CatalogError::denied(format!(
            "only a database administrator of \"{}\" (or a security administrator) may manage its \
             SSO integrations",
            state.database_name(database_id)
        )))
    }
}

fn require_system_admin(actor: &Actor, state: &CatalogState) -> Result<(), CatalogError> {
    actor.require(
        state,
        Privilege::new(Action::All),
        ObjectRef::System,
        || "the system (connectivity pools are system objects)".into(),
    )
}

/// An integration named in a statement: `name@database`, or `name` in the current database
/// (integration names are unique per database, so one tenant cannot squat another's).
fn integration<'a>(
    actor: &Actor,
    state: &'a CatalogState,
    name: &str,
) -> Result<&'a SsoIntegrationRecord, CatalogError> {
    let qualified = crate::names::QualifiedName::parse(name)
        .ok_or_else(|| CatalogError::undefined("SSO integration", name))?;
    let db_name = qualified.database_or(actor.current_database());
    state
        .database(db_name)
        .and_then(|d| state.integration(d.id, &qualified.name))
        .ok_or_else(|| {
            CatalogError::undefined("SSO integration", &format!("{}@{db_name}", qualified.name))
        })
}

/// The seed's rule: the caller needs ALTER on every existing catalog group or role that the
/// mappings (or the blocked lists) name. Names that match nothing are allowed (the mapping
/// simply has no effect until the group exists; EXPLAIN AUTHENTICATION shows it).
fn check_mapped_objects(
    actor: &Actor,
    state: &CatalogState,
    database_id: i64,
    props: &SsoProperties,
) -> Result<(), CatalogError> {
    let database = state.database_name(database_id).to_owned();
    let principals = actor.principals(state);
    let groups = props
        .groups_claim_mappings
        .values()
        .chain(props.blocked_groups.iter())
        .chain(std::iter::once(&props.default_group));
    let confers = |target: PrincipalRef| -> Result<(), CatalogError> {
        actor.require_dominates(state, target, || {
            "mapping SSO users to it needs holding everything it holds".into()
        })
    };
    for name in props
        .groups_claim_mappings
        .values()
        .chain(std::iter::once(&props.default_group))
    {
        if let Some(g) = resolve_group(state, name, &database) {
            confers(PrincipalRef::Group(g.id)).map_err(|e| {
                CatalogError::denied(format!(
                    "group \"{}@{}\": {}",
                    g.name,
                    state.database_name(g.database_id),
                    e.message.trim_start_matches("permission denied: ")
                ))
            })?;
        }
    }
    for name in props.roles_claim_mappings.values() {
        if let Some(r) = resolve_role(state, name, &database) {
            confers(PrincipalRef::Role(r.id)).map_err(|e| {
                CatalogError::denied(format!(
                    "role \"{}@{}\": {}",
                    r.name,
                    state.database_name(r.database_id),
                    e.message.trim_start_matches("permission denied: ")
                ))
            })?;
        }
    }
    for name in groups {
        if let Some(g) = resolve_group(state, name, &database) {
            if !holds(
                state,
                &principals,
                Privilege::new(Action::Alter),
                ObjectRef::Group(g.id),
            ) {
                return Err(CatalogError::denied(format!(
                    "ALTER on group \"{}@{}\" is required to map SSO users to it",
                    g.name,
                    state.database_name(g.database_id)
                )));
            }
        }
    }
    for name in props
        .roles_claim_mappings
        .values()
        .chain(props.blocked_roles.iter())
    {
        if let Some(r) = resolve_role(state, name, &database) {
            let on = ObjectRef::Database(r.database_id);
            if !holds(state, &principals, Privilege::new(Action::Alter), on) {
                return Err(CatalogError::denied(format!(
                    "ALTER on database \"{}\" is required to map SSO users to its role \"{}\"",
                    state.database_name(r.database_id),
                    r.name
                )));
            }
        }
    }
    Ok(())
}

/// The built-in roles that carry administrator privileges: a token never yields one unless an
/// administrator's explicit mapping names it.
pub fn is_administrator_role(name: &str) -> bool {
    use crate::model::roles::*;
    matches!(
        name,
        SYSTEM_ADMINISTRATOR | SECURITY_ADMINISTRATOR | DATABASE_ADMINISTRATOR
    )
}

/// The writer's principals as stored in [`SsoProperties::mapping_authority`].
fn authority_of(principals: &[PrincipalRef]) -> Vec<String> {
    principals
        .iter()
        .map(|p| match p {
            PrincipalRef::User(id) => format!("user:{id}"),
            PrincipalRef::Group(id) => format!("group:{id}"),
            PrincipalRef::Role(id) => format!("role:{id}"),
        })
        .collect()
}

fn authority_principals(props: &SsoProperties) -> Vec<PrincipalRef> {
    props
        .mapping_authority
        .iter()
        .filter_map(|text| {
            let (kind, id) = text.split_once(':')?;
            let id: i64 = id.parse().ok()?;
            Some(match kind {
                "user" => PrincipalRef::User(id),
                "group" => PrincipalRef::Group(id),
                "role" => PrincipalRef::Role(id),
                _ => return None,
            })
        })
        .collect()
}

/// Whether an integration may confer `target` at sign-in: whoever last wrote it must still hold
/// every privilege the target carries. An integration written before writers were recorded
/// confers only what carries privileges inside its own database.
fn confers_carried(
    state: &CatalogState,
    integration: &SsoIntegrationRecord,
    props: &SsoProperties,
    target: PrincipalRef,
) -> Result<(), String> {
    let authority = authority_principals(props);
    let uncovered = if authority.is_empty() {
        let within = |object: &ObjectRef| match *object {
            ObjectRef::System => false,
            ObjectRef::Database(id) => id == integration.database_id,
            ObjectRef::User(id) => state
                .user_by_id(id)
                .is_some_and(|u| u.database_id == integration.database_id),
            ObjectRef::Group(id) => state
                .group_by_id(id)
                .is_some_and(|g| g.database_id == integration.database_id),
        };
        let carriers = crate::privileges::carriers(state, target);
        state
            .snap
            .grants
            .iter()
            .filter(|g| carriers.contains(&g.grantee))
            .find(|g| !within(&g.object))
            .and_then(|g| Privilege::parse(&g.privilege).map(|p| (p, g.object)))
    } else {
        crate::privileges::uncovered_privilege(state, &authority, target)
    };
    match uncovered {
        None => Ok(()),
        Some((p, object)) => Err(format!(
            "it holds {p} on {}, which whoever wrote the integration does not hold",
            crate::privileges::object_name(state, object)
        )),
    }
}

/// Whether a live SSO session may keep `target`, conferred at its sign-in by `integration`:
/// the integration is still assigned (to its database or a pool), and whoever wrote it still
/// holds what the target carries (and ALTER on it, for another database's group or role, or an
/// administrator role). Checked after every catalog change.
pub fn still_conferred(
    state: &CatalogState,
    integration: &SsoIntegrationRecord,
    target: PrincipalRef,
) -> bool {
    let assigned = state
        .snap
        .sso_assignments
        .iter()
        .any(|a| a.integration_id == integration.id);
    let Ok(props) = state.sso_properties(integration) else {
        return false;
    };
    if !assigned || confers_carried(state, integration, &props, target).is_err() {
        return false;
    }
    let authority = authority_principals(&props);
    let alter = Privilege::new(Action::Alter);
    match target {
        PrincipalRef::Group(id) => state.group_by_id(id).is_some_and(|g| {
            g.database_id == integration.database_id
                || holds(state, &authority, alter, ObjectRef::Group(g.id))
        }),
        PrincipalRef::Role(id) => state.role_by_id(id).is_some_and(|r| {
            (r.database_id == integration.database_id && !is_administrator_role(&r.name))
                || holds(state, &authority, alter, ObjectRef::Database(r.database_id))
        }),
        PrincipalRef::User(_) => false,
    }
}

/// Where a name to resolve at sign-in came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// The provider's token (no mapping configured): only an unqualified name of the
    /// integration's own database, never a built-in administrator role.
    Token,
    /// An administrator's mapping or default group.
    Configured,
}

/// The catalog group an integration confers for `name`, or why it confers none. A name from
/// the token resolves only inside the integration's own database; a configured name may name
/// another database's group, conferred only while the mapping's writer still holds ALTER on it
/// (checked here, at every sign-in, not only when the mapping was written).
pub fn conferred_group<'a>(
    state: &'a CatalogState,
    integration: &SsoIntegrationRecord,
    props: &SsoProperties,
    name: &str,
    source: NameSource,
) -> Result<&'a GroupRecord, String> {
    let home = state.database_name(integration.database_id).to_owned();
    let group = match source {
        NameSource::Token => {
            if name.contains('@') {
                return Err(format!(
                    "provider group \"{name}\" names another database; a token's names resolve \
                     only in {home} (map it explicitly to use it)"
                ));
            }
            state
                .group(integration.database_id, name)
                .or_else(|| state.group(integration.database_id, &name.to_lowercase()))
        }
        NameSource::Configured => resolve_group(state, name, &home),
    }
    .ok_or_else(|| format!("group \"{name}\" does not exist in {home} (ignored)"))?;
    confers_carried(state, integration, props, PrincipalRef::Group(group.id)).map_err(|why| {
        format!(
            "group \"{}@{}\" is not conferred: {why}",
            group.name,
            state.database_name(group.database_id)
        )
    })?;
    if group.database_id != integration.database_id
        && !holds(
            state,
            &authority_principals(props),
            Privilege::new(Action::Alter),
            ObjectRef::Group(group.id),
        )
    {
        return Err(format!(
            "group \"{}@{}\" is not conferred: whoever wrote the mapping no longer holds ALTER on it",
            group.name,
            state.database_name(group.database_id)
        ));
    }
    Ok(group)
}

/// The catalog role an integration confers for `name`, or why it confers none (the same rules
/// as [`conferred_group`]; a built-in administrator role only through a configured mapping
/// whose writer still holds ALTER on the role's database).
pub fn conferred_role<'a>(
    state: &'a CatalogState,
    integration: &SsoIntegrationRecord,
    props: &SsoProperties,
    name: &str,
    source: NameSource,
) -> Result<&'a RoleRecord, String> {
    let home = state.database_name(integration.database_id).to_owned();
    let role = match source {
        NameSource::Token => {
            if name.contains('@') {
                return Err(format!(
                    "provider role \"{name}\" names another database; a token's names resolve \
                     only in {home} (map it explicitly to use it)"
                ));
            }
            let normal = name.trim().to_lowercase().replace(' ', "_");
            let role = state
                .role(integration.database_id, &normal)
                .ok_or_else(|| format!("role \"{name}\" does not exist in {home} (ignored)"))?;
            if is_administrator_role(&role.name) {
                return Err(format!(
                    "provider role \"{name}\" would be the administrator role {}@{home}; only an \
                     explicit mapping can confer it",
                    role.name
                ));
            }
            role
        }
        NameSource::Configured => resolve_role(state, name, &home)
            .ok_or_else(|| format!("role \"{name}\" does not exist (ignored)"))?,
    };
    confers_carried(state, integration, props, PrincipalRef::Role(role.id)).map_err(|why| {
        format!(
            "role \"{}@{}\" is not conferred: {why}",
            role.name,
            state.database_name(role.database_id)
        )
    })?;
    let needs_authority =
        role.database_id != integration.database_id || is_administrator_role(&role.name);
    if needs_authority
        && !holds(
            state,
            &authority_principals(props),
            Privilege::new(Action::Alter),
            ObjectRef::Database(role.database_id),
        )
    {
        return Err(format!(
            "role \"{}@{}\" is not conferred: whoever wrote the mapping no longer holds ALTER on \
             its database",
            role.name,
            state.database_name(role.database_id)
        ));
    }
    Ok(role)
}

/// A group named in a mapping: `name@database`, or `name` in the integration's database.
pub fn resolve_group<'a>(
    state: &'a CatalogState,
    name: &str,
    database: &str,
) -> Option<&'a GroupRecord> {
    let (group, db) = name.rsplit_once('@').unwrap_or((name, database));
    let d = state.database(db)?;
    state
        .group(d.id, group)
        .or_else(|| state.group(d.id, &group.to_lowercase()))
}

/// A role named in a mapping: `role@database`, the vendor's display form
/// `"<database> <Role Name>"`, or `role` in the integration's database. Role names compare
/// case-insensitively with spaces read as underscores.
pub fn resolve_role<'a>(
    state: &'a CatalogState,
    name: &str,
    database: &str,
) -> Option<&'a RoleRecord> {
    let normal = |s: &str| s.trim().to_lowercase().replace(' ', "_");
    let (role, db) = if let Some((r, d)) = name.rsplit_once('@') {
        (normal(r), d.to_owned())
    } else if let Some((d, r)) = name
        .split_once(' ')
        .filter(|(d, _)| state.database(d).is_some())
    {
        (normal(r), d.to_owned())
    } else {
        (normal(name), database.to_owned())
    };
    let d = state.database(&db)?;
    state.role(d.id, &role)
}

/// Builds the record for new or changed properties, sealing a new secret.
#[allow(clippy::too_many_arguments)]
fn integration_record(
    actor: &Actor,
    state: &CatalogState,
    id: i64,
    database_id: i64,
    name: &str,
    props: SsoProperties,
    secret: SecretChange,
    previous: Option<&SsoIntegrationRecord>,
) -> Result<SsoIntegrationRecord, CatalogError> {
    props.validate()?;
    check_mapped_objects(actor, state, database_id, &props)?;
    let mut props = props;
    props.mapping_authority = authority_of(&actor.principals(state));
    let sealed_secret = match secret {
        SecretChange::Keep => previous.and_then(|p| p.sealed_secret.clone()),
        SecretChange::Clear => None,
        SecretChange::Set(s) => Some(
            actor
                .sealer
                .seal(&secret_context(id, props.protocol()), &s)?,
        ),
    };
    Ok(SsoIntegrationRecord {
        id,
        database_id,
        name: name.to_owned(),
        protocol: props.protocol().as_str().into(),
        properties: props.to_json(),
        sealed_secret,
        created_at: previous.map_or(actor.now, |p| p.created_at),
        updated_at: actor.now,
    })
}

pub fn create(
    actor: &Actor,
    state: &CatalogState,
    name: &str,
    if_not_exists: bool,
    protocol: &str,
    properties: &[Property],
) -> Result<Vec<Change>, CatalogError> {
    let protocol = protocol_of(protocol)?;
    let db = database(state, actor.current_database())?;
    require_sso_admin(actor, state, db.id)?;
    check_name("integration", name)?;
    if name.contains('@') {
        return Err(CatalogError::invalid(
            "an SSO integration name cannot contain @ (name@database names the integration of \
             another database)",
        ));
    }
    if state.integration(db.id, name).is_some() {
        return if if_not_exists {
            Ok(Vec::new())
        } else {
            Err(CatalogError::duplicate("SSO integration", name))
        };
    }
    let mut props = SsoProperties::new(protocol);
    let secret = props.apply(properties)?;
    let id = state.next_id();
    let record = integration_record(actor, state, id, db.id, name, props, secret, None)?;
    Ok(vec![Change::PutSsoIntegration(record)])
}

fn alter_record(
    actor: &Actor,
    state: &CatalogState,
    existing: &SsoIntegrationRecord,
    properties: &[Property],
) -> Result<Vec<Change>, CatalogError> {
    require_sso_admin(actor, state, existing.database_id)?;
    let before = SsoProperties::from_json(&existing.properties)?;
    let mut props = before.clone();
    let secret = props.apply(properties)?;
    // The sealed secret was given for one endpoint: pointing the integration elsewhere
    // without giving it again would hand it to whoever runs the new endpoint.
    if secret == SecretChange::Keep && existing.sealed_secret.is_some() {
        let moved = match (&before.ldap, &props.ldap) {
            (Some(a), Some(b)) => a.url != b.url || a.bind_dn != b.bind_dn,
            _ => before.issuer != props.issuer,
        };
        if moved {
            let (what, secret) = match props.protocol() {
                SsoProtocol::Ldap => ("url or bind_dn", "bind_password"),
                SsoProtocol::Oidc | SsoProtocol::Saml => ("issuer", "client_secret"),
            };
            return Err(CatalogError::invalid(format!(
                "changing {what} needs {secret} again in the same statement (the sealed one \
                 is never sent to a new endpoint); or set {secret} = NULL"
            )));
        }
    }
    let record = integration_record(
        actor,
        state,
        existing.id,
        existing.database_id,
        &existing.name,
        props,
        secret,
        Some(existing),
    )?;
    Ok(vec![Change::PutSsoIntegration(record)])
}

pub fn alter(
    actor: &Actor,
    state: &CatalogState,
    name: &str,
    properties: &[Property],
) -> Result<Vec<Change>, CatalogError> {
    alter_record(actor, state, integration(actor, state, name)?, properties)
}

pub fn drop(
    actor: &Actor,
    state: &CatalogState,
    names: &[String],
    if_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    let mut changes = Vec::new();
    for name in names {
        let existing = match integration(actor, state, name) {
            Ok(i) => i,
            Err(_) if if_exists => continue,
            Err(e) => return Err(e),
        };
        require_sso_admin(actor, state, existing.database_id)?;
        changes.push(Change::DeleteSsoIntegration(existing.id));
    }
    Ok(changes)
}

/// The seed: "The user must be connected to the database." — or, for someone who administers
/// SSO on `system` (a security or system administrator), connected to `system` (issue 14: seed
/// 003's machine-to-machine steps run from a `system` connection).
fn require_connected(
    actor: &Actor,
    state: &CatalogState,
    database: &str,
) -> Result<(), CatalogError> {
    let from_system = actor.current_database() == SYSTEM_DATABASE
        && state
            .database(SYSTEM_DATABASE)
            .is_some_and(|s| may_administer_sso(state, actor, s.id));
    if actor.current_database() == database || from_system {
        Ok(())
    } else {
        Err(CatalogError::denied(format!(
            "connect to database \"{database}\" to change its SSO integration (connected to \
             \"{}\")",
            actor.current_database()
        )))
    }
}

/// Whether the integration `chosen` may be assigned to database `db` by `actor`: its own, or a
/// system-wide one when the actor administers SSO on `system` too (assigning it hands the
/// system's mappings to whoever signs in to `db`).
fn may_use_for(
    actor: &Actor,
    state: &CatalogState,
    chosen: &SsoIntegrationRecord,
    db: &DatabaseRecord,
    name: &str,
) -> Result<(), CatalogError> {
    if chosen.database_id == db.id {
        return Ok(());
    }
    let home = state.database_name(chosen.database_id);
    if home != SYSTEM_DATABASE {
        return Err(CatalogError::invalid(format!(
            "SSO integration \"{name}\" belongs to database \"{home}\"; a database can use only \
             its own integrations or system-wide ones (created in \"system\")"
        )));
    }
    if may_administer_sso(state, actor, chosen.database_id) {
        Ok(())
    } else {
        Err(CatalogError::denied(format!(
            "assigning the system-wide SSO integration \"{}@system\" to \"{}\" needs a security \
             administrator (or administering the system database)",
            chosen.name, db.name
        )))
    }
}

fn pool<'a>(
    state: &'a CatalogState,
    name: &str,
) -> Result<&'a ConnectivityPoolRecord, CatalogError> {
    state
        .pool(name)
        .ok_or_else(|| CatalogError::undefined("connectivity pool", name))
}

pub fn assign(
    actor: &Actor,
    state: &CatalogState,
    target: &SsoTarget,
    name: &str,
) -> Result<Vec<Change>, CatalogError> {
    let chosen = integration(actor, state, name)?;
    let target = match target {
        SsoTarget::Database(d) => {
            let db = database(state, d)?;
            require_connected(actor, state, d)?;
            require_sso_admin(actor, state, db.id)?;
            may_use_for(actor, state, chosen, db, name)?;
            AssignmentTarget::Database(db.id)
        }
        SsoTarget::ConnectivityPool(p) => {
            let p = pool(state, p)?;
            require_system_admin(actor, state)?;
            AssignmentTarget::ConnectivityPool(p.id)
        }
    };
    Ok(vec![Change::AssignSso(SsoAssignmentRecord {
        target,
        integration_id: chosen.id,
    })])
}

pub fn remove(
    actor: &Actor,
    state: &CatalogState,
    target: &SsoTarget,
) -> Result<Vec<Change>, CatalogError> {
    match target {
        SsoTarget::Database(d) => {
            let db = database(state, d)?;
            require_connected(actor, state, d)?;
            require_sso_admin(actor, state, db.id)?;
            let target = AssignmentTarget::Database(db.id);
            let Some(current) = state.assigned_integration(target) else {
                return Err(CatalogError::undefined(
                    "SSO integration of database",
                    &db.name,
                ));
            };
            let mut changes = vec![Change::UnassignSso(target)];
            // The database's own inline integration goes with it; named ones stay.
            if current.name == db.name && current.database_id == db.id {
                changes.push(Change::DeleteSsoIntegration(current.id));
            }
            Ok(changes)
        }
        SsoTarget::ConnectivityPool(p) => {
            let p = pool(state, p)?;
            require_system_admin(actor, state)?;
            Ok(vec![Change::UnassignSso(
                AssignmentTarget::ConnectivityPool(p.id),
            )])
        }
    }
}

/// `ALTER DATABASE d SET SSO INTEGRATION oidc …` (define anew) or `… ALTER SSO INTEGRATION oidc
/// …` (change the one the database uses).
pub fn database_properties(
    actor: &Actor,
    state: &CatalogState,
    database_name: &str,
    replace: bool,
    protocol: &str,
    properties: &[Property],
) -> Result<Vec<Change>, CatalogError> {
    let protocol = protocol_of(protocol)?;
    let db = database(state, database_name)?;
    require_connected(actor, state, database_name)?;
    require_sso_admin(actor, state, db.id)?;
    let target = AssignmentTarget::Database(db.id);
    if !replace {
        let Some(current) = state.assigned_integration(target) else {
            return Err(CatalogError::new(
                crate::error::sqlstate::UNDEFINED_OBJECT,
                format!(
                    "database \"{}\" has no SSO integration to alter; define one with ALTER \
                     DATABASE {} SET SSO INTEGRATION oidc issuer = …, client_id = …, \
                     default_group = …",
                    db.name, db.name
                ),
            ));
        };
        return alter_record(actor, state, current, properties);
    }
    // The database's own integration is named after it.
    let existing = state.integration(db.id, &db.name);
    let id = existing.map_or_else(|| state.next_id(), |i| i.id);
    let mut props = SsoProperties::new(protocol);
    let secret = props.apply(properties)?;
    let record = integration_record(actor, state, id, db.id, &db.name, props, secret, None)?;
    Ok(vec![
        Change::PutSsoIntegration(record),
        Change::AssignSso(SsoAssignmentRecord {
            target,
            integration_id: id,
        }),
    ])
}

pub fn create_pool(
    actor: &Actor,
    state: &CatalogState,
    name: &str,
    if_not_exists: bool,
    listen: &str,
    advertised: Option<&str>,
) -> Result<Vec<Change>, CatalogError> {
    require_system_admin(actor, state)?;
    if let Some(a) = advertised {
        crate::sso::check_authority("ADVERTISED", a)?;
    }
    check_name("connectivity pool", name)?;
    if state.pool(name).is_some() {
        return if if_not_exists {
            Ok(Vec::new())
        } else {
            Err(CatalogError::duplicate("connectivity pool", name))
        };
    }
    let addr: SocketAddr = listen.parse().map_err(|_| {
        CatalogError::invalid(format!(
            "LISTEN \"{listen}\" must be an IP address and port, e.g. '127.0.0.1:4051'"
        ))
    })?;
    if addr.port() == 0 {
        return Err(CatalogError::invalid(format!(
            "LISTEN \"{listen}\" needs a port (clients must know where to connect)"
        )));
    }
    if state
        .snap
        .connectivity_pools
        .iter()
        .any(|p| p.listen.parse::<SocketAddr>().ok() == Some(addr))
    {
        return Err(CatalogError::duplicate(
            "connectivity pool listener",
            listen,
        ));
    }
    Ok(vec![Change::PutConnectivityPool(ConnectivityPoolRecord {
        id: state.next_id(),
        name: name.to_owned(),
        listen: addr.to_string(),
        advertised: advertised.map(str::to_owned),
        created_at: actor.now,
    })])
}

pub fn drop_pools(
    actor: &Actor,
    state: &CatalogState,
    names: &[String],
    if_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    require_system_admin(actor, state)?;
    let mut changes = Vec::new();
    for name in names {
        match pool(state, name) {
            Ok(p) => changes.push(Change::DeleteConnectivityPool(p.id)),
            Err(_) if if_exists => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(changes)
}
