//! Catalog persistence: plain records, the `Store` trait every backend implements, the embedded
//! SQLite backend and the PostgreSQL one (several nodes over one store).
//!
//! The catalog layer keeps the live model in memory and describes every change as a list of
//! [`Change`]s; a backend applies such a list atomically and can load the whole catalog back as a
//! [`Snapshot`]. No SQL dialect, protocol or authentication type appears here.

mod error;
mod events;
mod kinds;
mod postgres;
mod records;
mod sqlite;

pub use error::StoreError;
pub use events::{AuthEventRecord, StoredEvents};
pub use postgres::PgStore;
pub use records::{
    AssignmentTarget, Change, ConnectivityPoolRecord, DatabaseRecord, GrantRecord,
    GroupMemberRecord, GroupRecord, ObjectRef, PasswordHistoryRecord, PrincipalRef,
    RoleMemberRecord, RoleRecord, ScopeRef, SettingRecord, Snapshot, SsoAssignmentRecord,
    SsoIntegrationRecord, UpstreamRecord, UserRecord,
};
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// A catalog backend. Every method is atomic: `apply` commits all of its changes or none.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads the whole catalog.
    async fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies the changes in one transaction.
    async fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;
    /// A short name of the backend, for logs (`sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
    /// Appends authentication events (one transaction per batch).
    async fn append_events(
        &self,
        events: &[std::sync::Arc<AuthEventRecord>],
    ) -> Result<(), StoreError>;
    /// The newest `limit` events at or after `since_micros`, oldest first.
    async fn load_events(
        &self,
        since_micros: i64,
        limit: usize,
    ) -> Result<StoredEvents, StoreError>;
    /// Deletes events older than `before_micros`; returns how many.
    async fn prune_events(&self, before_micros: i64) -> Result<usize, StoreError>;

    /// The catalog's version in the store: every commit adds one. 0 in a store only one node
    /// writes.
    async fn version(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Applies the changes in one transaction if the store's catalog is still at version
    /// `based_on` (what the node checked them against); answers the new version, or
    /// [`StoreError::Conflict`] when another node committed first (nothing is applied).
    async fn apply_at(&self, changes: &[Change], based_on: u64) -> Result<u64, StoreError> {
        self.apply(changes).await.map(|()| based_on)
    }

    /// The whole catalog and its version, from one snapshot.
    async fn load_versioned(&self) -> Result<(Snapshot, u64), StoreError> {
        Ok((self.load().await?, 0))
    }

    /// Versions committed by any node, as the store announces them (PostgreSQL's
    /// LISTEN/NOTIFY); `None` where only one node writes. The receiver closes when the
    /// announcing connection breaks: ask again.
    async fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<u64>> {
        None
    }

    /// This node's number among the nodes sharing the store (given once per start, never
    /// reused), for ids that must not collide; `None` where only one node writes.
    fn node(&self) -> Option<i64> {
        None
    }

    /// A value sealed with the key of the first node that opened the store (`proposed` if
    /// none was kept yet): a node whose key cannot open it must not seal or unseal anything
    /// in this store.
    async fn key_check(&self, proposed: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(proposed.to_vec())
    }

    /// Keeps a pending sign-in (sealed by the caller) where every node can find it, until
    /// `expires_at` (Unix seconds). Stores only one node writes keep none (`Ok(false)`): the
    /// node keeps its own in memory.
    async fn put_pending(
        &self,
        _key: &str,
        _sealed: &[u8],
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The store's catalog version and the changes of each version after `version`, in order,
    /// for a node to apply to its model; `None` when the store cannot tell them all (it keeps
    /// no log, or not that far back): load the catalog instead.
    async fn changes_since(
        &self,
        _version: u64,
    ) -> Result<Option<(u64, Vec<Vec<Change>>)>, StoreError> {
        Ok(None)
    }

    /// [`Self::put_pending`], replacing what `key` held (a grant put back after a renewal,
    /// a tombstone written twice); `put_pending` refuses a key in use.
    async fn replace_pending(
        &self,
        _key: &str,
        _sealed: &[u8],
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The live pending sign-in of `key`, left in place.
    async fn peek_pending(&self, _key: &str, _now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    /// Takes the live pending sign-in of `key`: at most once, whichever node asks.
    async fn take_pending(&self, _key: &str, _now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }

    /// Records `key` as used until `until`: `false` if a live record of it exists (a replayed
    /// one-time value). Stores only one node writes keep none and answer `true`.
    async fn first_use(&self, _key: &str, _until: i64, _now: i64) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Publishes this node's sessions (each a row as JSON, by id): `upserts` new or changed,
    /// `removed` gone; and marks the node seen at `now`.
    async fn publish_sessions(
        &self,
        _upserts: &[(String, String)],
        _removed: &[String],
        _now: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// The sessions other nodes published, of nodes seen since `seen_after`: `(node, row)`.
    async fn remote_sessions(&self, _seen_after: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(Vec::new())
    }

    /// Asks every live node to end session `id` (`by`: who asked; a node that does not hold
    /// it ignores the request); `false` if no node is live.
    async fn request_session_end(
        &self,
        _id: &str,
        _by: &str,
        _seen_after: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The END SESSION requests for this node's sessions, taken: `(id, by)`.
    async fn take_session_ends(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(Vec::new())
    }

    /// Forgets expired pending sign-ins.
    async fn sweep_pending(&self, _now: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Lets go of the store at shutdown (a PostgreSQL store closes its connection, and with it
    /// the node's hold on the store). Later calls open it again.
    async fn close(&self) {}
}
