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
}
