//! The live catalog in memory: the store's snapshot plus lookups, kept in step with the store
//! by applying the same [`Change`]s after they commit.

use portcullis_store::*;

/// Built-in role names.
pub mod roles {
    pub const SYSTEM_ADMINISTRATOR: &str = "system_administrator";
    pub const SECURITY_ADMINISTRATOR: &str = "security_administrator";
    pub const DATABASE_ADMINISTRATOR: &str = "database_administrator";
    pub const PUBLIC_ROLE: &str = "public_role";
    pub const ANALYST: &str = "analyst";
}

/// The name of the system database.
pub const SYSTEM_DATABASE: &str = "system";

/// The administrator created at first start (`admin@system`).
pub const BUILTIN_ADMIN: &str = "admin";

/// User states (seed 003 / vendor password settings).
pub mod user_state {
    pub const ACTIVE: &str = "ACTIVE";
    pub const PASSWORD_EXPIRED: &str = "PASSWORD_EXPIRED";
    pub const DISABLED: &str = "DISABLED";
}

/// The whole catalog, in memory.
#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    pub snap: Snapshot,
    /// Parsed integration properties by id, with the text they were parsed from (a stale
    /// entry is told by its text; shared by copies of the state).
    parsed: std::sync::Arc<parking_lot::Mutex<ParsedProperties>>,
}

/// Integration id → (the properties' text, parsed).
type ParsedProperties =
    std::collections::HashMap<i64, (String, std::sync::Arc<crate::sso::SsoProperties>)>;

impl CatalogState {
    pub fn new(snap: Snapshot) -> Self {
        Self {
            snap,
            parsed: Default::default(),
        }
    }

    /// An integration's properties, parsed once per version of their text (a token sign-in
    /// needs them every time).
    pub fn sso_properties(
        &self,
        integration: &SsoIntegrationRecord,
    ) -> Result<std::sync::Arc<crate::sso::SsoProperties>, crate::CatalogError> {
        let mut parsed = self.parsed.lock();
        if let Some((text, props)) = parsed.get(&integration.id) {
            if *text == integration.properties {
                return Ok(props.clone());
            }
        }
        let props = std::sync::Arc::new(crate::sso::SsoProperties::from_json(
            &integration.properties,
        )?);
        parsed.insert(
            integration.id,
            (integration.properties.clone(), props.clone()),
        );
        Ok(props)
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseRecord> {
        self.snap.databases.iter().find(|d| d.name == name)
    }

    pub fn database_by_id(&self, id: i64) -> Option<&DatabaseRecord> {
        self.snap.databases.iter().find(|d| d.id == id)
    }

    pub fn database_name(&self, id: i64) -> &str {
        self.database_by_id(id)
            .map(|d| d.name.as_str())
            .unwrap_or("?")
    }

    pub fn user(&self, database_id: i64, name: &str) -> Option<&UserRecord> {
        self.snap
            .users
            .iter()
            .find(|u| u.database_id == database_id && u.name == name)
    }

    pub fn user_by_id(&self, id: i64) -> Option<&UserRecord> {
        self.snap.users.iter().find(|u| u.id == id)
    }

    pub fn group(&self, database_id: i64, name: &str) -> Option<&GroupRecord> {
        self.snap
            .groups
            .iter()
            .find(|g| g.database_id == database_id && g.name == name)
    }

    pub fn group_by_id(&self, id: i64) -> Option<&GroupRecord> {
        self.snap.groups.iter().find(|g| g.id == id)
    }

    pub fn role(&self, database_id: i64, name: &str) -> Option<&RoleRecord> {
        self.snap
            .roles
            .iter()
            .find(|r| r.database_id == database_id && r.name == name)
    }

    pub fn role_by_id(&self, id: i64) -> Option<&RoleRecord> {
        self.snap.roles.iter().find(|r| r.id == id)
    }

    /// `name@database` of a user.
    pub fn user_fqun(&self, user: &UserRecord) -> String {
        format!("{}@{}", user.name, self.database_name(user.database_id))
    }

    /// The groups a user is in.
    pub fn groups_of(&self, user_id: i64) -> Vec<&GroupRecord> {
        self.snap
            .group_members
            .iter()
            .filter(|m| m.user_id == user_id)
            .filter_map(|m| self.group_by_id(m.group_id))
            .collect()
    }

    /// The roles held by any of the principals.
    pub fn roles_of(&self, principals: &[PrincipalRef]) -> Vec<&RoleRecord> {
        let mut ids: Vec<i64> = self
            .snap
            .role_members
            .iter()
            .filter(|m| principals.contains(&m.member))
            .map(|m| m.role_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.role_by_id(id))
            .collect()
    }

    /// Previous verifiers of a user, newest first.
    pub fn password_history(&self, user_id: i64) -> Vec<&str> {
        let mut list: Vec<&str> = self
            .snap
            .password_history
            .iter()
            .filter(|h| h.user_id == user_id)
            .map(|h| h.verifier.as_str())
            .collect();
        list.reverse();
        list
    }

    /// An integration by name: names are unique within their database only.
    pub fn integration(&self, database_id: i64, name: &str) -> Option<&SsoIntegrationRecord> {
        self.snap
            .sso_integrations
            .iter()
            .find(|i| i.database_id == database_id && i.name == name)
    }

    pub fn integration_by_id(&self, id: i64) -> Option<&SsoIntegrationRecord> {
        self.snap.sso_integrations.iter().find(|i| i.id == id)
    }

    /// The integration assigned to a database or a connectivity pool, if any.
    pub fn assigned_integration(&self, target: AssignmentTarget) -> Option<&SsoIntegrationRecord> {
        self.snap
            .sso_assignments
            .iter()
            .find(|a| a.target == target)
            .and_then(|a| self.integration_by_id(a.integration_id))
    }

    pub fn pool(&self, name: &str) -> Option<&ConnectivityPoolRecord> {
        self.snap.connectivity_pools.iter().find(|p| p.name == name)
    }

    /// The next free id: above every id ever given out, deleted objects' included (ids are
    /// unique across all kinds, which keeps logs unambiguous, and never reused).
    pub fn next_id(&self) -> i64 {
        self.snap.id_high_water + 1
    }

    /// Applies committed changes, with the same cascades as the store.
    pub fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            self.apply_one(change);
        }
    }

    fn forget(
        &mut self,
        grantee: PrincipalRef,
        object: Option<ObjectRef>,
        scope: Option<ScopeRef>,
    ) {
        let s = &mut self.snap;
        s.grants
            .retain(|g| g.grantee != grantee && Some(g.object) != object);
        s.role_members.retain(|m| m.member != grantee);
        if let Some(scope) = scope {
            s.settings.retain(|r| r.scope != scope);
        }
    }

    fn apply_one(&mut self, change: &Change) {
        if let Some(id) = change.put_id() {
            self.snap.id_high_water = self.snap.id_high_water.max(id);
        }
        match change {
            Change::PutDatabase(d) => upsert(&mut self.snap.databases, d.clone(), |x| x.id == d.id),
            Change::DeleteDatabase(id) => {
                let users: Vec<i64> = ids(&self.snap.users, |u| u.database_id == *id, |u| u.id);
                let groups: Vec<i64> = ids(&self.snap.groups, |g| g.database_id == *id, |g| g.id);
                let roles: Vec<i64> = ids(&self.snap.roles, |r| r.database_id == *id, |r| r.id);
                for u in users {
                    self.apply_one(&Change::DeleteUser(u));
                }
                for g in groups {
                    self.apply_one(&Change::DeleteGroup(g));
                }
                for r in roles {
                    self.forget(PrincipalRef::Role(r), None, None);
                    self.snap.role_members.retain(|m| m.role_id != r);
                }
                self.snap.roles.retain(|r| r.database_id != *id);
                let s = &mut self.snap;
                s.grants.retain(|g| g.object != ObjectRef::Database(*id));
                s.settings.retain(|r| r.scope != ScopeRef::Database(*id));
                let owned = ids(&s.sso_integrations, |i| i.database_id == *id, |i| i.id);
                s.sso_assignments.retain(|a| {
                    a.target != AssignmentTarget::Database(*id)
                        && !owned.contains(&a.integration_id)
                });
                s.sso_integrations.retain(|i| i.database_id != *id);
                s.upstreams.retain(|u| u.database_id != *id);
                s.databases.retain(|d| d.id != *id);
            }
            Change::PutUser(u) => upsert(&mut self.snap.users, u.clone(), |x| x.id == u.id),
            Change::DeleteUser(id) => {
                self.forget(PrincipalRef::User(*id), Some(ObjectRef::User(*id)), None);
                let s = &mut self.snap;
                s.group_members.retain(|m| m.user_id != *id);
                s.password_history.retain(|h| h.user_id != *id);
                s.users.retain(|u| u.id != *id);
            }
            Change::PutGroup(g) => upsert(&mut self.snap.groups, g.clone(), |x| x.id == g.id),
            Change::DeleteGroup(id) => {
                self.forget(
                    PrincipalRef::Group(*id),
                    Some(ObjectRef::Group(*id)),
                    Some(ScopeRef::Group(*id)),
                );
                let s = &mut self.snap;
                s.group_members.retain(|m| m.group_id != *id);
                s.groups.retain(|g| g.id != *id);
            }
            Change::PutRole(r) => upsert(&mut self.snap.roles, r.clone(), |x| x.id == r.id),
            Change::AddGrant(g) => {
                let exists = self.snap.grants.iter().any(|x| {
                    x.grantee == g.grantee && x.privilege == g.privilege && x.object == g.object
                });
                if !exists {
                    self.snap.grants.push(g.clone());
                }
            }
            Change::RemoveGrant {
                grantee,
                privilege,
                object,
            } => self.snap.grants.retain(|x| {
                !(x.grantee == *grantee && &x.privilege == privilege && x.object == *object)
            }),
            Change::AddGroupMember(m) => {
                if !self.snap.group_members.contains(m) {
                    self.snap.group_members.push(*m);
                }
            }
            Change::RemoveGroupMember(m) => self.snap.group_members.retain(|x| x != m),
            Change::AddRoleMember(m) => {
                if !self.snap.role_members.contains(m) {
                    self.snap.role_members.push(*m);
                }
            }
            Change::RemoveRoleMember(m) => self.snap.role_members.retain(|x| x != m),
            Change::PutSetting(r) => upsert(&mut self.snap.settings, r.clone(), |x| {
                x.scope == r.scope && x.name == r.name
            }),
            Change::RemoveSetting { scope, name } => self
                .snap
                .settings
                .retain(|x| !(x.scope == *scope && &x.name == name)),
            Change::PutSsoIntegration(i) => {
                upsert(&mut self.snap.sso_integrations, i.clone(), |x| x.id == i.id)
            }
            Change::DeleteSsoIntegration(id) => {
                let s = &mut self.snap;
                s.sso_assignments.retain(|a| a.integration_id != *id);
                s.sso_integrations.retain(|i| i.id != *id);
            }
            Change::AssignSso(a) => {
                upsert(&mut self.snap.sso_assignments, *a, |x| x.target == a.target)
            }
            Change::UnassignSso(t) => self.snap.sso_assignments.retain(|x| x.target != *t),
            Change::PutConnectivityPool(p) => {
                upsert(&mut self.snap.connectivity_pools, p.clone(), |x| {
                    x.id == p.id
                })
            }
            Change::PutUpstream(u) => upsert(&mut self.snap.upstreams, u.clone(), |x| {
                x.database_id == u.database_id
            }),
            Change::RemoveUpstream(id) => self.snap.upstreams.retain(|u| u.database_id != *id),
            Change::DeleteConnectivityPool(id) => {
                let s = &mut self.snap;
                s.sso_assignments
                    .retain(|a| a.target != AssignmentTarget::ConnectivityPool(*id));
                s.connectivity_pools.retain(|p| p.id != *id);
            }
            Change::AddPasswordHistory(h) => self.snap.password_history.push(h.clone()),
            Change::TrimPasswordHistory { user_id, keep } => {
                let total = self
                    .snap
                    .password_history
                    .iter()
                    .filter(|h| h.user_id == *user_id)
                    .count();
                let mut drop = total.saturating_sub(*keep);
                self.snap.password_history.retain(|h| {
                    if h.user_id == *user_id && drop > 0 {
                        drop -= 1;
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }
}

fn upsert<T>(list: &mut Vec<T>, item: T, same: impl Fn(&T) -> bool) {
    match list.iter_mut().find(|x| same(x)) {
        Some(slot) => *slot = item,
        None => list.push(item),
    }
}

fn ids<T>(list: &[T], keep: impl Fn(&T) -> bool, id: impl Fn(&T) -> i64) -> Vec<i64> {
    list.iter().filter(|x| keep(x)).map(id).collect()
}
