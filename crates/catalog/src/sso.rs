//! SSO integration properties (seed 003's "SSO Parameters" table): defaults, how a property
//! statement changes them, and the validation every stored integration passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

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

/// The non-secret properties of an OpenID Connect integration, as stored (JSON) and shown in
/// `sys.oidc_integrations`. The client secret is kept apart, sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcProperties {
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

impl OidcProperties {
    /// Applies `name = value` properties in order. `user_claim_ids` is an alias of
    /// `user_id_claims`. Returns what happens to the client secret.
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
        if !self.groups_claim_mappings.is_empty() && self.groups_claim_ids.is_empty() {
            return Err(CatalogError::invalid(
                "groups_claim_mappings needs groups_claim_ids: name the token claims that hold \
                 the provider's groups",
            ));
        }
        if !self.roles_claim_mappings.is_empty() && self.roles_claim_ids.is_empty() {
            return Err(CatalogError::invalid(
                "roles_claim_mappings needs roles_claim_ids: name the token claims that hold the \
                 provider's roles",
            ));
        }
        if let Some(host) = &self.redirect_host {
            if host.is_empty() || host.contains(['/', '\\', '?', '#', '@', ' ']) {
                return Err(CatalogError::invalid(format!(
                    "redirect_host \"{host}\" must be a host name with an optional port"
                )));
            }
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

    fn minimal() -> OidcProperties {
        let mut p = OidcProperties::default();
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
            let mut q = OidcProperties::default();
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
        assert_eq!(OidcProperties::from_json(&p.to_json()).unwrap(), p);
        assert!(p.apply(&[prop("protocol_version", text("v2"))]).is_err());
    }
}
