//! Plain catalog records as the store keeps them, and the changes the catalog asks it to make.

/// A database: a namespace of users, groups and roles.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatabaseRecord {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

/// A password user, `name@database`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub database_id: i64,
    pub name: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// SCRAM-SHA-256 verifier in PostgreSQL's text form; never a password.
    pub verifier: String,
    pub password_set_at: i64,
    /// `ACTIVE`, `PASSWORD_EXPIRED` or `DISABLED`.
    pub state: String,
    pub failed_attempts: i64,
    pub created_at: i64,
}

/// A group of users inside one database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    pub id: i64,
    pub database_id: i64,
    pub name: String,
    pub created_at: i64,
}

/// A built-in role of one database (the system's roles live in the `system` database).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleRecord {
    pub id: i64,
    pub database_id: i64,
    pub name: String,
    pub description: String,
}

/// Who holds a privilege or a role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum PrincipalRef {
    User(i64),
    Group(i64),
    Role(i64),
}

/// What a privilege is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ObjectRef {
    System,
    Database(i64),
    User(i64),
    Group(i64),
}

/// Where a password setting is set.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScopeRef {
    System,
    Database(i64),
    Group(i64),
}

/// One privilege held by one principal on one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantRecord {
    pub grantee: PrincipalRef,
    /// `USE`, `CREATE`, `ALTER`, `DROP`, `VIEW`, `SYSAUTH`, `ALL`.
    pub privilege: String,
    pub object: ObjectRef,
    /// FQUN of whoever granted it (`system` for grants made at bootstrap).
    pub grantor: String,
    pub granted_at: i64,
}

/// A user's membership in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GroupMemberRecord {
    pub group_id: i64,
    pub user_id: i64,
}

/// A user's or group's holding of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RoleMemberRecord {
    pub role_id: i64,
    pub member: PrincipalRef,
}

/// One password security setting at one scope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettingRecord {
    pub scope: ScopeRef,
    pub name: String,
    pub value: i64,
}

/// A verifier a user had before; kept for `password_no_repeat_count`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordHistoryRecord {
    pub user_id: i64,
    pub verifier: String,
    pub set_at: i64,
}

/// An SSO (OpenID Connect) integration, owned by the database it was created in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SsoIntegrationRecord {
    pub id: i64,
    pub database_id: i64,
    /// Unique across the catalog; an inline integration is named after its database.
    pub name: String,
    /// `oidc`.
    pub protocol: String,
    /// The non-secret properties as a JSON object.
    pub properties: String,
    /// The client secret, sealed (encrypted and authenticated) by the catalog; never plaintext.
    pub sealed_secret: Option<Vec<u8>>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an integration can be assigned to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum AssignmentTarget {
    Database(i64),
    ConnectivityPool(i64),
}

/// The integration a database or a connectivity pool uses (0 or 1 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SsoAssignmentRecord {
    pub target: AssignmentTarget,
    pub integration_id: i64,
}

/// A database bound to a PostgreSQL database upstream: sessions in it reach that database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamRecord {
    pub database_id: i64,
    /// `postgresql://admin@host:port/db?sslmode=…`, without the password.
    pub url: String,
    /// The upstream administrator's password, sealed (never stored in the clear).
    pub sealed_password: Vec<u8>,
    pub updated_at: i64,
}

/// A connectivity pool: a named listener with its own optional SSO integration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnectivityPoolRecord {
    pub id: i64,
    pub name: String,
    /// `host:port` of its SQL listener.
    pub listen: String,
    /// `host[:port]` browsers reach the server by for this pool: the authority of the
    /// `/v1/callback` redirect URI of sign-ins through the pool's integration (seed 003's
    /// `advertised_ip`); none: the server's own.
    pub advertised: Option<String>,
    pub created_at: i64,
}

/// The whole catalog as loaded from a store.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub databases: Vec<DatabaseRecord>,
    pub users: Vec<UserRecord>,
    pub groups: Vec<GroupRecord>,
    pub roles: Vec<RoleRecord>,
    pub grants: Vec<GrantRecord>,
    pub group_members: Vec<GroupMemberRecord>,
    pub role_members: Vec<RoleMemberRecord>,
    pub settings: Vec<SettingRecord>,
    pub password_history: Vec<PasswordHistoryRecord>,
    pub sso_integrations: Vec<SsoIntegrationRecord>,
    pub sso_assignments: Vec<SsoAssignmentRecord>,
    pub connectivity_pools: Vec<ConnectivityPoolRecord>,
    pub upstreams: Vec<UpstreamRecord>,
    /// The largest object id ever given out (databases, users, groups, roles, integrations,
    /// pools), kept even after the object is deleted: ids are never reused, so nothing that
    /// still holds an id (a live session, a pending flow, a grant) can come to mean another
    /// object.
    pub id_high_water: i64,
}

impl Change {
    /// The id of the object this change creates or replaces, if it puts one.
    pub fn put_id(&self) -> Option<i64> {
        match self {
            Self::PutDatabase(r) => Some(r.id),
            Self::PutUser(r) => Some(r.id),
            Self::PutGroup(r) => Some(r.id),
            Self::PutRole(r) => Some(r.id),
            Self::PutSsoIntegration(r) => Some(r.id),
            Self::PutConnectivityPool(r) => Some(r.id),
            _ => None,
        }
    }
}

/// One change to the catalog. Deleting a database, user, group or role also deletes what hangs
/// off it (members, grants, settings, history, integrations, assignments), so the catalog never holds a dangling reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    PutDatabase(DatabaseRecord),
    DeleteDatabase(i64),
    PutUser(UserRecord),
    DeleteUser(i64),
    PutGroup(GroupRecord),
    DeleteGroup(i64),
    PutRole(RoleRecord),
    AddGrant(GrantRecord),
    /// Removes the grant of `privilege` to `grantee` on `object`.
    RemoveGrant {
        grantee: PrincipalRef,
        privilege: String,
        object: ObjectRef,
    },
    AddGroupMember(GroupMemberRecord),
    RemoveGroupMember(GroupMemberRecord),
    AddRoleMember(RoleMemberRecord),
    RemoveRoleMember(RoleMemberRecord),
    PutSetting(SettingRecord),
    RemoveSetting {
        scope: ScopeRef,
        name: String,
    },
    AddPasswordHistory(PasswordHistoryRecord),
    /// Keeps only the newest `keep` history entries of a user.
    TrimPasswordHistory {
        user_id: i64,
        keep: usize,
    },
    PutSsoIntegration(SsoIntegrationRecord),
    /// Also removes its assignments.
    DeleteSsoIntegration(i64),
    /// Replaces the target's assignment.
    AssignSso(SsoAssignmentRecord),
    UnassignSso(AssignmentTarget),
    PutConnectivityPool(ConnectivityPoolRecord),
    /// Also removes its assignment.
    DeleteConnectivityPool(i64),
    /// Binds a database to its upstream (replacing a binding it had).
    PutUpstream(UpstreamRecord),
    /// Unbinds a database (by its id).
    RemoveUpstream(i64),
}
