//! Connectivity-pool listeners as a catalog change sees them: a change that creates a pool has
//! its address bound before the change is committed (an address that cannot be bound refuses
//! the change, and nothing is committed), and a dropped pool's listener closes once the change
//! is committed. Implemented by the front end that listens (it sits above the catalog) and
//! handed in at start-up.

use portcullis_store::{Change, ConnectivityPoolRecord};

use crate::error::CatalogError;
use crate::model::CatalogState;

/// What opens and closes connectivity-pool listeners.
pub trait PoolListeners: Send + Sync {
    /// Readies what `changes` (to the catalog `before`) mean for listeners, uncommitted: binds
    /// the address of each pool they create. Dropping the answer undoes it.
    fn prepare(
        &self,
        before: &CatalogState,
        changes: &[Change],
    ) -> Result<Box<dyn ListenerCommit>, CatalogError>;
}

/// Listener changes waiting for the catalog's commit.
pub trait ListenerCommit: Send {
    /// The catalog committed: new pools' listeners start accepting, dropped pools' close.
    fn commit(self: Box<Self>);
}

/// The pools `changes` create (or move to another address) and the ids of those they drop (or
/// move), against `before`.
pub fn pool_changes<'a>(
    before: &CatalogState,
    changes: &'a [Change],
) -> (Vec<&'a ConnectivityPoolRecord>, Vec<i64>) {
    let mut opened = Vec::new();
    let mut closed = Vec::new();
    for change in changes {
        match change {
            Change::PutConnectivityPool(p) => {
                let existing = before.snap.connectivity_pools.iter().find(|e| e.id == p.id);
                if existing.is_none_or(|e| e.listen != p.listen) {
                    if existing.is_some() {
                        closed.push(p.id);
                    }
                    opened.push(p);
                }
            }
            Change::DeleteConnectivityPool(id) => closed.push(*id),
            _ => {}
        }
    }
    (opened, closed)
}
