//! What one catalog query may cost: how large a value, a pattern, the query text and the result
//! may grow, how long it may run, and which SQL functions are refused or replaced because one
//! call could build a huge value or run for seconds inside a single SQLite step (where the
//! progress handler cannot stop it).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::{sqlstate, CatalogError};
use crate::value::Value;

/// How long one catalog query may run.
pub const QUERY_TIME_LIMIT: Duration = Duration::from_secs(5);
/// The most rows one catalog query may return.
pub const MAX_ROWS: usize = 100_000;
/// The most bytes one result may hold (its values as sent).
pub const MAX_RESULT_BYTES: usize = 16 << 20;
/// The largest string or blob a query may build (`SQLITE_LIMIT_LENGTH`).
pub const MAX_VALUE_BYTES: i32 = 1 << 20;
/// The longest LIKE or GLOB pattern (`SQLITE_LIMIT_LIKE_PATTERN_LENGTH`).
pub const MAX_PATTERN_BYTES: i32 = 256;
/// The longest query text.
pub const MAX_SQL_BYTES: usize = 64 << 10;
/// SQLite virtual-machine steps between two looks at the deadline.
pub const PROGRESS_STEPS: i32 = 1_000;

/// Functions a catalog query may not call: they manufacture large values (`zeroblob`,
/// `randomblob`, padding widths of `printf`/`format`, `replace`), merge JSON in quadratic time
/// (`json_patch`), or reach outside the copy (`load_extension`, `fts3_tokenizer`).
const REFUSED_FUNCTIONS: &[&str] = &[
    "zeroblob",
    "randomblob",
    "printf",
    "format",
    "replace",
    "json_patch",
    "jsonb_patch",
    "load_extension",
    "fts3_tokenizer",
];

/// Sets the size limits on a query engine's connection.
pub fn apply(conn: &Connection) {
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    conn.set_limit(Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, MAX_PATTERN_BYTES);
    conn.set_limit(
        Limit::SQLITE_LIMIT_SQL_LENGTH,
        i32::try_from(MAX_SQL_BYTES).unwrap_or(i32::MAX),
    );
}

/// Refuses a function the authorizer is asked about, if it is on the refused list.
pub fn check_function(name: &str) -> Result<(), CatalogError> {
    if REFUSED_FUNCTIONS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name))
    {
        return Err(CatalogError::denied(format!(
            "function {}() is not available in catalog queries",
            name.to_ascii_lowercase()
        )));
    }
    Ok(())
}

/// Refuses a query text longer than [`MAX_SQL_BYTES`] before SQLite reads it.
pub fn check_sql_length(sql: &str) -> Result<(), CatalogError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(CatalogError::new(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "the query text is {} bytes; catalog queries may be at most {MAX_SQL_BYTES}",
                sql.len()
            ),
        ));
    }
    Ok(())
}

pub fn time_limit_exceeded() -> CatalogError {
    CatalogError::new(
        sqlstate::QUERY_CANCELED,
        format!(
            "canceling statement: the query ran longer than the catalog query time limit ({} s)",
            QUERY_TIME_LIMIT.as_secs()
        ),
    )
}

pub fn value_too_large() -> CatalogError {
    CatalogError::new(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        format!(
            "a value in the query grew past {} bytes, the limit of catalog queries",
            MAX_VALUE_BYTES
        ),
    )
}

pub fn pattern_too_long() -> CatalogError {
    CatalogError::new(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        format!("a LIKE or GLOB pattern is longer than {MAX_PATTERN_BYTES} bytes, the limit of catalog queries"),
    )
}

/// Counts a result as it is collected, and stops it at the deadline, at [`MAX_ROWS`] rows or
/// at [`MAX_RESULT_BYTES`] bytes.
pub struct ResultBudget {
    deadline: Instant,
    rows: usize,
    bytes: usize,
}

impl ResultBudget {
    pub fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            rows: 0,
            bytes: 0,
        }
    }

    /// Before a row is taken.
    pub fn row(&mut self) -> Result<(), CatalogError> {
        if Instant::now() > self.deadline {
            return Err(time_limit_exceeded());
        }
        if self.rows >= MAX_ROWS {
            return Err(CatalogError::new(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!("the query returns more than {MAX_ROWS} rows; add a LIMIT"),
            ));
        }
        self.rows += 1;
        Ok(())
    }

    /// For each value taken.
    pub fn value(&mut self, v: &Value) -> Result<(), CatalogError> {
        self.bytes += match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 8,
            Value::Text(s) => s.len(),
        };
        if self.bytes > MAX_RESULT_BYTES {
            return Err(CatalogError::new(
                sqlstate::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "the query's result is larger than {} MiB; select fewer rows or columns",
                    MAX_RESULT_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }
}

/// Replaces SQLite's `instr(x, y)` and two-argument `trim`/`ltrim`/`rtrim`, which compare every
/// position with the whole needle or character list (a 1 MiB value against a 512 KiB one runs
/// for many seconds in one step), by versions that take time linear in their input.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("instr", 2, flags, |ctx| Ok(instr(ctx)))?;
    for (name, start, end) in [
        ("trim", true, true),
        ("ltrim", true, false),
        ("rtrim", false, true),
    ] {
        conn.create_scalar_function(name, 2, flags, move |ctx| Ok(trim(ctx, start, end)))?;
    }
    Ok(())
}

/// A function argument read as text, as SQLite would (`None` for NULL). Reals are written as
/// Rust writes them, which differs from SQLite only in exponent forms.
fn text_arg<'a>(ctx: &'a Context<'_>, i: usize) -> Option<std::borrow::Cow<'a, str>> {
    match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string().into()),
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{f:.1}").into()),
        ValueRef::Real(f) => Some(f.to_string().into()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t)),
    }
}

/// `instr(haystack, needle)`: the 1-based position of the first occurrence (characters for
/// text, bytes when both are blobs), 0 if none, NULL if either is NULL.
fn instr(ctx: &Context<'_>) -> Option<i64> {
    if let (ValueRef::Blob(h), ValueRef::Blob(n)) = (ctx.get_raw(0), ctx.get_raw(1)) {
        // Each byte as one char, so that the linear `str::find` searches bytes.
        let as_chars = |b: &[u8]| b.iter().map(|&x| char::from(x)).collect::<String>();
        let (h, n) = (as_chars(h), as_chars(n));
        return Some(position(&h, &n));
    }
    let (h, n) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?);
    Some(position(&h, &n))
}

fn position(haystack: &str, needle: &str) -> i64 {
    haystack.find(needle).map_or(0, |at| {
        i64::try_from(haystack[..at].chars().count()).unwrap_or(i64::MAX) + 1
    })
}

/// `trim(x, chars)` and its one-sided forms.
fn trim(ctx: &Context<'_>, start: bool, end: bool) -> Option<String> {
    let (text, chars) = (text_arg(ctx, 0)?, text_arg(ctx, 1)?);
    let set: HashSet<char> = chars.chars().collect();
    let mut s: &str = &text;
    if start {
        s = s.trim_start_matches(|c| set.contains(&c));
    }
    if end {
        s = s.trim_end_matches(|c| set.contains(&c));
    }
    Some(s.to_owned())
}
