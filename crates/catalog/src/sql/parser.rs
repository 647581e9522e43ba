//! Recursive-descent parser of the admin dialect (grammar in docs/sql.md).

use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::ast::*;
use super::cursor::{Cursor, LineIndex, PortcullisDialect};
use crate::error::CatalogError;
use crate::names::QualifiedName;
use crate::privileges::{Action, ObjectKind, Privilege};
use crate::settings::SecuritySetting;
use crate::sso::{Property, PropertyValue};

/// The longest statement text accepted (a guard, far above any real admin statement).
pub const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// Parses a statement string that may hold several statements separated by `;`.
pub fn parse_statements(sql: &str) -> Result<Vec<Statement>, CatalogError> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(CatalogError::new(
            crate::error::sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!("statement is too long (limit {MAX_STATEMENT_BYTES} bytes)"),
        ));
    }
    let lines = LineIndex::new(sql);
    let end_position = sql.chars().count() + 1;
    let tokens = Tokenizer::new(&PortcullisDialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            CatalogError::syntax(
                format!("syntax error: {}", e.message),
                lines.position(e.location),
            )
        })?;
    let mut statements = Vec::new();
    let mut chunk: Vec<TokenWithSpan> = Vec::new();
    for t in tokens
        .into_iter()
        .chain(std::iter::once(TokenWithSpan::wrap(Token::SemiColon)))
    {
        match t.token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::SemiColon => {
                if !chunk.is_empty() {
                    let tokens = std::mem::take(&mut chunk);
                    statements.push(parse_one(sql, tokens, &lines, end_position)?);
                }
            }
            _ => chunk.push(t),
        }
    }
    Ok(statements)
}

fn parse_one(
    sql: &str,
    tokens: Vec<TokenWithSpan>,
    lines: &LineIndex,
    end_position: usize,
) -> Result<Statement, CatalogError> {
    let start = tokens
        .first()
        .map(|t| lines.byte(t.span.start))
        .unwrap_or(0);
    let end = tokens.last().map(|t| lines.byte(t.span.end)).unwrap_or(0);
    if let Some(what) = super::postgres::postgres_statement(&tokens) {
        return Err(super::postgres::needs_upstream(&what));
    }
    let mut c = Cursor::new(tokens, lines, end_position);
    let statement =
        if c.peek_keyword("SELECT") || c.peek_keyword("WITH") || c.peek_keyword("VALUES") {
            c.skip_rest();
            Statement::Query(sql.get(start..end).unwrap_or_default().to_owned())
        } else if c.keyword("CREATE") {
            create(&mut c)?
        } else if c.keyword("DROP") {
            drop(&mut c)?
        } else if c.keyword("ALTER") {
            alter(&mut c)?
        } else if c.keyword("GRANT") {
            grant(&mut c, true)?
        } else if c.keyword("REVOKE") {
            grant(&mut c, false)?
        } else if c.keywords(&["EXPLAIN", "AUTHENTICATION", "FOR", "USER"]) {
            let user = c.string("the user name as a single-quoted string")?;
            let database = if c.keyword("DATABASE") {
                Some(database_name(&mut c)?)
            } else {
                None
            };
            Statement::ExplainUser { user, database }
        } else if c.keywords(&["EXPLAIN", "AUTHENTICATION"]) {
            let token = c.string("the token as a single-quoted string")?;
            let database = if c.keyword("FOR") {
                c.expect_keyword("DATABASE")?;
                Some(database_name(&mut c)?)
            } else {
                None
            };
            Statement::ExplainAuthentication { token, database }
        } else if c.keyword("SET") {
            let name = c.identifier("a parameter name").unwrap_or_default();
            c.skip_rest();
            Statement::SetParameter(name)
        } else if c.keyword("SHOW") {
            let name = c.identifier("a parameter name")?;
            Statement::Show(name)
        } else if c.one_of(&["BEGIN", "START"]).is_some() {
            c.skip_rest();
            Statement::Transaction(TransactionControl::Begin)
        } else if c.one_of(&["COMMIT", "END"]).is_some() {
            c.skip_rest();
            Statement::Transaction(TransactionControl::Commit)
        } else if c.one_of(&["ROLLBACK", "ABORT"]).is_some() {
            c.skip_rest();
            Statement::Transaction(TransactionControl::Rollback)
        } else if let Some(word) = c.one_of(&["DISCARD", "DEALLOCATE", "RESET"]) {
            c.skip_rest();
            Statement::Noop(word)
        } else {
            return c
                .expected("a statement (SELECT, CREATE, ALTER, DROP, GRANT, REVOKE, SET, SHOW)");
        };
    if !c.at_end() {
        return c.expected("end of statement");
    }
    Ok(statement)
}

fn if_not_exists(c: &mut Cursor) -> bool {
    c.keywords(&["IF", "NOT", "EXISTS"])
}

fn if_exists(c: &mut Cursor) -> bool {
    c.keywords(&["IF", "EXISTS"])
}

fn qualified(c: &mut Cursor, what: &str) -> Result<QualifiedName, CatalogError> {
    let text = c.identifier(what)?;
    match QualifiedName::parse(&text) {
        Some(name) => Ok(name),
        None => Err(CatalogError::new(
            crate::error::sqlstate::SYNTAX_ERROR,
            format!("invalid name \"{text}\": expected name or name@database"),
        )),
    }
}

fn list<T>(
    c: &mut Cursor,
    mut item: impl FnMut(&mut Cursor) -> Result<T, CatalogError>,
) -> Result<Vec<T>, CatalogError> {
    let mut items = vec![item(c)?];
    while c.token(&Token::Comma) {
        items.push(item(c)?);
    }
    Ok(items)
}

fn database_name(c: &mut Cursor) -> Result<String, CatalogError> {
    c.identifier("a database name")
}

fn create(c: &mut Cursor) -> Result<Statement, CatalogError> {
    if c.keyword("DATABASE") {
        let if_not_exists = if_not_exists(c);
        let name = database_name(c)?;
        let upstream = if c.keyword("UPSTREAM") {
            Some(c.string("the upstream URL ('postgresql://…')")?)
        } else {
            None
        };
        Ok(Statement::CreateDatabase {
            name,
            if_not_exists,
            upstream,
        })
    } else if c.keyword("USER") {
        let if_not_exists = if_not_exists(c);
        let name = qualified(c, "a user name")?;
        let attributes = list(c, user_attribute)?;
        Ok(Statement::CreateUser {
            name,
            if_not_exists,
            attributes,
        })
    } else if c.keyword("GROUP") {
        let if_not_exists = if_not_exists(c);
        let name = qualified(c, "a group name")?;
        Ok(Statement::CreateGroup {
            name,
            if_not_exists,
        })
    } else if c.keywords(&["SSO", "INTEGRATION"]) {
        let if_not_exists = if_not_exists(c);
        let name = c.identifier("an integration name")?;
        c.expect_keyword("PROTOCOL")?;
        let protocol = protocol(c)?;
        let properties = list(c, property)?;
        Ok(Statement::CreateSsoIntegration {
            name,
            if_not_exists,
            protocol,
            properties,
        })
    } else if c.keyword("CONNECTIVITY_POOL") {
        let if_not_exists = if_not_exists(c);
        let name = c.identifier("a connectivity pool name")?;
        c.expect_keyword("LISTEN")?;
        c.token(&Token::Eq);
        let listen = c.string("a quoted 'host:port' address")?;
        let advertised = if c.keyword("ADVERTISED") {
            c.token(&Token::Eq);
            Some(c.string("a quoted 'host[:port]' browsers reach the server by")?)
        } else {
            None
        };
        Ok(Statement::CreateConnectivityPool {
            name,
            if_not_exists,
            listen,
            advertised,
        })
    } else {
        c.expected("DATABASE, USER, GROUP, SSO INTEGRATION or CONNECTIVITY_POOL")
    }
}

/// The protocol word of an integration: `oidc` or `ldap` (any case).
fn protocol(c: &mut Cursor) -> Result<String, CatalogError> {
    match c.peek() {
        Some(Token::Word(w)) => match crate::sso::SsoProtocol::parse(&w.value) {
            Some(p) => {
                c.next();
                Ok(p.as_str().to_owned())
            }
            None => c.expected("the SSO protocol OIDC, LDAP or SAML"),
        },
        _ => c.expected("the SSO protocol OIDC, LDAP or SAML"),
    }
}

/// One scalar property value: a bare word, a number, or a single- or double-quoted string.
/// Case is kept (client ids and claim names are case-sensitive).
fn property_scalar(c: &mut Cursor) -> Result<String, CatalogError> {
    let value = match c.peek() {
        Some(Token::Word(w)) => w.value.clone(),
        Some(Token::SingleQuotedString(s)) => s.clone(),
        Some(Token::Number(n, _)) => n.clone(),
        _ => return c.expected("a value (a word, a number or a quoted string)"),
    };
    c.next();
    Ok(value)
}

fn property(c: &mut Cursor) -> Result<Property, CatalogError> {
    let name = c.identifier("an SSO property name")?;
    if !c.token(&Token::Eq) {
        return c.expected("=");
    }
    let value = if c.token(&Token::LBracket) {
        let mut items = Vec::new();
        if !c.token(&Token::RBracket) {
            items = list(c, property_scalar)?;
            if !c.token(&Token::RBracket) {
                return c.expected("] or ,");
            }
        }
        PropertyValue::List(items)
    } else if c.token(&Token::LBrace) {
        let mut pairs = Vec::new();
        if !c.token(&Token::RBrace) {
            pairs = list(c, |c| {
                let k = property_scalar(c)?;
                if !c.token(&Token::Eq) {
                    return c.expected("=");
                }
                Ok((k, property_scalar(c)?))
            })?;
            if !c.token(&Token::RBrace) {
                return c.expected("} or ,");
            }
        }
        PropertyValue::Map(pairs)
    } else if c.keyword("NULL") {
        PropertyValue::Null
    } else {
        PropertyValue::Text(property_scalar(c)?)
    };
    Ok(Property { name, value })
}

fn drop(c: &mut Cursor) -> Result<Statement, CatalogError> {
    if c.keyword("DATABASE") {
        let if_exists = if_exists(c);
        let names = list(c, database_name)?;
        Ok(Statement::DropDatabase { names, if_exists })
    } else if c.keyword("USER") {
        let if_exists = if_exists(c);
        let names = list(c, |c| qualified(c, "a user name"))?;
        Ok(Statement::DropUser { names, if_exists })
    } else if c.keyword("GROUP") {
        let if_exists = if_exists(c);
        let names = list(c, |c| qualified(c, "a group name"))?;
        Ok(Statement::DropGroup { names, if_exists })
    } else if c.keywords(&["SSO", "INTEGRATION"]) {
        let if_exists = if_exists(c);
        let names = list(c, |c| c.identifier("an integration name"))?;
        Ok(Statement::DropSsoIntegration { names, if_exists })
    } else if c.keyword("CONNECTIVITY_POOL") {
        let if_exists = if_exists(c);
        let names = list(c, |c| c.identifier("a connectivity pool name"))?;
        Ok(Statement::DropConnectivityPool { names, if_exists })
    } else {
        c.expected("DATABASE, USER, GROUP, SSO INTEGRATION or CONNECTIVITY_POOL")
    }
}

fn user_attribute(c: &mut Cursor) -> Result<UserAttribute, CatalogError> {
    let Some(key) = c.one_of(&["PASSWORD", "FIRST_NAME", "LAST_NAME", "EMAIL"]) else {
        return c.expected("PASSWORD, FIRST_NAME, LAST_NAME or EMAIL");
    };
    c.token(&Token::Eq);
    let value = c.string("a quoted string")?;
    Ok(match key {
        "PASSWORD" => UserAttribute::Password(value),
        "FIRST_NAME" => UserAttribute::FirstName(value),
        "LAST_NAME" => UserAttribute::LastName(value),
        _ => UserAttribute::Email(value),
    })
}

fn setting_change(c: &mut Cursor, scope: SettingScope) -> Result<Statement, CatalogError> {
    let reset = match c.one_of(&["SET", "RESET"]) {
        Some("SET") => false,
        Some(_) => true,
        None => return c.expected("SET or RESET"),
    };
    let name = c.identifier("a setting name")?;
    let Some(setting) = SecuritySetting::from_name(&name) else {
        return Err(CatalogError::new(
            crate::error::sqlstate::UNDEFINED_OBJECT,
            format!(
                "unknown setting \"{name}\"; the settings are {}",
                SecuritySetting::ALL.map(|s| s.name()).join(", ")
            ),
        ));
    };
    let value = if reset {
        None
    } else {
        if !c.token(&Token::Eq) && !c.keyword("TO") {
            return c.expected("= or TO");
        }
        Some(c.integer("an integer")?)
    };
    Ok(Statement::SetSecuritySetting {
        scope,
        setting,
        value,
    })
}

fn alter(c: &mut Cursor) -> Result<Statement, CatalogError> {
    if c.keyword("SYSTEM") {
        if c.keywords(&["END", "SESSION"]) {
            let id = c.string("a session id ('…', from sys.sessions)")?;
            return Ok(Statement::EndSession { id });
        }
        setting_change(c, SettingScope::System)
    } else if c.keyword("DATABASE") {
        let name = database_name(c)?;
        if c.keywords(&["SET", "UPSTREAM"]) {
            let url = c.string("the upstream URL ('postgresql://…')")?;
            return Ok(Statement::SetUpstream {
                database: name,
                url: Some(url),
            });
        }
        if c.keywords(&["REMOVE", "UPSTREAM"]) {
            return Ok(Statement::SetUpstream {
                database: name,
                url: None,
            });
        }
        if c.keywords(&["REMOVE", "SSO", "INTEGRATION"]) {
            return Ok(Statement::RemoveSsoIntegration {
                target: SsoTarget::Database(name),
            });
        }
        for (words, replace) in [
            (["SET", "SSO", "INTEGRATION"], true),
            (["ALTER", "SSO", "INTEGRATION"], false),
        ] {
            if c.keywords(&words) {
                return database_sso(c, name, replace);
            }
        }
        setting_change(c, SettingScope::Database(name))
    } else if c.keyword("CONNECTIVITY_POOL") {
        let pool = c.identifier("a connectivity pool name")?;
        let target = SsoTarget::ConnectivityPool(pool);
        if c.keywords(&["REMOVE", "SSO", "INTEGRATION"]) {
            Ok(Statement::RemoveSsoIntegration { target })
        } else if c.keywords(&["SET", "SSO", "INTEGRATION"]) {
            let name = c.identifier("an integration name")?;
            Ok(Statement::AssignSsoIntegration { target, name })
        } else {
            c.expected("SET SSO INTEGRATION or REMOVE SSO INTEGRATION")
        }
    } else if c.keywords(&["SSO", "INTEGRATION"]) {
        let name = c.identifier("an integration name")?;
        c.keyword("SET");
        let properties = list(c, property)?;
        Ok(Statement::AlterSsoIntegration { name, properties })
    } else if c.keyword("GROUP") {
        let group = qualified(c, "a group name")?;
        if let Some(word) = c.one_of(&["ADD", "REMOVE", "DROP"]) {
            c.expect_keyword("USER")?;
            let users = list(c, |c| qualified(c, "a user name"))?;
            Ok(Statement::AlterGroupMembers {
                group,
                add: word == "ADD",
                users,
            })
        } else if c.peek_keyword("SET") || c.peek_keyword("RESET") {
            setting_change(c, SettingScope::Group(group))
        } else {
            c.expected("ADD USER, REMOVE USER, SET or RESET")
        }
    } else if c.keyword("USER") {
        let name = qualified(c, "a user name")?;
        let action = if c.keyword("ENABLE") {
            AlterUserAction::Enable
        } else if c.keyword("DISABLE") {
            AlterUserAction::Disable
        } else if c.keyword("RENAME") {
            c.expect_keyword("TO")?;
            AlterUserAction::RenameTo(c.identifier("a new user name")?)
        } else {
            c.keyword("SET");
            AlterUserAction::Set(list(c, user_attribute)?)
        };
        Ok(Statement::AlterUser { name, action })
    } else {
        c.expected("SYSTEM, DATABASE, GROUP, USER, SSO INTEGRATION or CONNECTIVITY_POOL")
    }
}

/// After `ALTER DATABASE d {SET | ALTER} SSO INTEGRATION`: either a name alone (assign a named
/// integration) or the protocol and properties of the database's own integration.
fn database_sso(
    c: &mut Cursor,
    database: String,
    replace: bool,
) -> Result<Statement, CatalogError> {
    let word = c.identifier("an integration name or the protocol OIDC, LDAP or SAML")?;
    if c.at_end() {
        if !replace {
            return c.expected("the properties to change");
        }
        return Ok(Statement::AssignSsoIntegration {
            target: SsoTarget::Database(database),
            name: word,
        });
    }
    let Some(protocol) = crate::sso::SsoProtocol::parse(&word) else {
        return Err(CatalogError::invalid(format!(
            "unknown SSO protocol \"{word}\": the protocols are OIDC, LDAP and SAML"
        )));
    };
    let properties = list(c, property)?;
    Ok(Statement::DatabaseSsoProperties {
        database,
        replace,
        protocol: protocol.as_str().to_owned(),
        properties,
    })
}

fn privilege(c: &mut Cursor) -> Result<Privilege, CatalogError> {
    let word = match c.peek() {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.clone(),
        _ => return c.expected("a privilege (USE, CREATE, ALTER, DROP, VIEW, SYSAUTH, ALL)"),
    };
    let Some(action) = Action::from_word(&word) else {
        return c.expected("a privilege (USE, CREATE, ALTER, DROP, VIEW, SYSAUTH, ALL)");
    };
    c.next();
    if action == Action::All {
        c.keyword("PRIVILEGES");
        return Ok(Privilege::new(action));
    }
    // `CREATE USER ON DATABASE d`: a kind word directly followed by ON or a comma.
    let kind = match c.peek() {
        Some(Token::Word(w)) if w.quote_style.is_none() => ObjectKind::from_word(&w.value),
        _ => None,
    };
    if let Some(kind) = kind {
        c.next();
        return Ok(Privilege::on_kind(action, kind));
    }
    Ok(Privilege::new(action))
}

fn target(c: &mut Cursor) -> Result<GrantTarget, CatalogError> {
    if c.keyword("SYSTEM") {
        Ok(GrantTarget::System)
    } else if c.keyword("DATABASE") {
        Ok(GrantTarget::Database(database_name(c)?))
    } else if c.keyword("USER") {
        Ok(GrantTarget::User(qualified(c, "a user name")?))
    } else if c.keyword("GROUP") {
        Ok(GrantTarget::Group(qualified(c, "a group name")?))
    } else {
        c.expected("SYSTEM, DATABASE, USER or GROUP")
    }
}

fn grantee(c: &mut Cursor) -> Result<Grantee, CatalogError> {
    if c.keyword("USER") {
        Ok(Grantee::User(qualified(c, "a user name")?))
    } else if c.keyword("GROUP") {
        Ok(Grantee::Group(qualified(c, "a group name")?))
    } else if c.keyword("ROLE") {
        Ok(Grantee::Role(qualified(c, "a role name")?))
    } else {
        c.expected("USER, GROUP or ROLE")
    }
}

fn grant(c: &mut Cursor, is_grant: bool) -> Result<Statement, CatalogError> {
    let preposition = if is_grant { "TO" } else { "FROM" };
    if c.keyword("ROLE") {
        let role = qualified(c, "a role name")?;
        c.expect_keyword(preposition)?;
        let grantee = grantee(c)?;
        return Ok(if is_grant {
            Statement::GrantRole { role, grantee }
        } else {
            Statement::RevokeRole { role, grantee }
        });
    }
    let privileges = list(c, privilege)?;
    c.expect_keyword("ON")?;
    let target = target(c)?;
    c.expect_keyword(preposition)?;
    let grantee = grantee(c)?;
    Ok(if is_grant {
        Statement::Grant {
            privileges,
            target,
            grantee,
        }
    } else {
        Statement::Revoke {
            privileges,
            target,
            grantee,
        }
    })
}

#[cfg(test)]
mod tests;
