//! The change log: each commit's changes, kept under the catalog version the commit made, so
//! that a node behind by a few versions applies just those changes to its model (the one
//! meaning of a change, `CatalogState::apply`) instead of loading the whole catalog. The last
//! [`KEEP`] versions are kept; a node further behind, or one that cannot read an entry (written
//! by a newer build), loads the catalog as before.

use tokio_postgres::{Client, Transaction};

use crate::{Change, StoreError};

/// How many versions the log keeps.
pub const KEEP: i64 = 1_000;

/// Records `changes` as what `version` changed, in the committing transaction, and drops
/// entries older than the log keeps.
pub async fn record(
    tx: &Transaction<'_>,
    version: u64,
    changes: &[Change],
) -> Result<(), StoreError> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    let text = serde_json::to_string(changes)
        .map_err(|e| StoreError::Corrupt(format!("a catalog change could not be written: {e}")))?;
    tx.execute(
        "INSERT INTO portcullis_changes (version, changes) VALUES ($1, $2)",
        &[&version, &text],
    )
    .await?;
    if version % 100 == 0 {
        tx.execute(
            "DELETE FROM portcullis_changes WHERE version <= $1",
            &[&(version - KEEP)],
        )
        .await?;
    }
    Ok(())
}

/// The store's version and, in order, the changes of every version after `since`; `None` when
/// the log does not hold all of them (or one cannot be read), so the caller loads the catalog.
pub async fn since(
    client: &Client,
    since: u64,
) -> Result<Option<(u64, Vec<Vec<Change>>)>, StoreError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT v.version, c.version, c.changes FROM portcullis_catalog_version v \
             LEFT JOIN portcullis_changes c ON c.version > $1 WHERE v.id = 1 \
             ORDER BY c.version",
            &[&since],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let current: i64 = first.get(0);
    if current <= since {
        return Ok(Some((
            u64::try_from(current).unwrap_or_default(),
            Vec::new(),
        )));
    }
    let mut batches = Vec::with_capacity(rows.len());
    for (expected, row) in (since + 1..).zip(&rows) {
        let version: Option<i64> = row.get(1);
        if version != Some(expected) {
            return Ok(None);
        }
        let text: String = row.get(2);
        match serde_json::from_str::<Vec<Change>>(&text) {
            Ok(changes) => batches.push(changes),
            Err(_) => return Ok(None),
        }
    }
    if since + i64::try_from(batches.len()).unwrap_or(i64::MAX) != current {
        return Ok(None);
    }
    Ok(Some((u64::try_from(current).unwrap_or_default(), batches)))
}
