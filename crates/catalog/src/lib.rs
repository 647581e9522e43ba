//! The catalog: databases, users, groups, roles, privileges and password settings; the admin
//! SQL dialect that changes them; catalog queries over the `sys` tables; and live sessions.
//!
//! Nothing here knows about a wire protocol: front ends hand in statement text and get back
//! [`StatementResult`]s or a [`CatalogError`] carrying its SQLSTATE.

pub mod authority;
mod catalog;
pub mod credential;
pub mod error;
pub mod events;
mod exec;
pub mod invariants;
pub mod listeners;
pub mod metrics;
pub mod model;
pub mod names;
pub mod privileges;
mod query;
pub mod reason;
pub mod sealing;
pub mod sessions;
pub mod settings;
mod shared_http;
pub mod sql;
pub mod sso;
pub mod upstream;
pub mod value;

pub use catalog::{explain_columns, now, AuthenticationExplainer, Catalog, CatalogOptions};
pub use error::CatalogError;
pub use events::{Attempt, Client, SignInMethod};
pub use exec::policy_for;
pub use exec::sso::{
    conferred_group, conferred_role, is_administrator_role, resolve_group, resolve_role, NameSource,
};
pub use query::timestamp;
pub use reason::Reason;
pub use sessions::{
    AuthMethod, EndReason, Protocol, Session, SessionLimits, SessionRegistry, SsoIdentity,
};
pub use value::{Column, ColumnType, QueryResult, StatementResult, Value};
