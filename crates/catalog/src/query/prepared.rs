//! Preparing a catalog query: the authorizer's checks, SQLite's statement cache for small
//! statements, and what each cached statement reads (the authorizer is not asked again for a
//! statement taken from the cache, so its notes are kept beside it).

use std::collections::HashMap;

use parking_lot::Mutex;
use rusqlite::Connection;

use super::{limits, not_a_read, query_error, visibility, Reads};
use crate::error::CatalogError;

/// Prepared statements SQLite keeps per engine.
pub(super) const CACHED_STATEMENTS: usize = 64;
/// The most statements whose reads are remembered (past this, the memory starts over).
const KNOWN_READS: usize = 2 * CACHED_STATEMENTS;
/// Longer statements are prepared for their one query and not kept.
const CACHEABLE_SQL_BYTES: usize = 4096;

/// A statement ready to run: from the cache, or for this query only.
pub(super) enum Prepared<'c> {
    Cached(rusqlite::CachedStatement<'c>),
    Once(rusqlite::Statement<'c>),
}

impl<'c> std::ops::Deref for Prepared<'c> {
    type Target = rusqlite::Statement<'c>;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Cached(s) => s,
            Self::Once(s) => s,
        }
    }
}

impl std::ops::DerefMut for Prepared<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Cached(s) => s,
            Self::Once(s) => s,
        }
    }
}

/// A statement the authorizer let through, and what it reads.
pub(super) struct Authorized<'c> {
    pub stmt: Prepared<'c>,
    pub reads: Reads,
    /// Prepared now and kept in the cache: its reads are to be remembered.
    pub remember: bool,
}

/// Prepares a query's statement. One taken from the cache is used only if a query's
/// authorizer passed it before (its reads are known); any other cached statement — the
/// engine's own, prepared while it wrote its copy, or one whose notes were forgotten — is
/// thrown away and prepared again with the authorizer asked.
pub(super) fn prepare_authorized<'c>(
    conn: &'c Connection,
    refusal: &Mutex<Option<CatalogError>>,
    noted: &Mutex<Reads>,
    known: &HashMap<String, Reads>,
    sql: &str,
) -> Result<Authorized<'c>, CatalogError> {
    let key = sql.trim();
    let cacheable = key.len() <= CACHEABLE_SQL_BYTES;
    *noted.lock() = Reads::default();
    let stmt = prepare_guarded(conn, refusal, sql, cacheable)?;
    let asked = *noted.lock();
    if asked.asked {
        return Ok(Authorized {
            stmt,
            reads: asked,
            remember: cacheable,
        });
    }
    if let Some(reads) = known.get(key) {
        return Ok(Authorized {
            stmt,
            reads: *reads,
            remember: false,
        });
    }
    if let Prepared::Cached(unknown) = stmt {
        unknown.discard();
    }
    *noted.lock() = Reads::default();
    let stmt = prepare_guarded(conn, refusal, sql, cacheable)?;
    let asked = *noted.lock();
    Ok(Authorized {
        stmt,
        // A statement prepared now that asked the authorizer nothing reads nothing of the
        // `sys` tables; it is loaded with everything all the same, to be safe.
        reads: if asked.asked { asked } else { Reads::ALL },
        remember: cacheable,
    })
}

/// Remembers what a statement just prepared and cached reads.
pub(super) fn remember(known: &mut HashMap<String, Reads>, sql: &str, reads: Reads) {
    if known.len() >= KNOWN_READS {
        known.clear();
    }
    known.insert(sql.trim().to_owned(), reads);
}

/// Prepares a read of the `sys` views, or says clearly why not.
pub(super) fn prepare_guarded<'c>(
    conn: &'c Connection,
    refusal: &Mutex<Option<CatalogError>>,
    sql: &str,
    cached: bool,
) -> Result<Prepared<'c>, CatalogError> {
    limits::check_sql_length(sql)?;
    visibility::check_cte_names(sql)?;
    *refusal.lock() = None;
    let prepared = if cached {
        conn.prepare_cached(sql).map(Prepared::Cached)
    } else {
        conn.prepare(sql).map(Prepared::Once)
    };
    let refused = refusal.lock().take();
    // A refusal fails the prepare, with SQLITE_AUTH or a generic error that names it.
    let stmt = prepared.map_err(|e| refused.unwrap_or_else(|| query_error(e)))?;
    if !stmt.readonly() {
        return Err(not_a_read());
    }
    Ok(stmt)
}
