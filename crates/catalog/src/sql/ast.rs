//! The statements of the admin dialect.

use crate::names::QualifiedName;
use crate::privileges::Privilege;
use crate::settings::SecuritySetting;
use crate::sso::Property;

/// What an SSO integration is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoTarget {
    Database(String),
    ConnectivityPool(String),
}

/// A descriptive or credential attribute of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAttribute {
    Password(String),
    FirstName(String),
    LastName(String),
    Email(String),
}

/// What `ALTER USER` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterUserAction {
    Set(Vec<UserAttribute>),
    /// Clears `DISABLED` (and the failed-attempt count).
    Enable,
    /// Locks the user out.
    Disable,
    RenameTo(String),
}

/// Where a password setting is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingScope {
    System,
    Database(String),
    Group(QualifiedName),
}

/// What a privilege is granted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantTarget {
    System,
    Database(String),
    User(QualifiedName),
    Group(QualifiedName),
}

/// Who receives a privilege or role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    User(QualifiedName),
    Group(QualifiedName),
    Role(QualifiedName),
}

/// Transaction-control statements clients send on their own; accepted as no-ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionControl {
    Begin,
    Commit,
    Rollback,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        /// `UPSTREAM 'postgresql://…'`: bound to that PostgreSQL database.
        upstream: Option<String>,
    },
    /// `ALTER DATABASE d SET UPSTREAM 'url'` (`Some`) or `REMOVE UPSTREAM` (`None`).
    SetUpstream {
        database: String,
        url: Option<String>,
    },
    DropDatabase {
        names: Vec<String>,
        if_exists: bool,
    },
    CreateUser {
        name: QualifiedName,
        if_not_exists: bool,
        attributes: Vec<UserAttribute>,
    },
    AlterUser {
        name: QualifiedName,
        action: AlterUserAction,
    },
    DropUser {
        names: Vec<QualifiedName>,
        if_exists: bool,
    },
    CreateGroup {
        name: QualifiedName,
        if_not_exists: bool,
    },
    DropGroup {
        names: Vec<QualifiedName>,
        if_exists: bool,
    },
    AlterGroupMembers {
        group: QualifiedName,
        add: bool,
        users: Vec<QualifiedName>,
    },
    /// `ALTER { SYSTEM | DATABASE d | GROUP g } { SET setting = n | RESET setting }`.
    SetSecuritySetting {
        scope: SettingScope,
        setting: SecuritySetting,
        /// `None` = RESET.
        value: Option<i64>,
    },
    Grant {
        privileges: Vec<Privilege>,
        target: GrantTarget,
        grantee: Grantee,
    },
    Revoke {
        privileges: Vec<Privilege>,
        target: GrantTarget,
        grantee: Grantee,
    },
    GrantRole {
        role: QualifiedName,
        grantee: Grantee,
    },
    RevokeRole {
        role: QualifiedName,
        grantee: Grantee,
    },
    /// `CREATE SSO INTEGRATION name PROTOCOL oidc prop = value, …` (in the current database).
    CreateSsoIntegration {
        name: String,
        if_not_exists: bool,
        protocol: String,
        properties: Vec<Property>,
    },
    /// `ALTER SSO INTEGRATION name [SET] prop = value, …`.
    AlterSsoIntegration {
        name: String,
        properties: Vec<Property>,
    },
    DropSsoIntegration {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `ALTER {DATABASE d | CONNECTIVITY_POOL p} SET SSO INTEGRATION name`.
    AssignSsoIntegration {
        target: SsoTarget,
        name: String,
    },
    /// `ALTER DATABASE d {SET | ALTER} SSO INTEGRATION oidc prop = value, …`: define the
    /// database's own integration (`replace`) or change the one it has.
    DatabaseSsoProperties {
        database: String,
        replace: bool,
        protocol: String,
        properties: Vec<Property>,
    },
    /// `ALTER {DATABASE d | CONNECTIVITY_POOL p} REMOVE SSO INTEGRATION`.
    RemoveSsoIntegration {
        target: SsoTarget,
    },
    /// `CREATE CONNECTIVITY_POOL name LISTEN 'host:port'`.
    CreateConnectivityPool {
        name: String,
        if_not_exists: bool,
        listen: String,
        /// `ADVERTISED 'host[:port]'`: how browsers reach the server for this pool.
        advertised: Option<String>,
    },
    DropConnectivityPool {
        names: Vec<String>,
        if_exists: bool,
    },
    /// `EXPLAIN AUTHENTICATION 'token' [FOR DATABASE d]`: answered by the authentication layer.
    ExplainAuthentication {
        token: String,
        database: Option<String>,
    },
    /// `EXPLAIN AUTHENTICATION FOR USER 'alice' [DATABASE d]`: what a directory (LDAP)
    /// integration would make of that user, without a password.
    ExplainUser {
        user: String,
        database: Option<String>,
    },
    /// A catalog query, run by the query engine over the `sys` tables.
    Query(String),
    /// `ALTER SYSTEM END SESSION 'id'`: ends a live session (not a catalog change).
    EndSession {
        id: String,
    },
    /// `SET name = value` from a client; accepted and ignored.
    SetParameter(String),
    /// `SHOW name`.
    Show(String),
    Transaction(TransactionControl),
    /// `DISCARD ALL`, `DEALLOCATE …`, `RESET …`: accepted and ignored.
    Noop(&'static str),
}

impl Statement {
    /// The command tag a PostgreSQL client expects after the statement.
    pub fn tag(&self) -> &'static str {
        match self {
            Self::CreateDatabase { .. } => "CREATE DATABASE",
            Self::SetUpstream { .. } => "ALTER DATABASE",
            Self::DropDatabase { .. } => "DROP DATABASE",
            Self::CreateUser { .. } => "CREATE USER",
            Self::AlterUser { .. } => "ALTER USER",
            Self::DropUser { .. } => "DROP USER",
            Self::CreateGroup { .. } => "CREATE GROUP",
            Self::DropGroup { .. } => "DROP GROUP",
            Self::AlterGroupMembers { .. } => "ALTER GROUP",
            Self::SetSecuritySetting { scope, .. } => match scope {
                SettingScope::System => "ALTER SYSTEM",
                SettingScope::Database(_) => "ALTER DATABASE",
                SettingScope::Group(_) => "ALTER GROUP",
            },
            Self::Grant { .. } | Self::GrantRole { .. } => "GRANT",
            Self::Revoke { .. } | Self::RevokeRole { .. } => "REVOKE",
            Self::CreateSsoIntegration { .. } => "CREATE SSO INTEGRATION",
            Self::AlterSsoIntegration { .. } => "ALTER SSO INTEGRATION",
            Self::DropSsoIntegration { .. } => "DROP SSO INTEGRATION",
            Self::AssignSsoIntegration { target, .. } | Self::RemoveSsoIntegration { target } => {
                match target {
                    SsoTarget::Database(_) => "ALTER DATABASE",
                    SsoTarget::ConnectivityPool(_) => "ALTER CONNECTIVITY_POOL",
                }
            }
            Self::DatabaseSsoProperties { .. } => "ALTER DATABASE",
            Self::CreateConnectivityPool { .. } => "CREATE CONNECTIVITY_POOL",
            Self::DropConnectivityPool { .. } => "DROP CONNECTIVITY_POOL",
            Self::ExplainAuthentication { .. } | Self::ExplainUser { .. } => "EXPLAIN",
            Self::EndSession { .. } => "ALTER SYSTEM",
            Self::Query(_) => "SELECT",
            Self::SetParameter(_) => "SET",
            Self::Show(_) => "SHOW",
            Self::Transaction(TransactionControl::Begin) => "BEGIN",
            Self::Transaction(TransactionControl::Commit) => "COMMIT",
            Self::Transaction(TransactionControl::Rollback) => "ROLLBACK",
            Self::Noop(tag) => tag,
        }
    }

    /// Whether the statement changes anything: the catalog, or a live session.
    pub fn changes_state(&self) -> bool {
        self.is_change() || matches!(self, Self::EndSession { .. })
    }

    /// Whether the statement changes the catalog (and so is DDL/DCL needing privileges).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Self::Query(_)
                | Self::ExplainAuthentication { .. }
                | Self::ExplainUser { .. }
                | Self::EndSession { .. }
                | Self::SetParameter(_)
                | Self::Show(_)
                | Self::Transaction(_)
                | Self::Noop(_)
        )
    }
}
