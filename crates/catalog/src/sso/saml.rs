//! A SAML integration's identity provider (issue 14): where its metadata comes from (a URL or
//! the document itself), the entity id the server signs in as, and how strictly assertions are
//! timed. The XML itself is read and checked by the authentication layer.

use serde::{Deserialize, Serialize};

use super::{boolean, check_issuer, optional_text, required_text, PropertyValue};
use crate::error::CatalogError;

/// The largest metadata document an integration may hold inline.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// A SAML session's default lifetime.
pub const SAML_SESSION_SECONDS: i64 = 3600;
/// The default allowance for clocks that disagree.
pub const SAML_CLOCK_SKEW_SECONDS: i64 = 60;

/// A SAML integration's identity provider and the service provider the server is to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamlIdp {
    /// Where the IdP's metadata is published (`https://`, plain `http://` only on loopback).
    pub idp_metadata_url: Option<String>,
    /// The IdP's metadata document itself (an `EntityDescriptor`).
    pub idp_metadata: Option<String>,
    /// The server's entity id: the audience its assertions must name.
    pub sp_entity_id: String,
    /// Whether a response no sign-in request of this server asked for (IdP-initiated) is
    /// accepted; replayed assertions are refused either way.
    pub allow_idp_initiated: bool,
    /// How far the IdP's clock may be off (seconds; default 60, at most 300).
    pub clock_skew_seconds: i64,
    /// How long a session signed in with an assertion lasts (seconds; default 3600).
    pub session_seconds: i64,
}

/// The SAML integration property names.
pub const SAML_PROPERTY_NAMES: &[&str] = &[
    "idp_metadata_url",
    "idp_metadata",
    "sp_entity_id",
    "allow_idp_initiated",
    "clock_skew_seconds",
    "session_seconds",
    "redirect_host",
    "redirect_ssl",
    "default_group",
    "disabled",
    "user_id_claims",
    "groups_claim_ids",
    "groups_claim_mappings",
    "roles_claim_ids",
    "roles_claim_mappings",
    "allowed_groups",
    "allowed_roles",
    "blocked_groups",
    "blocked_roles",
];

fn seconds(name: &str, v: &PropertyValue) -> Result<i64, CatalogError> {
    required_text(name, v)?
        .parse()
        .map_err(|_| CatalogError::invalid(format!("\"{name}\" takes a whole number of seconds")))
}

impl SamlIdp {
    /// A new integration's defaults.
    pub fn new() -> Self {
        Self {
            clock_skew_seconds: SAML_CLOCK_SKEW_SECONDS,
            session_seconds: SAML_SESSION_SECONDS,
            ..Self::default()
        }
    }

    /// Applies one SAML property; `false` if `name` is not one of its own.
    pub(super) fn apply(&mut self, name: &str, v: &PropertyValue) -> Result<bool, CatalogError> {
        match name {
            "idp_metadata_url" => {
                self.idp_metadata_url = optional_text(name, v)?.filter(|t| !t.is_empty());
                if self.idp_metadata_url.is_some() {
                    self.idp_metadata = None;
                }
            }
            "idp_metadata" => {
                self.idp_metadata = optional_text(name, v)?.filter(|t| !t.trim().is_empty());
                if self.idp_metadata.is_some() {
                    self.idp_metadata_url = None;
                }
            }
            "sp_entity_id" => self.sp_entity_id = required_text(name, v)?,
            "allow_idp_initiated" => self.allow_idp_initiated = boolean(name, v)?,
            "clock_skew_seconds" => self.clock_skew_seconds = seconds(name, v)?,
            "session_seconds" => self.session_seconds = seconds(name, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The rules every stored SAML integration satisfies.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let bad = |why: &str| Err(CatalogError::invalid(why.to_owned()));
        match (&self.idp_metadata_url, &self.idp_metadata) {
            (None, None) => {
                return bad(
                    "a SAML integration needs idp_metadata_url (where the IdP publishes its \
                     metadata) or idp_metadata (the metadata document itself)",
                )
            }
            (Some(url), _) => check_issuer(url).map_err(|e| {
                CatalogError::invalid(e.message.replacen("issuer", "idp_metadata_url", 1))
            })?,
            (None, Some(doc)) => {
                if doc.len() > MAX_METADATA_BYTES {
                    return bad("idp_metadata is larger than 256 KiB");
                }
                if !doc.contains("EntityDescriptor") {
                    return bad(
                        "idp_metadata must be the IdP's SAML metadata (an EntityDescriptor \
                         document)",
                    );
                }
            }
        }
        if self.sp_entity_id.is_empty() {
            return bad(
                "the SAML property \"sp_entity_id\" is required: the entity id this server \
                 has at the IdP (the audience of its assertions)",
            );
        }
        if self
            .sp_entity_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("sp_entity_id must not contain spaces or control characters");
        }
        if !(0..=300).contains(&self.clock_skew_seconds) {
            return bad("clock_skew_seconds must be between 0 and 300");
        }
        if !(60..=7 * 86_400).contains(&self.session_seconds) {
            return bad("session_seconds must be between 60 and 604800");
        }
        Ok(())
    }
}
