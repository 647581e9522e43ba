//! Catalog and sign-in errors as PostgreSQL ErrorResponses.

use pgwire::error::{ErrorInfo, PgWireError};
use portcullis_auth::SignInError;
use portcullis_catalog::CatalogError;

/// A statement error: ERROR severity, the connection stays usable — unless the session's
/// authority ended (57P01), which is FATAL.
pub fn statement_error(e: CatalogError) -> PgWireError {
    let severity = if e.sqlstate == portcullis_catalog::EndReason::Gone.sqlstate() {
        "FATAL"
    } else {
        "ERROR"
    };
    let mut info = ErrorInfo::new(severity.into(), e.sqlstate.into(), e.message);
    info.position = e.position.map(|p| p.to_string());
    PgWireError::UserError(Box::new(info))
}

/// A sign-in error: always FATAL, so pgwire closes the connection after sending it.
pub fn fatal(e: &SignInError) -> PgWireError {
    fatal_with(e.sqlstate(), e.to_string())
}

pub fn fatal_with(sqlstate: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        sqlstate.into(),
        message,
    )))
}

/// The session's authority ended: FATAL 57P01 with the reason.
pub fn session_ended(reason: &portcullis_catalog::EndReason) -> PgWireError {
    fatal_with(reason.sqlstate(), reason.message())
}
