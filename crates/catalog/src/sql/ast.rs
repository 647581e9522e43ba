//! The statements of the admin dialect.

use crate::names::QualifiedName;
use crate::privileges::Privilege;
use crate::settings::PasswordSetting;

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
    SetPasswordSetting {
        scope: SettingScope,
        setting: PasswordSetting,
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
    /// A catalog query, run by the query engine over the `sys` tables.
    Query(String),
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
            Self::DropDatabase { .. } => "DROP DATABASE",
            Self::CreateUser { .. } => "CREATE USER",
            Self::AlterUser { .. } => "ALTER USER",
            Self::DropUser { .. } => "DROP USER",
            Self::CreateGroup { .. } => "CREATE GROUP",
            Self::DropGroup { .. } => "DROP GROUP",
            Self::AlterGroupMembers { .. } => "ALTER GROUP",
            Self::SetPasswordSetting { scope, .. } => match scope {
                SettingScope::System => "ALTER SYSTEM",
                SettingScope::Database(_) => "ALTER DATABASE",
                SettingScope::Group(_) => "ALTER GROUP",
            },
            Self::Grant { .. } | Self::GrantRole { .. } => "GRANT",
            Self::Revoke { .. } | Self::RevokeRole { .. } => "REVOKE",
            Self::Query(_) => "SELECT",
            Self::SetParameter(_) => "SET",
            Self::Show(_) => "SHOW",
            Self::Transaction(TransactionControl::Begin) => "BEGIN",
            Self::Transaction(TransactionControl::Commit) => "COMMIT",
            Self::Transaction(TransactionControl::Rollback) => "ROLLBACK",
            Self::Noop(tag) => tag,
        }
    }

    /// Whether the statement changes the catalog (and so is DDL/DCL needing privileges).
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Self::Query(_)
                | Self::SetParameter(_)
                | Self::Show(_)
                | Self::Transaction(_)
                | Self::Noop(_)
        )
    }
}
