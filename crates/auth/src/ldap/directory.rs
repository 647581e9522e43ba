//! Talking to an LDAP directory (ldap3): find a user's entry with the service account, bind as
//! the user with the password given, and read the user's groups — by a group search or from
//! attributes of the entry. Every value that goes into a filter is escaped (RFC 4515) by
//! [`fill`]; nothing here builds a DN from input. A fresh connection per sign-in, with
//! timeouts, so a failed bind never leaves a pooled connection bound as someone else.

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use portcullis_catalog::sso::LdapDirectory;

/// How long connecting, and each operation, may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The LDAP result code of a wrong password or unknown DN.
const INVALID_CREDENTIALS: u32 = 49;
/// The LDAP result code of a search that matched more entries than asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// What the directory said about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The entry's DN.
    pub dn: String,
    /// The value of the integration's `user_id_attribute`.
    pub name: String,
    /// The user's groups, each by its CN (when it has one) and its full DN.
    pub groups: Vec<String>,
    /// Every attribute read from the entry, by lower-case name (for role claims).
    pub attributes: Vec<(String, Vec<String>)>,
}

/// Why the directory did not confirm a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong password, or no such user (the same answer on the wire).
    #[error("{0}")]
    Credentials(String),
    /// The directory could not be reached, refused the service account, or failed.
    #[error("{0}")]
    Unavailable(String),
}

/// The directory's service account: its DN and password.
pub struct Service<'a> {
    pub dn: Option<&'a str>,
    pub password: Option<&'a str>,
}

/// `template` with `slot` replaced by `value` escaped for a filter (RFC 4515: `\` `*` `(` `)`
/// and NUL as `\xx`), so a user name can never change the filter's shape.
pub fn fill(template: &str, slot: &str, value: &str) -> String {
    template.replace(slot, &ldap3::ldap_escape(value))
}

/// Finds `username`'s entry and, when `password` is given, binds as it (`None`: look up only,
/// for EXPLAIN). `group_attributes` are the entry's attributes that name groups (e.g.
/// `memberOf`, operational: asked for by name), `role_attributes` those that hold roles.
pub async fn check_user(
    directory: &LdapDirectory,
    service: &Service<'_>,
    group_attributes: &[String],
    role_attributes: &[String],
    username: &str,
    password: Option<&str>,
) -> Result<DirectoryUser, DirectoryError> {
    if password.is_some_and(str::is_empty) {
        // An empty password is an unauthenticated bind: many directories answer success.
        return Err(DirectoryError::Credentials(
            "an empty password is refused (it would be an anonymous bind)".into(),
        ));
    }
    let unavailable = |what: &str, e: ldap3::LdapError| {
        DirectoryError::Unavailable(format!("directory {}: {what}: {e}", directory.url))
    };
    let settings = LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT)
        .set_starttls(directory.start_tls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &directory.url)
        .await
        .map_err(|e| unavailable("cannot connect", e))?;
    ldap3::drive!(conn);
    let result = async {
        bind_service(&mut ldap, directory, service).await?;
        let mut attributes = vec![directory.user_id_attribute.clone()];
        attributes.extend(group_attributes.iter().cloned());
        attributes.extend(role_attributes.iter().cloned());
        let filter = fill(&directory.user_filter, "{username}", username);
        let found = ldap
            .with_timeout(TIMEOUT)
            .with_search_options(ldap3::SearchOptions::new().sizelimit(2))
            .search(
                &directory.user_search_base,
                Scope::Subtree,
                &filter,
                attributes,
            )
            .await
            .map_err(|e| unavailable("user search", e))?;
        let entries = if found.1.rc == SIZE_LIMIT_EXCEEDED {
            found.0
        } else {
            found
                .non_error()
                .map_err(|e| unavailable("user search", e))?
                .0
        };
        if entries.len() > 1 {
            return Err(DirectoryError::Credentials(format!(
                "more than one directory entry matches {filter}; the user filter must identify \
                 one user"
            )));
        }
        let Some(entry) = entries.into_iter().next().map(SearchEntry::construct) else {
            return Err(DirectoryError::Credentials(format!(
                "no directory entry matches {filter} under {}",
                directory.user_search_base
            )));
        };
        let attributes: Vec<(String, Vec<String>)> = entry
            .attrs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let values = |name: &str| -> Vec<String> {
            let name = name.to_ascii_lowercase();
            attributes
                .iter()
                .filter(|(k, _)| *k == name)
                .flat_map(|(_, v)| v.iter().cloned())
                .collect()
        };
        let Some(name) = values(&directory.user_id_attribute).into_iter().next() else {
            return Err(DirectoryError::Credentials(format!(
                "the directory entry {} has no {} attribute (user_id_attribute)",
                entry.dn, directory.user_id_attribute
            )));
        };
        if let Some(password) = password {
            let bound = ldap
                .with_timeout(TIMEOUT)
                .simple_bind(&entry.dn, password)
                .await
                .map_err(|e| unavailable("user bind", e))?;
            match bound.rc {
                0 => {}
                INVALID_CREDENTIALS => {
                    return Err(DirectoryError::Credentials(format!(
                        "the directory refused the password of {}",
                        entry.dn
                    )))
                }
                rc => {
                    return Err(DirectoryError::Credentials(format!(
                        "the directory refused the bind as {} (result {rc}: {})",
                        entry.dn, bound.text
                    )))
                }
            }
        }
        let mut groups = Vec::new();
        for value in group_attributes.iter().flat_map(|a| values(a)) {
            push_group(&mut groups, &value);
        }
        if let (Some(base), Some(template)) =
            (&directory.group_search_base, &directory.group_filter)
        {
            // Searched as the service account again (the user's own bind may not see groups).
            bind_service(&mut ldap, directory, service).await?;
            let filter = fill(template, "{dn}", &entry.dn);
            let (found, _) = ldap
                .with_timeout(TIMEOUT)
                .search(base, Scope::Subtree, &filter, vec!["cn"])
                .await
                .map_err(|e| unavailable("group search", e))?
                .non_error()
                .map_err(|e| unavailable("group search", e))?;
            for group in found.into_iter().map(SearchEntry::construct) {
                push_group(&mut groups, &group.dn);
            }
        }
        Ok(DirectoryUser {
            dn: entry.dn.clone(),
            name,
            groups,
            attributes,
        })
    }
    .await;
    let _ = ldap.unbind().await;
    result
}

/// Binds as the service account (or stays anonymous without one).
async fn bind_service(
    ldap: &mut ldap3::Ldap,
    directory: &LdapDirectory,
    service: &Service<'_>,
) -> Result<(), DirectoryError> {
    let Some(dn) = service.dn else {
        return Ok(());
    };
    let password = service.password.filter(|p| !p.is_empty()).ok_or_else(|| {
        DirectoryError::Unavailable(
            "the integration has a bind_dn but no bind_password (an empty password would be an \
             anonymous bind)"
                .into(),
        )
    })?;
    let result = ldap
        .with_timeout(TIMEOUT)
        .simple_bind(dn, password)
        .await
        .map_err(|e| {
            DirectoryError::Unavailable(format!("directory {}: service bind: {e}", directory.url))
        })?;
    if result.rc != 0 {
        return Err(DirectoryError::Unavailable(format!(
            "directory {} refused the service account {dn} (result {}: {})",
            directory.url, result.rc, result.text
        )));
    }
    Ok(())
}

/// Adds a group by its CN (if its DN begins with `cn=`) and by its full DN; a value that is
/// not a DN is a plain group name.
fn push_group(groups: &mut Vec<String>, value: &str) {
    let cn = first_cn(value);
    for name in cn.into_iter().chain(std::iter::once(value.to_owned())) {
        if !name.is_empty() && !groups.contains(&name) {
            groups.push(name);
        }
    }
}

/// The value of a DN's first RDN when it is `cn=…` (escapes undone for `\,` and the like).
fn first_cn(dn: &str) -> Option<String> {
    let (attribute, rest) = dn.split_once('=')?;
    if !attribute.trim().eq_ignore_ascii_case("cn") {
        return None;
    }
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            ',' | '+' => break,
            c => value.push(c),
        }
    }
    Some(value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(
            fill("(uid={username})", "{username}", "alice"),
            "(uid=alice)"
        );
        assert_eq!(fill("(uid={username})", "{username}", "*"), "(uid=\\2a)");
        assert_eq!(
            fill("(uid={username})", "{username}", "x)(uid=*"),
            "(uid=x\\29\\28uid=\\2a)"
        );
        assert_eq!(
            fill("(member={dn})", "{dn}", "cn=a\\,b,dc=x"),
            "(member=cn=a\\5c,b,dc=x)"
        );
        assert_eq!(
            fill("(uid={username})", "{username}", "a\0b"),
            "(uid=a\\00b)"
        );
    }

    #[test]
    fn groups_by_cn_and_dn() {
        let mut groups = Vec::new();
        push_group(&mut groups, "cn=Admins,ou=groups,dc=example,dc=org");
        push_group(&mut groups, "cn=a\\,b,ou=groups,dc=example,dc=org");
        push_group(&mut groups, "ou=teams,dc=example,dc=org");
        push_group(&mut groups, "plain");
        assert_eq!(
            groups,
            [
                "Admins",
                "cn=Admins,ou=groups,dc=example,dc=org",
                "a,b",
                "cn=a\\,b,ou=groups,dc=example,dc=org",
                "ou=teams,dc=example,dc=org",
                "plain"
            ]
        );
    }
}
