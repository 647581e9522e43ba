//! Statements written back as text that parses to the same statement: names always in double
//! quotes (kept exactly, never folded), values in single quotes. `parse(display(s)) == s` is
//! checked by the `sql_parser` fuzz target and the tests below.

use std::fmt::{self, Display, Formatter, Write as _};

use super::ast::*;
use crate::sso::{Property, PropertyValue};

/// A name, quoted: `"a""b"` for `a"b`.
struct Ident<'a>(&'a str);

impl Display for Ident<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        f.write_str(&self.0.replace('"', "\"\""))?;
        f.write_char('"')
    }
}

/// A string literal: `'it''s'`.
struct Lit<'a>(&'a str);

impl Display for Lit<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('\'')?;
        f.write_str(&self.0.replace('\'', "''"))?;
        f.write_char('\'')
    }
}

/// Items separated by `, `.
fn comma<T>(f: &mut Formatter<'_>, items: &[T], item: impl Fn(&T) -> String) -> fmt::Result {
    let parts: Vec<String> = items.iter().map(item).collect();
    f.write_str(&parts.join(", "))
}

fn q(name: &impl Display) -> String {
    Ident(&name.to_string()).to_string()
}

fn if_not_exists(yes: bool) -> &'static str {
    if yes {
        "IF NOT EXISTS "
    } else {
        ""
    }
}

fn if_exists(yes: bool) -> &'static str {
    if yes {
        "IF EXISTS "
    } else {
        ""
    }
}

impl Display for UserAttribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (key, value) = match self {
            Self::Password(v) => ("PASSWORD", v),
            Self::FirstName(v) => ("FIRST_NAME", v),
            Self::LastName(v) => ("LAST_NAME", v),
            Self::Email(v) => ("EMAIL", v),
        };
        write!(f, "{key} = {}", Lit(value))
    }
}

impl Display for Property {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} = ", Ident(&self.name))?;
        match &self.value {
            PropertyValue::Text(v) => write!(f, "{}", Lit(v)),
            PropertyValue::Null => f.write_str("NULL"),
            PropertyValue::List(items) => {
                f.write_char('[')?;
                comma(f, items, |v| Lit(v).to_string())?;
                f.write_char(']')
            }
            PropertyValue::Map(pairs) => {
                f.write_char('{')?;
                comma(f, pairs, |(k, v)| format!("{} = {}", Lit(k), Lit(v)))?;
                f.write_char('}')
            }
        }
    }
}

impl Display for GrantTarget {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("SYSTEM"),
            Self::Database(d) => write!(f, "DATABASE {}", Ident(d)),
            Self::User(u) => write!(f, "USER {}", q(u)),
            Self::Group(g) => write!(f, "GROUP {}", q(g)),
        }
    }
}

impl Display for Grantee {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "USER {}", q(u)),
            Self::Group(g) => write!(f, "GROUP {}", q(g)),
            Self::Role(r) => write!(f, "ROLE {}", q(r)),
        }
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateDatabase {
                name,
                if_not_exists: ine,
                upstream,
            } => {
                write!(f, "CREATE DATABASE {}{}", if_not_exists(*ine), Ident(name))?;
                if let Some(url) = upstream {
                    write!(f, " UPSTREAM {}", Lit(url))?;
                }
                Ok(())
            }
            Self::SetUpstream { database, url } => match url {
                Some(url) => write!(
                    f,
                    "ALTER DATABASE {} SET UPSTREAM {}",
                    Ident(database),
                    Lit(url)
                ),
                None => write!(f, "ALTER DATABASE {} REMOVE UPSTREAM", Ident(database)),
            },
            Self::DropDatabase {
                names,
                if_exists: ie,
            } => {
                write!(f, "DROP DATABASE {}", if_exists(*ie))?;
                comma(f, names, |n| Ident(n).to_string())
            }
            Self::CreateUser {
                name,
                if_not_exists: ine,
                attributes,
            } => {
                write!(f, "CREATE USER {}{} ", if_not_exists(*ine), q(name))?;
                comma(f, attributes, ToString::to_string)
            }
            Self::AlterUser { name, action } => {
                write!(f, "ALTER USER {} ", q(name))?;
                match action {
                    AlterUserAction::Set(attributes) => {
                        f.write_str("SET ")?;
                        comma(f, attributes, ToString::to_string)
                    }
                    AlterUserAction::Enable => f.write_str("ENABLE"),
                    AlterUserAction::Disable => f.write_str("DISABLE"),
                    AlterUserAction::RenameTo(new) => write!(f, "RENAME TO {}", Ident(new)),
                }
            }
            Self::DropUser {
                names,
                if_exists: ie,
            } => {
                write!(f, "DROP USER {}", if_exists(*ie))?;
                comma(f, names, q)
            }
            Self::CreateGroup {
                name,
                if_not_exists: ine,
            } => write!(f, "CREATE GROUP {}{}", if_not_exists(*ine), q(name)),
            Self::DropGroup {
                names,
                if_exists: ie,
            } => {
                write!(f, "DROP GROUP {}", if_exists(*ie))?;
                comma(f, names, q)
            }
            Self::AlterGroupMembers { group, add, users } => {
                let verb = if *add { "ADD" } else { "REMOVE" };
                write!(f, "ALTER GROUP {} {verb} USER ", q(group))?;
                comma(f, users, q)
            }
            Self::SetSecuritySetting {
                scope,
                setting,
                value,
            } => {
                match scope {
                    SettingScope::System => f.write_str("ALTER SYSTEM ")?,
                    SettingScope::Database(d) => write!(f, "ALTER DATABASE {} ", Ident(d))?,
                    SettingScope::Group(g) => write!(f, "ALTER GROUP {} ", q(g))?,
                }
                match value {
                    Some(v) => write!(f, "SET {} = {v}", setting.name()),
                    None => write!(f, "RESET {}", setting.name()),
                }
            }
            Self::Grant {
                privileges,
                target,
                grantee,
            }
            | Self::Revoke {
                privileges,
                target,
                grantee,
            } => {
                let (verb, preposition) = match self {
                    Self::Grant { .. } => ("GRANT", "TO"),
                    _ => ("REVOKE", "FROM"),
                };
                write!(f, "{verb} ")?;
                comma(f, privileges, ToString::to_string)?;
                write!(f, " ON {target} {preposition} {grantee}")
            }
            Self::GrantRole { role, grantee } => {
                write!(f, "GRANT ROLE {} TO {grantee}", q(role))
            }
            Self::RevokeRole { role, grantee } => {
                write!(f, "REVOKE ROLE {} FROM {grantee}", q(role))
            }
            Self::CreateSsoIntegration {
                name,
                if_not_exists: ine,
                protocol,
                properties,
            } => {
                write!(
                    f,
                    "CREATE SSO INTEGRATION {}{} PROTOCOL {protocol} ",
                    if_not_exists(*ine),
                    Ident(name)
                )?;
                comma(f, properties, ToString::to_string)
            }
            Self::AlterSsoIntegration { name, properties } => {
                write!(f, "ALTER SSO INTEGRATION {} SET ", Ident(name))?;
                comma(f, properties, ToString::to_string)
            }
            Self::DropSsoIntegration {
                names,
                if_exists: ie,
            } => {
                write!(f, "DROP SSO INTEGRATION {}", if_exists(*ie))?;
                comma(f, names, |n| Ident(n).to_string())
            }
            Self::AssignSsoIntegration { target, name } => match target {
                SsoTarget::Database(d) => write!(
                    f,
                    "ALTER DATABASE {} SET SSO INTEGRATION {}",
                    Ident(d),
                    Ident(name)
                ),
                SsoTarget::ConnectivityPool(p) => write!(
                    f,
                    "ALTER CONNECTIVITY_POOL {} SET SSO INTEGRATION {}",
                    Ident(p),
                    Ident(name)
                ),
            },
            Self::DatabaseSsoProperties {
                database,
                replace,
                protocol,
                properties,
            } => {
                let verb = if *replace { "SET" } else { "ALTER" };
                write!(
                    f,
                    "ALTER DATABASE {} {verb} SSO INTEGRATION {protocol} ",
                    Ident(database)
                )?;
                comma(f, properties, ToString::to_string)
            }
            Self::RemoveSsoIntegration { target } => match target {
                SsoTarget::Database(d) => {
                    write!(f, "ALTER DATABASE {} REMOVE SSO INTEGRATION", Ident(d))
                }
                SsoTarget::ConnectivityPool(p) => {
                    write!(
                        f,
                        "ALTER CONNECTIVITY_POOL {} REMOVE SSO INTEGRATION",
                        Ident(p)
                    )
                }
            },
            Self::CreateConnectivityPool {
                name,
                if_not_exists: ine,
                listen,
                advertised,
            } => {
                write!(
                    f,
                    "CREATE CONNECTIVITY_POOL {}{} LISTEN {}",
                    if_not_exists(*ine),
                    Ident(name),
                    Lit(listen)
                )?;
                if let Some(a) = advertised {
                    write!(f, " ADVERTISED {}", Lit(a))?;
                }
                Ok(())
            }
            Self::DropConnectivityPool {
                names,
                if_exists: ie,
            } => {
                write!(f, "DROP CONNECTIVITY_POOL {}", if_exists(*ie))?;
                comma(f, names, |n| Ident(n).to_string())
            }
            Self::ExplainUser { user, database } => {
                write!(f, "EXPLAIN AUTHENTICATION FOR USER {}", Lit(user))?;
                if let Some(d) = database {
                    write!(f, " DATABASE {}", Ident(d))?;
                }
                Ok(())
            }
            Self::ExplainAuthentication { token, database } => {
                write!(f, "EXPLAIN AUTHENTICATION {}", Lit(token))?;
                if let Some(d) = database {
                    write!(f, " FOR DATABASE {}", Ident(d))?;
                }
                Ok(())
            }
            Self::Query(text) => f.write_str(text),
            Self::EndSession { id } => write!(f, "ALTER SYSTEM END SESSION {}", Lit(id)),
            Self::SetParameter(name) if name.is_empty() => f.write_str("SET"),
            Self::SetParameter(name) => write!(f, "SET {}", Ident(name)),
            Self::Show(name) => write!(f, "SHOW {}", Ident(name)),
            Self::Transaction(TransactionControl::Begin) => f.write_str("BEGIN"),
            Self::Transaction(TransactionControl::Commit) => f.write_str("COMMIT"),
            Self::Transaction(TransactionControl::Rollback) => f.write_str("ROLLBACK"),
            Self::Noop(word) => f.write_str(word),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::parse_statements;

    /// Every statement of the dialect, in awkward spellings: written back, it parses the same.
    #[test]
    fn statements_round_trip() {
        let sql = r#"
            CREATE DATABASE IF NOT EXISTS "Sales""DB" UPSTREAM 'postgresql://a@h:5/d?x=''y''';
            ALTER DATABASE sales SET UPSTREAM 'postgresql://h/d'; ALTER DATABASE sales REMOVE UPSTREAM;
            DROP DATABASE IF EXISTS a, "B";
            CREATE USER "Alice@example_database" PASSWORD = 'it''s-a-Pass-1', FIRST_NAME 'Al', EMAIL = 'a@b';
            ALTER USER bob SET LAST_NAME = 'X'; ALTER USER bob ENABLE; ALTER USER bob DISABLE;
            ALTER USER bob RENAME TO "Robert";
            DROP USER IF EXISTS a@db, b; CREATE GROUP g@db; DROP GROUP g, h@x;
            ALTER GROUP g ADD USER a, b@c; ALTER GROUP g DROP USER a;
            ALTER SYSTEM SET password_minimum_length = 12; ALTER DATABASE d RESET password_lifetime_days;
            ALTER GROUP g SET password_complexity_level TO -1;
            GRANT USE, CREATE USER, ALL PRIVILEGES ON DATABASE d TO GROUP g@d;
            REVOKE VIEW ON USER u@d FROM ROLE r; GRANT SYSAUTH ON SYSTEM TO USER admin@system;
            GRANT ROLE r@d TO GROUP g; REVOKE ROLE r FROM USER u;
            CREATE SSO INTEGRATION IF NOT EXISTS "Corp" PROTOCOL OIDC issuer = "https://idp.example",
              client_id = Abc, groups_claim_ids = [groups, 'Team Roles'], additional_scopes = [],
              groups_claim_mappings = {'Eng' = engineers, x = 'y'}, default_group = NULL, n = 42;
            ALTER SSO INTEGRATION corp SET disabled = true; ALTER SSO INTEGRATION corp x = 'y';
            DROP SSO INTEGRATION IF EXISTS a, b;
            ALTER DATABASE d SET SSO INTEGRATION corp; ALTER DATABASE d SET SSO INTEGRATION oidc;
            ALTER CONNECTIVITY_POOL p SET SSO INTEGRATION corp; ALTER CONNECTIVITY_POOL p REMOVE SSO INTEGRATION;
            ALTER DATABASE d SET SSO INTEGRATION oidc issuer = 'https://i'; ALTER DATABASE d ALTER SSO INTEGRATION OIDC a = b;
            ALTER DATABASE d REMOVE SSO INTEGRATION;
            CREATE SSO INTEGRATION corp PROTOCOL ldap url = 'ldaps://dir.example',
              user_filter = '(&(uid={username})(objectClass=person))', groups_claim_ids = [memberOf];
            ALTER DATABASE d SET SSO INTEGRATION LDAP url = 'ldap://127.0.0.1:389';
            CREATE CONNECTIVITY_POOL IF NOT EXISTS p LISTEN = '127.0.0.1:5433'; DROP CONNECTIVITY_POOL p, q;
            CREATE CONNECTIVITY_POOL q LISTEN '10.0.0.1:4050' ADVERTISED 'db.example.com:8443';
            EXPLAIN AUTHENTICATION 'a.b.c' FOR DATABASE d; EXPLAIN AUTHENTICATION 'x';
            EXPLAIN AUTHENTICATION FOR USER 'alice' DATABASE d; EXPLAIN AUTHENTICATION FOR USER 'o''k';
            SELECT name, ';' FROM sys.users WHERE name = 'a''b' -- comment
            ; WITH x AS (SELECT 1) SELECT * FROM x;
            ALTER SYSTEM END SESSION 'abc'; SET search_path TO public; SET; SHOW "Server_Version";
            BEGIN; START TRANSACTION; COMMIT; END; ROLLBACK; ABORT; DISCARD ALL; DEALLOCATE x; RESET ALL
        "#;
        let statements = parse_statements(sql).unwrap();
        assert_eq!(statements.len(), 57);
        for s in statements {
            let text = s.to_string();
            assert_eq!(parse_statements(&text).unwrap(), vec![s], "{text}");
        }
    }
}
