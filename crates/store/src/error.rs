//! The store's error type.

/// Why a store operation failed. Callers map all of them to an internal error; the text names the
/// backend's complaint but never a row's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("catalog store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog store: schema version {found} is newer than this build knows ({known})")]
    FutureSchema { found: i64, known: i64 },
    #[error("catalog store: background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("catalog store: {0}")]
    Io(#[from] std::io::Error),
    #[error("catalog store: {}", describe_pg(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The store could not be reached (it is down, restarting, or refuses the login).
    #[error("catalog store unavailable: {0}")]
    Unavailable(String),
    /// `store_url` or its TLS cannot be used.
    #[error("catalog store: {0}")]
    Config(String),
    /// Another node committed a catalog change first: nothing was applied (retry against the
    /// new catalog).
    #[error("catalog store: another node changed the catalog first (version {based_on} is stale)")]
    Conflict { based_on: u64 },
    /// The store holds something no Portcullis wrote.
    #[error("catalog store: {0}")]
    Corrupt(String),
}

/// The server's words and SQLSTATE, or the connection's (never a password or a row).
pub(crate) fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
