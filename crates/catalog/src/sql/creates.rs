//! The statements of a query bound for PostgreSQL, each with what it creates and where: the
//! creator-group rule (seed 003) needs to know, of every `CREATE`, whether it makes a schema
//! (decided by CREATE on the database) or an object in a schema (decided by CREATE on that
//! schema).

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::cursor::LineIndex;

/// Where a `CREATE` puts what it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Creates {
    /// `CREATE SCHEMA s` (without `AUTHORIZATION`): CREATE on the database decides.
    Schema,
    /// A table, view, sequence, function, type, … in this schema (`None`: the first schema of
    /// the search path, as PostgreSQL picks it).
    InSchema(Option<String>),
}

/// One statement of a query: its text and, for a `CREATE` of an owned object, where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub creates: Option<Creates>,
}

/// What may be created in a schema and is owned by its creator.
const OWNED_OBJECTS: &[&str] = &[
    "TABLE",
    "VIEW",
    "SEQUENCE",
    "FUNCTION",
    "PROCEDURE",
    "TYPE",
    "DOMAIN",
    "AGGREGATE",
    "COLLATION",
    "CONVERSION",
    "STATISTICS",
];

fn word(t: Option<&TokenWithSpan>) -> Option<String> {
    match t.map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// An identifier as PostgreSQL stores it: quoted as written, unquoted folded to lower case.
fn identifier(t: Option<&TokenWithSpan>) -> Option<String> {
    match t.map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style == Some('"') => Some(w.value.clone()),
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_lowercase()),
        _ => None,
    }
}

/// What a statement (its tokens, without whitespace) creates, if it is a `CREATE` of an owned
/// object outside `pg_temp`.
fn creates(tokens: &[TokenWithSpan]) -> Option<Creates> {
    if word(tokens.first()).as_deref() != Some("CREATE") {
        return None;
    }
    let mut i = 1;
    if word(tokens.get(i)).as_deref() == Some("OR")
        && word(tokens.get(i + 1)).as_deref() == Some("REPLACE")
    {
        i += 2;
    }
    // Temporary objects live in the session's own schema and vanish with it.
    while let Some(w) = word(tokens.get(i)) {
        match w.as_str() {
            "TEMP" | "TEMPORARY" | "GLOBAL" | "LOCAL" => return None,
            "UNLOGGED" | "MATERIALIZED" | "RECURSIVE" | "TRUSTED" | "PROCEDURAL" => i += 1,
            _ => break,
        }
    }
    let kind = word(tokens.get(i))?;
    i += 1;
    if word(tokens.get(i)).as_deref() == Some("IF") {
        i += 3; // IF NOT EXISTS
    }
    if kind == "SCHEMA" {
        // `CREATE SCHEMA AUTHORIZATION r` or `CREATE SCHEMA s AUTHORIZATION r`: the owner is
        // written out.
        let explicit = tokens[i.min(tokens.len())..]
            .iter()
            .take(2)
            .any(|t| word(Some(t)).as_deref() == Some("AUTHORIZATION"));
        return (!explicit).then_some(Creates::Schema);
    }
    if !OWNED_OBJECTS.contains(&kind.as_str()) {
        return None;
    }
    // name, schema.name or database.schema.name
    let mut parts = vec![identifier(tokens.get(i))?];
    while tokens.get(i + 1).map(|t| &t.token) == Some(&Token::Period) {
        i += 2;
        parts.push(identifier(tokens.get(i))?);
    }
    let schema = (parts.len() >= 2).then(|| parts[parts.len() - 2].clone());
    if schema.as_deref() == Some("pg_temp") {
        return None;
    }
    Some(Creates::InSchema(schema))
}

/// The statements of a PostgreSQL query, in order. `None` when it cannot be split the way
/// PostgreSQL splits it (a tokenizer error, or a `BEGIN ATOMIC` body with `;` inside).
pub fn pieces(sql: &str) -> Option<Vec<Piece>> {
    let tokens = Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let lines = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut chunk: Vec<TokenWithSpan> = Vec::new();
    for t in tokens
        .into_iter()
        .chain(std::iter::once(TokenWithSpan::wrap(Token::SemiColon)))
    {
        match &t.token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ATOMIC") => {
                return None
            }
            Token::SemiColon => {
                if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                    let text = sql
                        .get(lines.byte(first.span.start)..lines.byte(last.span.end))?
                        .to_owned();
                    out.push(Piece {
                        text,
                        creates: creates(&chunk),
                    });
                }
                chunk.clear();
            }
            _ => chunk.push(t),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Option<Creates> {
        let p = pieces(sql).unwrap();
        assert_eq!(p.len(), 1, "{sql}");
        p[0].creates.clone()
    }

    #[test]
    fn creates_are_told_with_their_schema() {
        let in_schema = |s: &str| Some(Creates::InSchema(Some(s.to_owned())));
        assert_eq!(one("CREATE TABLE t (a int)"), Some(Creates::InSchema(None)));
        assert_eq!(one("create table Finance.T (a int)"), in_schema("finance"));
        assert_eq!(
            one("CREATE TABLE \"Finance\".t (a int)"),
            in_schema("Finance")
        );
        assert_eq!(one("CREATE TABLE sales.finance.t ()"), in_schema("finance"));
        assert_eq!(
            one("CREATE TABLE IF NOT EXISTS s.t AS SELECT 1"),
            in_schema("s")
        );
        assert_eq!(
            one("CREATE OR REPLACE VIEW s.v AS SELECT 1"),
            in_schema("s")
        );
        assert_eq!(
            one("CREATE MATERIALIZED VIEW s.v AS SELECT 1"),
            in_schema("s")
        );
        assert_eq!(one("CREATE UNLOGGED TABLE s.t ()"), in_schema("s"));
        assert_eq!(
            one("CREATE FUNCTION s.f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$"),
            in_schema("s")
        );
        assert_eq!(one("CREATE SCHEMA finance"), Some(Creates::Schema));
        assert_eq!(
            one("CREATE SCHEMA IF NOT EXISTS finance"),
            Some(Creates::Schema)
        );
        for not_owned_by_the_rule in [
            "CREATE SCHEMA finance AUTHORIZATION bob",
            "CREATE SCHEMA AUTHORIZATION bob",
            "CREATE TEMP TABLE t (a int)",
            "CREATE GLOBAL TEMPORARY TABLE t (a int)",
            "CREATE TABLE pg_temp.t (a int)",
            "CREATE INDEX i ON t (a)",
            "CREATE EXTENSION hstore",
            "INSERT INTO t VALUES (1)",
            "SELECT 'CREATE TABLE x ()'",
        ] {
            assert_eq!(one(not_owned_by_the_rule), None, "{not_owned_by_the_rule}");
        }
    }

    #[test]
    fn queries_split_as_postgresql_splits_them() {
        let p =
            pieces("CREATE TABLE a (x text DEFAULT ';'); ; INSERT INTO a VALUES ($$;$$);").unwrap();
        assert_eq!(
            p.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
            [
                "CREATE TABLE a (x text DEFAULT ';')",
                "INSERT INTO a VALUES ($$;$$)"
            ]
        );
        assert_eq!(p[0].creates, Some(Creates::InSchema(None)));
        assert_eq!(p[1].creates, None);
        assert_eq!(
            pieces("CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END"),
            None
        );
    }
}
