//! What the query copy's tables hold, projected from the model: the catalog tables from a
//! [`CatalogState`] and `sys.sessions` from the live sessions. This is the copy's only meaning
//! of the catalog; [`super::copy`] writes into SQLite just the rows that differ from what it
//! holds.

use std::collections::HashMap;

use portcullis_store::{
    AssignmentTarget, GrantRecord, GroupMemberRecord, GroupRecord, ObjectRef, PrincipalRef,
    RoleMemberRecord, ScopeRef, UserRecord,
};

use super::copy::{Cell, Row};
use super::timestamp;
use crate::model::CatalogState;
use crate::sessions::{Session, SessionRow};

/// The catalog tables of the copy (for the test that compares them with [`catalog`]).
#[cfg(test)]
pub const CATALOG_TABLES: [&str; 10] = [
    "databases",
    "users",
    "groups",
    "group_members",
    "roles",
    "role_members",
    "privileges",
    "password_settings",
    "oidc_integrations",
    "connectivity_pools",
];

macro_rules! row {
    ($($cell:expr),* $(,)?) => { vec![$(Cell::from($cell)),*] };
}

/// Every catalog table's rows, in [`CATALOG_TABLES`]' order: the whole projection, that the
/// copy followed change by change must equal.
#[cfg(test)]
pub fn catalog(state: &CatalogState) -> [Vec<Row>; 10] {
    let s = &state.snap;
    let names = Names::of(state);
    [
        databases(state),
        s.users.iter().map(|u| user(u, &names)).collect(),
        s.groups.iter().map(|g| group(g, &names)).collect(),
        s.group_members
            .iter()
            .map(|m| group_member(m, &names))
            .collect(),
        roles(state, &names),
        s.role_members
            .iter()
            .map(|m| role_member(m, &names))
            .collect(),
        s.grants.iter().map(|g| privilege(g, &names)).collect(),
        password_settings(state, &names),
        integrations(state),
        pools(state),
    ]
}

/// `sys.databases`, with each one's upstream URL (without its password: the password is
/// sealed, never in a copy).
pub fn databases(state: &CatalogState) -> Vec<Row> {
    let s = &state.snap;
    s.databases
        .iter()
        .map(|d| {
            let upstream = s
                .upstreams
                .iter()
                .find(|u| u.database_id == d.id)
                .map(|u| u.url.clone());
            row![d.id, d.name.as_str(), timestamp(d.created_at), upstream]
        })
        .collect()
}

pub fn user(u: &UserRecord, names: &Names<'_>) -> Row {
    let db = names.database(u.database_id);
    row![
        u.id,
        u.name.as_str(),
        format!("{}@{db}", u.name),
        u.database_id,
        db,
        u.first_name.clone(),
        u.last_name.clone(),
        u.email.clone(),
        u.state.as_str(),
        u.failed_attempts,
        timestamp(u.password_set_at),
        timestamp(u.created_at),
    ]
}

pub fn group(g: &GroupRecord, names: &Names<'_>) -> Row {
    let db = names.database(g.database_id);
    row![
        g.id,
        g.name.as_str(),
        format!("{}@{db}", g.name),
        g.database_id,
        db,
        timestamp(g.created_at),
    ]
}

pub fn group_member(m: &GroupMemberRecord, names: &Names<'_>) -> Row {
    let group = names.groups.get(&m.group_id).map(|g| g.name.as_str());
    row![m.group_id, group, m.user_id, names.user(m.user_id)]
}

pub fn roles(state: &CatalogState, names: &Names<'_>) -> Vec<Row> {
    state
        .snap
        .roles
        .iter()
        .map(|r| {
            row![
                r.id,
                r.name.as_str(),
                r.database_id,
                names.database(r.database_id),
                r.description.as_str(),
            ]
        })
        .collect()
}

pub fn role_member(m: &RoleMemberRecord, names: &Names<'_>) -> Row {
    let role = names.roles.get(&m.role_id).map(|r| r.name.as_str());
    let (kind, id, name) = names.principal(&m.member);
    row![m.role_id, role, kind, id, name]
}

pub fn privilege(g: &GrantRecord, names: &Names<'_>) -> Row {
    let (object_type, object_id, object_name) = match g.object {
        ObjectRef::System => ("SYSTEM", None, None),
        ObjectRef::Database(id) => ("DATABASE", Some(id), Some(names.database(id).to_owned())),
        ObjectRef::User(id) => ("USER", Some(id), names.user(id)),
        ObjectRef::Group(id) => ("GROUP", Some(id), names.group(id)),
    };
    let (kind, id, name) = names.principal(&g.grantee);
    row![
        g.privilege.as_str(),
        object_type,
        object_id,
        object_name,
        kind,
        id,
        name,
        g.grantor.as_str(),
        timestamp(g.granted_at),
    ]
}

pub fn password_settings(state: &CatalogState, names: &Names<'_>) -> Vec<Row> {
    state
        .snap
        .settings
        .iter()
        .map(|r| {
            let (scope, id, name) = match r.scope {
                ScopeRef::System => ("SYSTEM", None, None),
                ScopeRef::Database(id) => {
                    ("DATABASE", Some(id), Some(names.database(id).to_owned()))
                }
                ScopeRef::Group(id) => ("GROUP", Some(id), names.group(id)),
            };
            row![scope, id, name, r.name.as_str(), r.value]
        })
        .collect()
}

/// `sys.oidc_integrations` (through its filtering view). Lists and maps are shown as JSON; the
/// client secret only as whether one is set.
pub fn integrations(state: &CatalogState) -> Vec<Row> {
    let json = |v: &dyn erased_json::Json| v.json();
    let mut rows = Vec::with_capacity(state.snap.sso_integrations.len());
    for i in &state.snap.sso_integrations {
        let Ok(p) = crate::sso::SsoProperties::from_json(&i.properties) else {
            continue;
        };
        let assigned: Vec<String> = state
            .snap
            .sso_assignments
            .iter()
            .filter(|a| a.integration_id == i.id)
            .map(|a| match a.target {
                AssignmentTarget::Database(d) => format!("database {}", state.database_name(d)),
                AssignmentTarget::ConnectivityPool(id) => format!(
                    "connectivity_pool {}",
                    state
                        .snap
                        .connectivity_pools
                        .iter()
                        .find(|x| x.id == id)
                        .map_or("?", |x| x.name.as_str())
                ),
            })
            .collect();
        rows.push(row![
            i.id,
            i.name.as_str(),
            i.database_id,
            state.database_name(i.database_id),
            i.protocol.as_str(),
            p.issuer.as_str(),
            p.client_id.as_str(),
            i.sealed_secret.is_some(),
            p.default_group.clone(),
            p.redirect_host.clone(),
            p.redirect_ssl,
            p.disabled,
            p.enable_id_token_authentication,
            json(&p.user_id_claims),
            json(&p.additional_scopes),
            json(&p.additional_audiences),
            json(&p.groups_claim_ids),
            json(&p.groups_claim_mappings),
            json(&p.roles_claim_ids),
            json(&p.roles_claim_mappings),
            json(&p.allowed_groups),
            json(&p.allowed_roles),
            json(&p.blocked_groups),
            json(&p.blocked_roles),
            p.allow_offline_access,
            if p.protocol_version.is_empty() {
                "v1"
            } else {
                p.protocol_version.as_str()
            },
            assigned.join(", "),
            timestamp(i.created_at),
            timestamp(i.updated_at),
            p.ldap
                .as_ref()
                .map(|d| json(d as &dyn erased_json::Json))
                .or_else(|| p.saml.as_ref().map(saml_summary)),
        ]);
    }
    rows
}

/// `sys.connectivity_pools`.
pub fn pools(state: &CatalogState) -> Vec<Row> {
    state
        .snap
        .connectivity_pools
        .iter()
        .map(|p| {
            let integration = state
                .assigned_integration(AssignmentTarget::ConnectivityPool(p.id))
                .map(|i| i.name.clone());
            row![
                p.id,
                p.name.as_str(),
                p.listen.as_str(),
                integration,
                timestamp(p.created_at),
                p.advertised.clone(),
            ]
        })
        .collect()
}

/// What `sys.oidc_integrations.directory` shows of a SAML integration: where its metadata
/// comes from (an inline document by its size), not the document.
fn saml_summary(idp: &crate::sso::SamlIdp) -> String {
    serde_json::json!({
        "idp_metadata_url": idp.idp_metadata_url,
        "idp_metadata": idp.idp_metadata.as_ref().map(|d| format!("inline, {} bytes", d.len())),
        "sp_entity_id": idp.sp_entity_id,
        "allow_idp_initiated": idp.allow_idp_initiated,
        "clock_skew_seconds": idp.clock_skew_seconds,
        "session_seconds": idp.session_seconds,
    })
    .to_string()
}

/// Lists and maps as JSON text for the catalog tables.
mod erased_json {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// `sys.sessions`: this node's live sessions, then the other nodes' published rows.
pub fn sessions(
    local: &[std::sync::Arc<Session>],
    remote: &[SessionRow],
    state: &CatalogState,
    node: Option<i64>,
) -> Vec<Row> {
    let local = local.iter().map(|s| session_row(s, state, node));
    local
        .chain(remote.iter().cloned())
        .map(|r| {
            row![
                r.id,
                r.user_id,
                r.user,
                r.database,
                r.database_id,
                r.method,
                r.protocol,
                r.peer,
                r.start_time,
                r.expires_at,
                r.sso_integration,
                r.groups,
                r.roles,
                r.token_expires_at,
                r.node,
            ]
        })
        .collect()
}

/// A session as `sys.sessions` shows it (and as its node publishes it to the others).
pub fn session_row(s: &Session, state: &CatalogState, node: Option<i64>) -> SessionRow {
    let (groups, roles) = super::group_and_role_names(s, state);
    let sso = s.sso.as_ref();
    SessionRow {
        id: s.id.clone(),
        user_id: s.user_id,
        user: s.user.clone(),
        database: s.database.clone(),
        database_id: s.database_id,
        method: s.method.name().to_owned(),
        protocol: s.protocol.name().to_owned(),
        peer: s.peer.clone(),
        start_time: timestamp(s.started_at),
        expires_at: s.expires_at.map(timestamp),
        sso_integration: sso.map(|x| x.integration.clone()),
        groups: groups.join(","),
        roles: roles.join(","),
        token_expires_at: sso.map(|x| timestamp(x.token_expires_at)),
        node,
    }
}

/// Names by id, so that projecting the catalog takes time linear in its size.
pub struct Names<'a> {
    databases: HashMap<i64, &'a str>,
    users: HashMap<i64, &'a portcullis_store::UserRecord>,
    groups: HashMap<i64, &'a portcullis_store::GroupRecord>,
    roles: HashMap<i64, &'a portcullis_store::RoleRecord>,
}

impl<'a> Names<'a> {
    pub fn of(state: &'a CatalogState) -> Self {
        let s = &state.snap;
        Self {
            databases: s
                .databases
                .iter()
                .map(|d| (d.id, d.name.as_str()))
                .collect(),
            users: s.users.iter().map(|u| (u.id, u)).collect(),
            groups: s.groups.iter().map(|g| (g.id, g)).collect(),
            roles: s.roles.iter().map(|r| (r.id, r)).collect(),
        }
    }

    fn database(&self, id: i64) -> &'a str {
        self.databases.get(&id).copied().unwrap_or("?")
    }

    /// `name@database` of a user, group or role.
    fn user(&self, id: i64) -> Option<String> {
        let u = self.users.get(&id)?;
        Some(format!("{}@{}", u.name, self.database(u.database_id)))
    }

    fn group(&self, id: i64) -> Option<String> {
        let g = self.groups.get(&id)?;
        Some(format!("{}@{}", g.name, self.database(g.database_id)))
    }

    fn role(&self, id: i64) -> Option<String> {
        let r = self.roles.get(&id)?;
        Some(format!("{}@{}", r.name, self.database(r.database_id)))
    }

    /// A grantee or role member as (kind, id, `name@database`).
    fn principal(&self, p: &PrincipalRef) -> (&'static str, i64, Option<String>) {
        match *p {
            PrincipalRef::User(id) => ("USER", id, self.user(id)),
            PrincipalRef::Group(id) => ("GROUP", id, self.group(id)),
            PrincipalRef::Role(id) => ("ROLE", id, self.role(id)),
        }
    }
}
