//! Authentication events as the store keeps them: one row per sign-in attempt or session end,
//! appended in batches, read back newest first, and pruned after their retention.

/// One sign-in attempt or session end. Never holds a secret or a token (a token's `jti` or a
/// hash prefix at most, in `token_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEventRecord {
    pub id: i64,
    /// Unix microseconds.
    pub at_micros: i64,
    /// `sign_in` or `session_end`.
    pub kind: String,
    /// `password`, `http_login`, `token`, `device_grant`, `code_flow`, …
    pub method: String,
    /// The FQUN, or the identity the provider's token named.
    pub identity: String,
    /// 0 when the database named does not exist.
    pub database_id: i64,
    pub database: String,
    pub integration: Option<String>,
    pub peer: String,
    pub application: Option<String>,
    /// `success`, `failure` or `ended`.
    pub result: String,
    /// A reason code (`bad_password`, `token_expired`, …); none for a success.
    pub reason: Option<String>,
    /// The sentence the client was told, or what ended the session.
    pub detail: String,
    pub session_id: Option<String>,
    pub token_id: Option<String>,
}

/// The newest events kept, with the largest id ever given out (ids are never reused).
#[derive(Debug, Clone, Default)]
pub struct StoredEvents {
    /// Oldest first.
    pub events: Vec<AuthEventRecord>,
    pub max_id: i64,
}
