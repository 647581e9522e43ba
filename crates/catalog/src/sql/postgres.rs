//! Statements that are PostgreSQL's rather than Portcullis's: data (`INSERT`, `COPY`, …),
//! schema (`CREATE TABLE`, …) and the vendor's object grants (`GRANT SELECT ON TABLE t TO
//! GROUP analysts`). A database bound to PostgreSQL runs them there (object grants with their
//! grantees resolved to upstream roles); any other answers `0A000`, saying so.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{sqlstate, CatalogError};

/// Statements that exist only in PostgreSQL.
const DATA_STATEMENTS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "COPY",
    "TRUNCATE",
    "VACUUM",
    "ANALYZE",
    "CLUSTER",
    "REINDEX",
    "LOCK",
    "LISTEN",
    "NOTIFY",
    "UNLISTEN",
    "PREPARE",
    "EXECUTE",
    "DECLARE",
    "FETCH",
    "MOVE",
    "CLOSE",
    "CALL",
    "DO",
    "COMMENT",
    "REFRESH",
    "IMPORT",
    "TABLE",
    "CHECKPOINT",
    "LOAD",
    "REASSIGN",
    "SAVEPOINT",
    "RELEASE",
    "SECURITY",
];

/// What may follow CREATE, ALTER or DROP in PostgreSQL only.
const SCHEMA_OBJECTS: &[&str] = &[
    "TABLE",
    "INDEX",
    "VIEW",
    "MATERIALIZED",
    "SCHEMA",
    "SEQUENCE",
    "FUNCTION",
    "PROCEDURE",
    "ROUTINE",
    "TRIGGER",
    "TYPE",
    "EXTENSION",
    "DOMAIN",
    "POLICY",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "OR",
    "AGGREGATE",
    "COLLATION",
    "OPERATOR",
    "PUBLICATION",
    "SUBSCRIPTION",
    "RULE",
    "TABLESPACE",
    "SERVER",
    "FOREIGN",
    "EVENT",
    "STATISTICS",
    "TEXT",
    "CAST",
    "CONVERSION",
    "LANGUAGE",
    "ACCESS",
    "TRANSFORM",
    "UNIQUE",
    "DEFAULT",
];

/// Privileges only PostgreSQL's objects have.
const OBJECT_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "EXECUTE",
    "USAGE",
    "TEMPORARY",
    "TEMP",
    "CONNECT",
    "MAINTAIN",
];

/// What a vendor grant's ON may name.
const VENDOR_TARGETS: &[&str] = &["DATABASE", "USER", "GROUP", "SYSTEM"];

fn word(t: Option<&TokenWithSpan>) -> Option<String> {
    match t.map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// The name of the PostgreSQL statement `tokens` (without whitespace) start, if they are one.
pub fn postgres_statement(tokens: &[TokenWithSpan]) -> Option<String> {
    let first = word(tokens.first())?;
    if DATA_STATEMENTS.contains(&first.as_str()) {
        return Some(first);
    }
    if matches!(first.as_str(), "CREATE" | "ALTER" | "DROP") {
        let second = word(tokens.get(1))?;
        return SCHEMA_OBJECTS
            .contains(&second.as_str())
            .then(|| format!("{first} {second}"));
    }
    if matches!(first.as_str(), "GRANT" | "REVOKE") {
        return object_grant(tokens).then(|| format!("{first} … ON an object"));
    }
    None
}

/// Whether a GRANT or REVOKE is about PostgreSQL's objects (tables, schemas, …).
fn object_grant(tokens: &[TokenWithSpan]) -> bool {
    let privilege = word(tokens.get(1)).unwrap_or_default();
    if privilege == "ROLE" {
        return false;
    }
    if OBJECT_PRIVILEGES.contains(&privilege.as_str()) {
        return true;
    }
    let on = tokens
        .iter()
        .position(|t| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ON")));
    match on.and_then(|i| tokens.get(i + 1)) {
        Some(t) => match word(Some(t)) {
            Some(target) => !VENDOR_TARGETS.contains(&target.as_str()),
            None => true,
        },
        None => false,
    }
}

/// The error for a PostgreSQL statement in a database without an upstream.
pub fn needs_upstream(what: &str) -> CatalogError {
    CatalogError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!(
            "{what} is a PostgreSQL statement, and this database is not bound to PostgreSQL: \
             here Portcullis answers only its own statements, SELECTs over sys.* and psql's \
             \\l, \\du and \\dg (an administrator can bind it: ALTER DATABASE … SET UPSTREAM \
             'postgresql://…')"
        ),
    )
}

/// A vendor object grant (`GRANT SELECT ON TABLE t TO GROUP analysts, USER bob`): the text
/// before its grantees, and each grantee with the kind it was named with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectGrant {
    pub head: String,
    pub grantees: Vec<(GranteeKind, String)>,
    /// `WITH GRANT OPTION`, `GRANTED BY …`, `CASCADE`, `RESTRICT`: kept as written.
    pub tail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranteeKind {
    User,
    Group,
    Role,
    /// No keyword: a group, role or user of that name, looked up in that order.
    Any,
    Public,
}

/// Parses one object grant (and nothing else: `None` for any other statement).
pub fn parse_object_grant(sql: &str) -> Option<ObjectGrant> {
    use sqlparser::tokenizer::Tokenizer;
    let trimmed = sql.trim().trim_end_matches(';').trim_end();
    let tokens: Vec<TokenWithSpan> =
        Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, trimmed)
            .tokenize_with_location()
            .ok()?
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
    if tokens.iter().any(|t| t.token == Token::SemiColon) {
        return None;
    }
    let first = word(tokens.first())?;
    if !matches!(first.as_str(), "GRANT" | "REVOKE") || !object_grant(&tokens) {
        return None;
    }
    let preposition = if first == "GRANT" { "TO" } else { "FROM" };
    // The last top-level TO/FROM starts the grantees (REVOKE … FROM; a GRANT's object list has
    // no TO).
    let at = tokens
        .iter()
        .rposition(|t| word(Some(t)).as_deref() == Some(preposition))?;
    let lines = super::cursor::LineIndex::new(trimmed);
    let byte = |t: &TokenWithSpan| lines.byte(t.span.start);
    let head = trimmed.get(..byte(&tokens[at]))?.trim_end().to_owned();
    let mut grantees = Vec::new();
    let mut i = at + 1;
    let mut tail = String::new();
    while i < tokens.len() {
        let kind = match word(tokens.get(i)).as_deref() {
            Some("USER") => Some(GranteeKind::User),
            Some("GROUP") => Some(GranteeKind::Group),
            Some("ROLE") => Some(GranteeKind::Role),
            _ => None,
        };
        if kind.is_some() {
            i += 1;
        }
        let name = match tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w))
                if w.quote_style.is_none()
                    && w.value.eq_ignore_ascii_case("PUBLIC")
                    && kind.is_none() =>
            {
                grantees.push((GranteeKind::Public, "PUBLIC".to_owned()));
                i += 1;
                None
            }
            Some(Token::Word(w)) => Some(w.value.clone()),
            Some(Token::SingleQuotedString(s)) => Some(s.clone()),
            _ => return None,
        };
        if let Some(mut name) = name {
            i += 1;
            // `alice@sales`: the tokenizer splits at `@`.
            if let (Some(Token::AtSign), Some(Token::Word(db))) = (
                tokens.get(i).map(|t| &t.token),
                tokens.get(i + 1).map(|t| &t.token),
            ) {
                name = format!("{name}@{}", db.value);
                i += 2;
            }
            grantees.push((kind.unwrap_or(GranteeKind::Any), name));
        }
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Comma) => i += 1,
            None => break,
            Some(_) => {
                tail = trimmed.get(byte(&tokens[i])..)?.to_owned();
                break;
            }
        }
    }
    (!grantees.is_empty()).then_some(ObjectGrant {
        head,
        grantees,
        tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_grants_are_told_from_vendor_grants() {
        let g = parse_object_grant(
            "GRANT SELECT, INSERT ON TABLE public.notes TO GROUP analysts, USER bob@sales, \
             PUBLIC, \"Ops Team\" WITH GRANT OPTION;",
        )
        .unwrap();
        assert_eq!(g.head, "GRANT SELECT, INSERT ON TABLE public.notes");
        assert_eq!(
            g.grantees,
            vec![
                (GranteeKind::Group, "analysts".into()),
                (GranteeKind::User, "bob@sales".into()),
                (GranteeKind::Public, "PUBLIC".into()),
                (GranteeKind::Any, "Ops Team".into()),
            ]
        );
        assert_eq!(g.tail, "WITH GRANT OPTION");
        let r =
            parse_object_grant("REVOKE ALL ON ALL TABLES IN SCHEMA s FROM ROLE auditor").unwrap();
        assert_eq!(r.head, "REVOKE ALL ON ALL TABLES IN SCHEMA s");
        assert_eq!(r.grantees, vec![(GranteeKind::Role, "auditor".into())]);
        for vendor in [
            "GRANT USE ON DATABASE sales TO GROUP analysts",
            "GRANT ROLE database_administrator TO USER bob",
            "REVOKE ALL ON GROUP analysts FROM USER bob",
            "GRANT SELECT ON t TO a; DROP TABLE t",
        ] {
            assert_eq!(parse_object_grant(vendor), None, "{vendor}");
        }
    }
}
