//! SSO integration properties (seed 003's "SSO Parameters" table, and issue 14's LDAP
//! directories and SAML identity providers): defaults, how a property statement changes them, and the validation every
//! stored integration passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

pub mod saml;
pub use saml::{SamlIdp, SAML_PROPERTY_NAMES};

/// A property value as written in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    /// A bare word, a number or a quoted string.
    Text(String),
    List(Vec<String>),
    Map(Vec<(String, String)>),
    /// `NULL`: clears a list or map (or an optional text property).
    Null,
}

/// `name = value` in an integration statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Lower case.
    pub name: String,
    pub value: PropertyValue,
}

/// The protocols an integration speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoProtocol {
    /// OpenID Connect: tokens from a provider.
    Oidc,
    /// An LDAP directory: a user name and password, checked by binding as the user.
    Ldap,
    /// A SAML identity provider: signed assertions posted back by the browser.
    Saml,
}

impl SsoProtocol {
    pub fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "oidc" => Some(Self::Oidc),
            "ldap" => Some(Self::Ldap),
            "saml" => Some(Self::Saml),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Ldap => "ldap",
            Self::Saml => "saml",
        }
    }

    /// The property that holds the integration's one secret (a SAML integration has none:
    /// it only checks signatures with the IdP's public certificate).
    pub fn secret_property(self) -> &'static str {
        match self {
            Self::Oidc => "client_secret",
            Self::Ldap => "bind_password",
            Self::Saml => "no_secret",
        }
    }
}

/// An LDAP integration's directory: where it is, how the server finds a user's entry and
/// groups. The service account's password (`bind_password`) is kept apart, sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LdapDirectory {
    /// `ldaps://host[:port]`, or `ldap://` on loopback or with `start_tls`.
    pub url: String,
    pub start_tls: bool,
    /// The service account that searches (none: searches anonymously).
    pub bind_dn: Option<String>,
    pub user_search_base: String,
    /// With `{username}` where the escaped user name goes, e.g. `(uid={username})`.
    pub user_filter: String,
    /// The attribute whose value is the session's user name (default `uid`).
    pub user_id_attribute: String,
    /// Groups by search: where, and a filter with `{dn}` for the user's DN.
    pub group_search_base: Option<String>,
    pub group_filter: Option<String>,
    /// How long a session signed in through the directory lasts before the directory must be
    /// asked again (seconds; default 3600).
    pub session_seconds: i64,
}

impl LdapDirectory {
    /// Applies one directory property; `false` if `name` is not one.
    fn apply(&mut self, name: &str, v: &PropertyValue) -> Result<bool, CatalogError> {
        match name {
            "url" => self.url = required_text(name, v)?,
            "start_tls" => self.start_tls = boolean(name, v)?,
            "bind_dn" => self.bind_dn = optional_text(name, v)?.filter(|t| !t.is_empty()),
            "user_search_base" => self.user_search_base = required_text(name, v)?,
            "user_filter" => self.user_filter = required_text(name, v)?,
            "user_id_attribute" => self.user_id_attribute = required_text(name, v)?,
            "group_search_base" => {
                self.group_search_base = optional_text(name, v)?.filter(|t| !t.is_empty())
            }
            "group_filter" => self.group_filter = optional_text(name, v)?.filter(|t| !t.is_empty()),
            "session_seconds" => {
                self.session_seconds = required_text(name, v)?.parse().map_err(|_| {
                    CatalogError::invalid("\"session_seconds\" takes a whole number of seconds")
                })?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The rules every stored directory satisfies.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |why: String| Err(CatalogError::invalid(why));
        if self.url.is_empty() {
            return bad("the LDAP property \"url\" is required".into());
        }
        let url = &self.url;
        let Some((scheme, rest)) = url.split_once("://") else {
            return bad(format!("url \"{url}\" must be an ldaps:// or ldap:// URL"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@'])
            || authority
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad(format!(
                "url \"{url}\" must be scheme://host[:port] (no path, query or user information)"
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "ldaps" if self.start_tls => {
                return bad("start_tls is for ldap:// URLs; ldaps:// is TLS already".into())
            }
            "ldaps" => {}
            "ldap" if self.start_tls || is_loopback_authority(authority) => {}
            "ldap" => {
                return bad(format!(
                    "url \"{url}\" sends passwords in the clear: use ldaps://, or start_tls = \
                     true (plain ldap:// only for a loopback address)"
                ))
            }
            _ => return bad(format!("url \"{url}\" must be an ldaps:// or ldap:// URL")),
        }
        if self.user_search_base.is_empty() {
            return bad("the LDAP property \"user_search_base\" is required".into());
        }
        let filter = |name: &str, text: &str, slot: &str| -> Result<(), CatalogError> {
            if !(text.starts_with('(') && text.ends_with(')')) || text.matches(slot).count() == 0 {
                return Err(CatalogError::invalid(format!(
                    "{name} \"{text}\" must be a parenthesized LDAP filter with {slot} where the \
                     value goes, e.g. {}",
                    if slot == "{username}" {
                        "(uid={username})"
                    } else {
                        "(member={dn})"
                    }
                )));
            }
            Ok(())
        };
        if self.user_filter.is_empty() {
            return bad("the LDAP property \"user_filter\" is required".into());
        }
        filter("user_filter", &self.user_filter, "{username}")?;
        let attribute_name = |a: &str| {
            !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.')
        };
        if !attribute_name(&self.user_id_attribute) {
            return bad(format!(
                "user_id_attribute \"{}\" must be an attribute name",
                self.user_id_attribute
            ));
        }
        match (&self.group_search_base, &self.group_filter) {
            (Some(_), Some(f)) => filter("group_filter", f, "{dn}")?,
            (None, None) => {}
            _ => {
                return bad(
                    "group_search_base and group_filter go together (groups by search), or \
                     neither (groups from an attribute named by groups_claim_ids)"
                        .into(),
                )
            }
        }
        if !(60..=7 * 86_400).contains(&self.session_seconds) {
            return bad("session_seconds must be between 60 and 604800".into());
        }
        Ok(())
    }
}

/// An LDAP session's default lifetime.
pub const LDAP_SESSION_SECONDS: i64 = 3600;

/// The LDAP integration property names.
pub const LDAP_PROPERTY_NAMES: &[&str] = &[
    "url",
    "start_tls",
    "bind_dn",
    "bind_password",
    "user_search_base",
    "user_filter",
    "user_id_attribute",
    "group_search_base",
    "group_filter",
    "session_seconds",
    "default_group",
    "disabled",
    "groups_claim_ids",
    "groups_claim_mappings",
    "roles_claim_ids",
    "roles_claim_mappings",
    "allowed_groups",
    "allowed_roles",
    "blocked_groups",
    "blocked_roles",
];

/// The non-secret properties of an SSO integration, as stored (JSON) and shown in
/// `sys.oidc_integrations`: the claim policy every protocol shares (default group, mappings,
/// allowed and blocked lists), the OpenID Connect settings (empty for LDAP) and, for an LDAP
/// integration, its directory. The one secret (client secret, bind password) is kept apart,
/// sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SsoProperties {
    /// The LDAP directory; `None` for OpenID Connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapDirectory>,
    /// The SAML identity provider; `None` for OpenID Connect and LDAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlIdp>,
    pub issuer: String,
    pub client_id: String,
    pub default_group: String,
    pub redirect_host: Option<String>,
    pub redirect_ssl: Option<bool>,
    pub disabled: bool,
    pub enable_id_token_authentication: bool,
    /// Empty means the default: `email` when present, else `iss::sub`.
    pub user_id_claims: Vec<String>,
    pub additional_scopes: Vec<String>,
    pub additional_audiences: Vec<String>,
    pub groups_claim_ids: Vec<String>,
    pub groups_claim_mappings: BTreeMap<String, String>,
    pub roles_claim_ids: Vec<String>,
    pub roles_claim_mappings: BTreeMap<String, String>,
    pub allowed_groups: Vec<String>,
    pub allowed_roles: Vec<String>,
    pub blocked_groups: Vec<String>,
    pub blocked_roles: Vec<String>,
    pub allow_offline_access: bool,
    /// Accepted for compatibility (`protocol_version = 'v1'` in seed 003); only `v1` exists.
    pub protocol_version: String,
    /// Who last wrote these properties: that writer's principals (`user:7`, `group:12`,
    /// `role:3`), set by the server, never by a property. A mapping target outside the
    /// integration's database, or a built-in administrator role, is conferred at sign-in only
    /// while these principals still hold ALTER on it. Not shown in `sys.oidc_integrations`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapping_authority: Vec<String>,
}

/// The property names, in the order of the seed's table (plus `protocol_version`).
pub const PROPERTY_NAMES: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret",
    "default_group",
    "redirect_host",
    "redirect_ssl",
    "disabled",
    "enable_id_token_authentication",
    "user_id_claims",
    "additional_scopes",
    "additional_audiences",
    "groups_claim_ids",
    "groups_claim_mappings",
    "roles_claim_ids",
    "roles_claim_mappings",
    "allowed_groups",
    "allowed_roles",
    "blocked_groups",
    "blocked_roles",
    "allow_offline_access",
    "protocol_version",
];

/// What a property statement does to the client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Keep,
    Set(String),
    Clear,
}

impl SsoProperties {
    /// New properties of an integration speaking `protocol`.
    pub fn new(protocol: SsoProtocol) -> Self {
        Self {
            ldap: (protocol == SsoProtocol::Ldap).then(|| LdapDirectory {
                user_id_attribute: "uid".into(),
                session_seconds: LDAP_SESSION_SECONDS,
                ..LdapDirectory::default()
            }),
            saml: (protocol == SsoProtocol::Saml).then(SamlIdp::new),
            ..Self::default()
        }
    }

    pub fn protocol(&self) -> SsoProtocol {
        if self.ldap.is_some() {
            SsoProtocol::Ldap
        } else if self.saml.is_some() {
            SsoProtocol::Saml
        } else {
            SsoProtocol::Oidc
        }
    }

    /// Applies `name = value` properties in order. `user_claim_ids` is an alias of
    /// `user_id_claims`. Returns what happens to the secret (client secret or bind password).
    pub fn apply(&mut self, properties: &[Property]) -> Result<SecretChange, CatalogError> {
        let mut secret = SecretChange::Keep;
        let mut seen = Vec::new();
        for p in properties {
            let name = match p.name.as_str() {
                "user_claim_ids" => "user_id_claims",
                other => other,
            };
            if seen.contains(&name) {
                return Err(CatalogError::invalid(format!(
                    "property \"{name}\" is given more than once"
                )));
            }
            seen.push(name);
            let v = &p.value;
            if let Some(idp) = self.saml.as_mut() {
                if !SAML_PROPERTY_NAMES.contains(&name) {
                    return Err(CatalogError::new(
                        crate::error::sqlstate::UNDEFINED_OBJECT,
                        format!(
                            "unknown SAML integration property \"{name}\"; the properties are {}",
                            SAML_PROPERTY_NAMES.join(", ")
                        ),
                    ));
                }
                if idp.apply(name, v)? {
                    continue;
                }
            }
            if let Some(directory) = self.ldap.as_mut() {
                if !LDAP_PROPERTY_NAMES.contains(&name) {
                    return Err(CatalogError::new(
                        crate::error::sqlstate::UNDEFINED_OBJECT,
                        format!(
                            "unknown LDAP integration property \"{name}\"; the properties are {}",
                            LDAP_PROPERTY_NAMES.join(", ")
                        ),
                    ));
                }
                if directory.apply(name, v)? {
                    continue;
                }
                if name == "bind_password" {
                    secret = match v {
                        PropertyValue::Null => SecretChange::Clear,
                        _ => SecretChange::Set(required_text(name, v)?),
                    };
                    continue;
                }
            }
            match name {
                "issuer" => self.issuer = required_text(name, v)?,
                "client_id" => self.client_id = required_text(name, v)?,
                "default_group" => self.default_group = required_text(name, v)?,
                "client_secret" => {
                    secret = match v {
                        PropertyValue::Null => SecretChange::Clear,
                        _ => SecretChange::Set(required_text(name, v)?),
                    }
                }
                "redirect_host" => self.redirect_host = optional_text(name, v)?,
                "redirect_ssl" => {
                    self.redirect_ssl = match v {
                        PropertyValue::Null => None,
                        _ => Some(boolean(name, v)?),
                    }
                }
                "disabled" => self.disabled = boolean(name, v)?,
                "enable_id_token_authentication" => {
                    self.enable_id_token_authentication = boolean(name, v)?
                }
                "allow_offline_access" => self.allow_offline_access = boolean(name, v)?,
                "protocol_version" => {
                    let version = optional_text(name, v)?.unwrap_or_default();
                    if !version.is_empty() && !version.eq_ignore_ascii_case("v1") {
                        return Err(CatalogError::invalid(format!(
                            "protocol_version \"{version}\" is not supported; the only version is v1"
                        )));
                    }
                    self.protocol_version = version.to_ascii_lowercase();
                }
                "user_id_claims" => self.user_id_claims = list(name, v)?,
                "additional_scopes" => self.additional_scopes = list(name, v)?,
                "additional_audiences" => self.additional_audiences = list(name, v)?,
                "groups_claim_ids" => self.groups_claim_ids = list(name, v)?,
                "roles_claim_ids" => self.roles_claim_ids = list(name, v)?,
                "allowed_groups" => self.allowed_groups = list(name, v)?,
                "allowed_roles" => self.allowed_roles = list(name, v)?,
                "blocked_groups" => self.blocked_groups = list(name, v)?,
                "blocked_roles" => self.blocked_roles = list(name, v)?,
                "groups_claim_mappings" => self.groups_claim_mappings = map(name, v)?,
                "roles_claim_mappings" => self.roles_claim_mappings = map(name, v)?,
                other => {
                    return Err(CatalogError::new(
                        crate::error::sqlstate::UNDEFINED_OBJECT,
                        format!(
                            "unknown SSO property \"{other}\"; the properties are {}",
                            PROPERTY_NAMES.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(secret)
    }

    /// The rules every stored integration satisfies.
    pub fn validate(&self) -> Result<(), CatalogError> {
        if let Some(directory) = &self.ldap {
            if self.default_group.is_empty() {
                return Err(CatalogError::invalid(
                    "the SSO property \"default_group\" is required",
                ));
            }
            directory.validate()?;
            return self.validate_mappings();
        }
        if let Some(idp) = &self.saml {
            if self.default_group.is_empty() {
                return Err(CatalogError::invalid(
                    "the SSO property \"default_group\" is required",
                ));
            }
            idp.validate()?;
            if let Some(host) = &self.redirect_host {
                check_authority("redirect_host", host)?;
            }
            return self.validate_mappings();
        }
        for (name, value) in [
            ("issuer", &self.issuer),
            ("client_id", &self.client_id),
            ("default_group", &self.default_group),
        ] {
            if value.is_empty() {
                return Err(CatalogError::invalid(format!(
                    "the SSO property \"{name}\" is required"
                )));
            }
        }
        check_issuer(&self.issuer)?;
        for aud in &self.additional_audiences {
            if aud.is_empty() {
                return Err(CatalogError::invalid(
                    "additional_audiences has an empty entry",
                ));
            }
        }
        if let Some(host) = &self.redirect_host {
            check_authority("redirect_host", host)?;
        }
        self.validate_mappings()
    }

    fn validate_mappings(&self) -> Result<(), CatalogError> {
        let by_search = self
            .ldap
            .as_ref()
            .is_some_and(|d| d.group_search_base.is_some());
        if !self.groups_claim_mappings.is_empty() && self.groups_claim_ids.is_empty() && !by_search
        {
            return Err(CatalogError::invalid(
                "groups_claim_mappings needs groups_claim_ids: name the token claims (LDAP: the \
                 attributes, or group_search_base) that hold the provider's groups",
            ));
        }
        if !self.roles_claim_mappings.is_empty() && self.roles_claim_ids.is_empty() {
            return Err(CatalogError::invalid(
                "roles_claim_mappings needs roles_claim_ids: name the token claims that hold the \
                 provider's roles",
            ));
        }
        Ok(())
    }

    /// The claims that identify a user (the default when none are configured).
    pub fn user_claims(&self) -> &[String] {
        &self.user_id_claims
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        serde_json::from_str(text)
            .map_err(|e| CatalogError::internal(format!("stored integration is unreadable: {e}")))
    }
}

/// A `host[:port]` a redirect URI is built on (`redirect_host`, a pool's `ADVERTISED`).
pub fn check_authority(what: &str, host: &str) -> Result<(), CatalogError> {
    if host.is_empty()
        || host.contains(['/', '\\', '?', '#', '@', ' '])
        || host.chars().any(char::is_control)
    {
        return Err(CatalogError::invalid(format!(
            "{what} \"{host}\" must be a host name with an optional port"
        )));
    }
    Ok(())
}

/// The issuer must be an absolute `https` URL; plain `http` only for a loopback host.
pub fn check_issuer(issuer: &str) -> Result<(), CatalogError> {
    let bad = |why: &str| Err(CatalogError::invalid(format!("issuer \"{issuer}\" {why}")));
    let (scheme, rest) = match issuer.split_once("://") {
        Some(parts) => parts,
        None => return bad("must be an absolute https URL"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return bad("must name a host (and no user information)");
    }
    if issuer.contains(['?', '#']) || issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not have a query, a fragment or spaces");
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback_authority(authority) => Ok(()),
        "http" => bad("must use https (plain http is allowed only for a loopback address)"),
        _ => bad("must be an https URL"),
    }
}

/// Whether `host[:port]` names the loopback interface.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn required_text(name: &str, v: &PropertyValue) -> Result<String, CatalogError> {
    match v {
        PropertyValue::Text(t) if !t.is_empty() => Ok(t.clone()),
        PropertyValue::Text(_) => Err(CatalogError::invalid(format!(
            "\"{name}\" must not be empty"
        ))),
        PropertyValue::Null => Err(CatalogError::invalid(format!(
            "\"{name}\" is required and cannot be cleared with NULL"
        ))),
        _ => Err(CatalogError::invalid(format!(
            "\"{name}\" takes a string value"
        ))),
    }
}

fn optional_text(name: &str, v: &PropertyValue) -> Result<Option<String>, CatalogError> {
    match v {
        PropertyValue::Null => Ok(None),
        PropertyValue::Text(t) => Ok(Some(t.clone())),
        _ => Err(CatalogError::invalid(format!(
            "\"{name}\" takes a string value"
        ))),
    }
}

fn boolean(name: &str, v: &PropertyValue) -> Result<bool, CatalogError> {
    match v {
        PropertyValue::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        PropertyValue::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(CatalogError::invalid(format!(
            "\"{name}\" takes true or false"
        ))),
    }
}

fn list(name: &str, v: &PropertyValue) -> Result<Vec<String>, CatalogError> {
    match v {
        PropertyValue::Null => Ok(Vec::new()),
        PropertyValue::List(items) => {
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                if item.is_empty() {
                    return Err(CatalogError::invalid(format!(
                        "\"{name}\" has an empty entry"
                    )));
                }
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(out)
        }
        _ => Err(CatalogError::invalid(format!(
            "\"{name}\" takes a list: {name} = [value, ...]"
        ))),
    }
}

fn map(name: &str, v: &PropertyValue) -> Result<BTreeMap<String, String>, CatalogError> {
    match v {
        PropertyValue::Null => Ok(BTreeMap::new()),
        PropertyValue::Map(pairs) => {
            let mut out = BTreeMap::new();
            for (k, val) in pairs {
                if k.is_empty() || val.is_empty() {
                    return Err(CatalogError::invalid(format!(
                        "\"{name}\" has an empty key or value"
                    )));
                }
                if out.insert(k.clone(), val.clone()).is_some() {
                    return Err(CatalogError::invalid(format!(
                        "\"{name}\" maps \"{k}\" more than once"
                    )));
                }
            }
            Ok(out)
        }
        _ => Err(CatalogError::invalid(format!(
            "\"{name}\" takes a map: {name} = {{ key = value, ... }}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> PropertyValue {
        PropertyValue::Text(s.into())
    }

    fn prop(name: &str, value: PropertyValue) -> Property {
        Property {
            name: name.into(),
            value,
        }
    }

    fn minimal() -> SsoProperties {
        let mut p = SsoProperties::default();
        p.apply(&[
            prop("issuer", text("https://idp.example")),
            prop("client_id", text("app")),
            prop("default_group", text("users")),
        ])
        .unwrap();
        p
    }

    #[test]
    fn defaults_and_required_properties() {
        let p = minimal();
        assert!(p.validate().is_ok());
        assert!(!p.disabled && !p.enable_id_token_authentication && !p.allow_offline_access);
        assert!(p.user_id_claims.is_empty() && p.additional_scopes.is_empty());
        for missing in ["issuer", "client_id", "default_group"] {
            let mut q = SsoProperties::default();
            let all = [
                prop("issuer", text("https://idp.example")),
                prop("client_id", text("app")),
                prop("default_group", text("users")),
            ];
            let some: Vec<Property> = all.into_iter().filter(|x| x.name != missing).collect();
            q.apply(&some).unwrap();
            let err = q.validate().unwrap_err();
            assert!(err.message.contains(missing), "{}", err.message);
        }
    }

    #[test]
    fn issuer_rules() {
        for ok in [
            "https://idp.example",
            "https://idp.example/oidc",
            "http://127.0.0.1:8080",
            "http://localhost:9",
            "http://[::1]:80/x",
        ] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
        for bad in [
            "idp.example",
            "http://idp.example",
            "ftp://idp.example",
            "https://",
            "https://user@idp.example",
            "https://idp.example/?q=1",
            "http://127.0.0.2.evil.example",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mappings_need_claim_ids_and_null_clears() {
        let mut p = minimal();
        p.apply(&[prop(
            "groups_claim_mappings",
            PropertyValue::Map(vec![("a".into(), "b".into())]),
        )])
        .unwrap();
        assert!(p
            .validate()
            .unwrap_err()
            .message
            .contains("groups_claim_ids"));
        p.apply(&[prop(
            "groups_claim_ids",
            PropertyValue::List(vec!["groups".into()]),
        )])
        .unwrap();
        assert!(p.validate().is_ok());
        p.apply(&[prop("groups_claim_mappings", PropertyValue::Null)])
            .unwrap();
        assert!(p.groups_claim_mappings.is_empty());
        let mut r = minimal();
        r.apply(&[prop(
            "roles_claim_mappings",
            PropertyValue::Map(vec![("x".into(), "y".into())]),
        )])
        .unwrap();
        assert!(r
            .validate()
            .unwrap_err()
            .message
            .contains("roles_claim_ids"));
    }

    #[test]
    fn types_aliases_and_unknown_names() {
        let mut p = minimal();
        assert!(p.apply(&[prop("disabled", text("yes"))]).is_err());
        assert!(p
            .apply(&[prop("additional_scopes", text("email"))])
            .is_err());
        assert!(p.apply(&[prop("issuer", PropertyValue::Null)]).is_err());
        assert!(p.apply(&[prop("colour", text("red"))]).is_err());
        assert!(p
            .apply(&[
                prop("disabled", text("true")),
                prop("disabled", text("false"))
            ])
            .is_err());
        p.apply(&[prop(
            "user_claim_ids",
            PropertyValue::List(vec!["first_name".into(), "last_name".into()]),
        )])
        .unwrap();
        assert_eq!(p.user_id_claims, ["first_name", "last_name"]);
        assert_eq!(
            p.apply(&[prop("client_secret", text("s3cret"))]).unwrap(),
            SecretChange::Set("s3cret".into())
        );
        assert!(!p.to_json().contains("s3cret"));
        assert_eq!(SsoProperties::from_json(&p.to_json()).unwrap(), p);
        assert!(p.apply(&[prop("protocol_version", text("v2"))]).is_err());
    }
}
