//! The catalog's error: an SQLSTATE, a message safe to show the client, and an optional position.

use portcullis_store::StoreError;

/// SQLSTATE codes the catalog produces (DESIGN.md, "Errors clients see").
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const QUERY_CANCELED: &str = "57014";
    pub const INTERNAL_ERROR: &str = "XX000";
    /// Another node changed the catalog first: run the statement again.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const DEPENDENT_OBJECTS: &str = "2BP01";
    pub const RESERVED_NAME: &str = "42939";
}

/// An error a statement or a sign-in ends with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CatalogError {
    pub sqlstate: &'static str,
    pub message: String,
    /// 1-based character position in the statement text, for syntax errors.
    pub position: Option<usize>,
}

impl CatalogError {
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        Self {
            sqlstate,
            message: message.into(),
            position: None,
        }
    }

    pub fn syntax(message: impl Into<String>, position: usize) -> Self {
        Self {
            sqlstate: sqlstate::SYNTAX_ERROR,
            message: message.into(),
            position: Some(position),
        }
    }

    pub fn undefined(kind: &str, name: &str) -> Self {
        let state = if kind == "database" {
            sqlstate::INVALID_CATALOG_NAME
        } else {
            sqlstate::UNDEFINED_OBJECT
        };
        Self::new(state, format!("{kind} \"{name}\" does not exist"))
    }

    pub fn duplicate(kind: &str, name: &str) -> Self {
        Self::new(
            sqlstate::DUPLICATE_OBJECT,
            format!("{kind} \"{name}\" already exists"),
        )
    }

    /// The HTTP status this error is answered with (decided here, next to the SQLSTATE).
    pub fn http_status(&self) -> u16 {
        match self.sqlstate {
            sqlstate::INSUFFICIENT_PRIVILEGE => 403,
            // The session's authority ended (DROP USER, DISABLE, REVOKE …): sign in again.
            "57P01" => 401,
            sqlstate::UNDEFINED_OBJECT
            | sqlstate::INVALID_CATALOG_NAME
            | sqlstate::UNDEFINED_TABLE => 404,
            sqlstate::DUPLICATE_OBJECT => 409,
            sqlstate::INTERNAL_ERROR => 500,
            _ => 400,
        }
    }

    pub fn denied(what: impl Into<String>) -> Self {
        Self::new(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!("permission denied: {}", what.into()),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INVALID_PARAMETER_VALUE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(sqlstate::INTERNAL_ERROR, message)
    }
}

impl From<StoreError> for CatalogError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Conflict { .. } = e {
            return Self::new(
                sqlstate::SERIALIZATION_FAILURE,
                "another node changed the catalog at the same moment; nothing was changed — run \
                 the statement again",
            );
        }
        tracing::error!(error = %e, "catalog store failed");
        Self::internal("the catalog store failed; the change was not made")
    }
}
