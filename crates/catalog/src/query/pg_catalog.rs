//! A few `pg_catalog` views over the catalog, so that psql's `\l`, `\du` and `\dg` answer in a
//! database without an upstream: `pg_database`, `pg_roles` (users, groups and roles, by their
//! qualified names), `pg_auth_members`, `pg_user`. They are views over the `sys` views, so they
//! show only what the caller may VIEW. The PostgreSQL-only syntax those queries use is
//! translated, token by token, into SQLite's: `pg_catalog.` prefixes, `E'…'` strings, `::type`
//! casts, `COLLATE pg_catalog.default`, the regular-expression operators (`~`, `!~`,
//! `OPERATOR(pg_catalog.~)`, run by a linear-time engine) and `ARRAY(SELECT …)`.

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

/// The tables emulated, each a view in the `sys` schema.
const TABLES: &[&str] = &["pg_database", "pg_roles", "pg_auth_members", "pg_user"];

/// Object ids: catalog ids (one sequence for users, groups and roles) above PostgreSQL's
/// `FirstNormalObjectId`; 10 is the owner of every database, `portcullis`.
const VIEWS: &str = r#"
CREATE VIEW sys.pg_database AS
  SELECT 16384 + id AS oid, name AS datname, 10 AS datdba, 6 AS encoding,
    'c' AS datlocprovider, 'f' AS datistemplate, 't' AS datallowconn, -1 AS datconnlimit,
    'C' AS datcollate, 'C' AS datctype, NULL AS daticulocale, NULL AS daticurules,
    NULL AS datlocale, NULL AS datcollversion, NULL AS datacl
  FROM sys.databases;
CREATE VIEW sys.pg_roles AS
  SELECT 10 AS oid, 'portcullis' AS rolname, 'f' AS rolsuper, 't' AS rolinherit,
    'f' AS rolcreaterole, 'f' AS rolcreatedb, 'f' AS rolcanlogin, 'f' AS rolreplication,
    -1 AS rolconnlimit, '********' AS rolpassword, NULL AS rolvaliduntil, 'f' AS rolbypassrls,
    NULL AS rolconfig
  UNION ALL
  SELECT 16384 + id, fqun, 'f', 't', 'f', 'f', CASE state WHEN 'ACTIVE' THEN 't' ELSE 'f' END,
    'f', -1, '********', NULL, 'f', NULL
  FROM sys.users
  UNION ALL
  SELECT 16384 + id, fqgn, 'f', 't', 'f', 'f', 'f', 'f', -1, '********', NULL, 'f', NULL
  FROM sys.groups
  UNION ALL
  SELECT 16384 + id, name || '@' || database_name, 'f', 't', 'f', 'f', 'f', 'f', -1,
    '********', NULL, 'f', NULL
  FROM sys.roles;
CREATE VIEW sys.pg_user AS
  SELECT rolname AS usename, oid AS usesysid, rolcreatedb AS usecreatedb,
    rolsuper AS usesuper, rolreplication AS userepl, rolbypassrls AS usebypassrls,
    rolpassword AS passwd, rolvaliduntil AS valuntil, rolconfig AS useconfig
  FROM sys.pg_roles WHERE rolcanlogin = 't';
CREATE VIEW sys.pg_auth_members AS
  SELECT 16384 + group_id AS roleid, 16384 + user_id AS member, 10 AS grantor,
    'f' AS admin_option, 't' AS inherit_option, 't' AS set_option
  FROM sys.group_members
  UNION ALL
  SELECT 16384 + role_id, 16384 + member_id, 10, 'f', 't', 't'
  FROM sys.role_members;
"#;

pub fn create_views(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(VIEWS)
}

/// The functions psql's catalog queries call.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("pg_encoding_to_char", 1, flags, |ctx| {
        let n: Option<i64> = ctx.get(0)?;
        Ok(n.map(|n| if n == 6 { "UTF8" } else { "SQL_ASCII" }))
    })?;
    conn.create_scalar_function("pg_get_userbyid", 1, flags, |ctx| {
        let n: Option<i64> = ctx.get(0)?;
        Ok(n.map(|n| {
            if n == 10 {
                "portcullis".to_owned()
            } else {
                format!("unknown (OID={n})")
            }
        }))
    })?;
    conn.create_scalar_function("array_to_string", 2, flags, |ctx| {
        let array: Option<String> = ctx.get(0)?;
        let sep: String = ctx.get::<Option<String>>(1)?.unwrap_or_default();
        Ok(array.map(|a| {
            a.trim_start_matches('{')
                .trim_end_matches('}')
                .split(',')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(&sep)
        }))
    })?;
    conn.create_scalar_function("pg_regex_match", 2, flags, |ctx| {
        let text: Option<String> = ctx.get(0)?;
        let pattern: Option<String> = ctx.get(1)?;
        let (Some(text), Some(pattern)) = (text, pattern) else {
            return Ok(None);
        };
        if pattern.len() > usize::try_from(super::limits::MAX_PATTERN_BYTES).unwrap_or(256) {
            return Err(rusqlite::Error::UserFunctionError(
                "regular expression pattern too complex".into(),
            ));
        }
        let re = regex_lite::Regex::new(&pattern)
            .map_err(|e| rusqlite::Error::UserFunctionError(e.to_string().into()))?;
        Ok(Some(re.is_match(&text)))
    })?;
    Ok(())
}

/// Whether the query may use PostgreSQL-only syntax worth translating.
fn worth_translating(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    ["pg_", "::", "~", "e'", "array", "collate"]
        .iter()
        .any(|needle| lower.contains(needle))
}

fn word(t: &Token) -> Option<&Word> {
    match t {
        Token::Word(w) if w.quote_style.is_none() => Some(w),
        _ => None,
    }
}

fn is_word(t: Option<&Token>, text: &str) -> bool {
    t.and_then(word)
        .is_some_and(|w| w.value.eq_ignore_ascii_case(text))
}

/// The query in SQLite's syntax (the same text when there is nothing to translate or it
/// cannot be tokenized: SQLite then says what is wrong).
pub fn translate(sql: &str) -> String {
    if !worth_translating(sql) {
        return sql.to_owned();
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return sql.to_owned();
    };
    let tokens: Vec<Token> = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        // `pg_catalog.x`: an emulated table becomes `sys.x`, anything else plain `x`.
        if is_word(Some(t), "pg_catalog") && tokens.get(i + 1) == Some(&Token::Period) {
            i += 2;
            if let Some(name) = tokens.get(i).and_then(word) {
                if TABLES.iter().any(|n| name.value.eq_ignore_ascii_case(n)) {
                    out.push(format!("sys.{}", name.value.to_ascii_lowercase()));
                    i += 1;
                }
            }
            continue;
        }
        if let Some(w) = word(t) {
            let after_period = i > 0 && tokens[i - 1] == Token::Period;
            let call = tokens.get(i + 1) == Some(&Token::LParen);
            if !after_period && !call && TABLES.iter().any(|n| w.value.eq_ignore_ascii_case(n)) {
                out.push(format!("sys.{}", w.value.to_ascii_lowercase()));
                i += 1;
                continue;
            }
        }
        match t {
            // `::type`, `::pg_catalog.type`, `::type[]`: SQLite's values carry no such types.
            Token::DoubleColon => {
                i += 1;
                if is_word(tokens.get(i), "pg_catalog") && tokens.get(i + 1) == Some(&Token::Period)
                {
                    i += 2;
                }
                if tokens.get(i).and_then(word).is_some() {
                    i += 1;
                }
                if tokens.get(i) == Some(&Token::LBracket)
                    && tokens.get(i + 1) == Some(&Token::RBracket)
                {
                    i += 2;
                }
                continue;
            }
            Token::Word(w)
                if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("COLLATE") =>
            {
                // `COLLATE pg_catalog.default` / `COLLATE "C"`: dropped.
                i += 1;
                if is_word(tokens.get(i), "pg_catalog") && tokens.get(i + 1) == Some(&Token::Period)
                {
                    i += 2;
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        // The regular-expression operators: `a ~ 'p'`, `a !~ 'p'`, `a OPERATOR(pg_catalog.~) 'p'`.
        let (negated, skip) = match t {
            Token::Tilde => (Some(false), 1),
            Token::ExclamationMarkTilde => (Some(true), 1),
            Token::Word(w)
                if w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("OPERATOR")
                    && tokens.get(i + 1) == Some(&Token::LParen) =>
            {
                let mut j = i + 2;
                if is_word(tokens.get(j), "pg_catalog") && tokens.get(j + 1) == Some(&Token::Period)
                {
                    j += 2;
                }
                match (tokens.get(j), tokens.get(j + 1)) {
                    (Some(Token::Tilde), Some(Token::RParen)) => (Some(false), j + 2 - i),
                    (Some(Token::ExclamationMarkTilde), Some(Token::RParen)) => {
                        (Some(true), j + 2 - i)
                    }
                    _ => (None, 0),
                }
            }
            _ => (None, 0),
        };
        if let Some(negated) = negated {
            let left = pop_operand(&mut out);
            i += skip;
            let right = tokens.get(i).map(emit).unwrap_or_default();
            i += 1;
            out.push(format!(
                "{}pg_regex_match({left}, {right})",
                if negated { "NOT " } else { "" }
            ));
            continue;
        }
        // `ARRAY(SELECT list FROM …)`: the list's values joined as a PostgreSQL array literal.
        if is_word(Some(t), "ARRAY")
            && tokens.get(i + 1) == Some(&Token::LParen)
            && is_word(tokens.get(i + 2), "SELECT")
        {
            let mut j = i + 3;
            let mut depth = 0usize;
            let mut list = Vec::new();
            while let Some(tok) = tokens.get(j) {
                match tok {
                    Token::LParen => depth += 1,
                    Token::RParen if depth == 0 => break,
                    Token::RParen => depth -= 1,
                    _ if depth == 0 && is_word(Some(tok), "FROM") => break,
                    _ => {}
                }
                list.push(emit(tok));
                j += 1;
            }
            out.push(format!(
                "(SELECT '{{' || ifnull(group_concat({}, ','), '') || '}}'",
                list.join(" ")
            ));
            i = j;
            continue;
        }
        out.push(emit(t));
        i += 1;
    }
    out.join(" ")
}

/// A token as SQLite text: string literals of every PostgreSQL kind as standard ones (their
/// quotes doubled), quoted names with their quotes doubled.
fn emit(t: &Token) -> String {
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match t {
        Token::SingleQuotedString(s)
        | Token::EscapedStringLiteral(s)
        | Token::NationalStringLiteral(s)
        | Token::UnicodeStringLiteral(s) => quoted(s),
        Token::DollarQuotedString(d) => quoted(&d.value),
        Token::Word(w) if w.quote_style == Some('"') => {
            format!("\"{}\"", w.value.replace('"', "\"\""))
        }
        other => other.to_string(),
    }
}

/// Takes the operand just before an operator off the output: a (qualified) name or a literal.
fn pop_operand(out: &mut Vec<String>) -> String {
    let Some(last) = out.pop() else {
        return String::new();
    };
    let mut parts = vec![last];
    while out.len() >= 2 && out[out.len() - 1] == "." {
        let dot = out.pop().unwrap_or_default();
        let name = out.pop().unwrap_or_default();
        parts.push(dot);
        parts.push(name);
    }
    parts.reverse();
    parts.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_catalog_syntax_becomes_sqlite_syntax() {
        assert_eq!(
            translate("SELECT * FROM sys.users"),
            "SELECT * FROM sys.users"
        );
        let t = translate(
            "SELECT pg_catalog.array_to_string(d.datacl, E'\\n') AS \"x\" \
             FROM pg_catalog.pg_database d WHERE r.rolname !~ '^pg_' \
             AND r.rolname OPERATOR(pg_catalog.~) '^(alice)$' COLLATE pg_catalog.default \
             AND c.oid::pg_catalog.regclass::text = 'x'",
        );
        assert_eq!(
            t,
            "SELECT array_to_string ( d . datacl , '\n' ) AS \"x\" FROM sys.pg_database d \
             WHERE NOT pg_regex_match(r.rolname, '^pg_') AND pg_regex_match(r.rolname, \
             '^(alice)$') AND c . oid = 'x'"
        );
        assert_eq!(
            translate("SELECT 'it''s', \"a\"\"b\" FROM t WHERE x ~ 'a''b'"),
            "SELECT 'it''s' , \"a\"\"b\" FROM t WHERE pg_regex_match(x, 'a''b')"
        );
        let t = translate(
            "SELECT ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) as memberof",
        );
        assert_eq!(
            t,
            "SELECT (SELECT '{' || ifnull(group_concat(b . rolname, ','), '') || '}' FROM \
             sys.pg_auth_members m JOIN sys.pg_roles b ON ( m . roleid = b . oid ) WHERE \
             m . member = r . oid ) as memberof"
        );
    }
}
