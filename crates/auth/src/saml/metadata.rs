//! A SAML IdP's metadata: read from the integration (`idp_metadata`) or fetched from
//! `idp_metadata_url` (no redirects, size-limited, cached for ten minutes), and checked for
//! what a sign-in needs — an entity id, a signing certificate, and a single sign-on endpoint
//! with the HTTP-Redirect binding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use portcullis_catalog::sso::SamlIdp;
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProvider;

use crate::oidc::fetch::Fetcher;

const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// How long fetched metadata is reused.
const TTL: Duration = Duration::from_secs(600);

/// An IdP as a sign-in uses it.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Where browsers are sent with a request (HTTP-Redirect binding), if the IdP has one.
    pub sso_redirect_url: Option<String>,
    pub descriptor: EntityDescriptor,
}

/// Reads a metadata document: refused without an entity id or a signing certificate.
pub fn parse(xml: &str) -> Result<IdpMetadata, String> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err("the metadata declares a document type; SAML metadata never does".into());
    }
    let descriptor: EntityDescriptor = xml
        .parse()
        .map_err(|e| format!("the metadata is not a SAML EntityDescriptor: {e}"))?;
    let entity_id = descriptor
        .entity_id
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or("the metadata names no entityID")?;
    let idps = descriptor
        .idp_sso_descriptors
        .as_ref()
        .filter(|d| !d.is_empty())
        .ok_or("the metadata has no IDPSSODescriptor (is it an IdP's?)")?;
    let probe = ServiceProvider {
        idp_metadata: descriptor.clone(),
        ..ServiceProvider::default()
    };
    match probe.idp_signing_certs() {
        Ok(Some(c)) if !c.is_empty() => {}
        Ok(_) => {
            return Err(
                "the metadata has no signing certificate (KeyDescriptor use=\"signing\"); \
                 unsigned assertions are never accepted"
                    .into(),
            )
        }
        Err(e) => {
            return Err(format!(
                "the metadata's signing certificate is unreadable: {e}"
            ))
        }
    }
    let sso_redirect_url = idps
        .iter()
        .flat_map(|d| d.single_sign_on_services.iter())
        .find(|e| e.binding == REDIRECT_BINDING)
        .map(|e| e.location.clone());
    Ok(IdpMetadata {
        entity_id,
        sso_redirect_url,
        descriptor,
    })
}

/// Metadata by where it came from.
#[derive(Default)]
pub struct MetadataCache {
    fetched: Mutex<HashMap<String, (Instant, Arc<IdpMetadata>)>>,
}

impl MetadataCache {
    /// The metadata of an integration's IdP.
    pub async fn get(&self, idp: &SamlIdp, fetcher: &Fetcher) -> Result<Arc<IdpMetadata>, String> {
        if let Some(doc) = &idp.idp_metadata {
            return parse(doc).map(Arc::new);
        }
        let url = idp
            .idp_metadata_url
            .as_deref()
            .ok_or("the integration has neither idp_metadata nor idp_metadata_url")?;
        if let Some((at, m)) = self.fetched.lock().get(url) {
            if at.elapsed() < TTL {
                return Ok(m.clone());
            }
        }
        let xml = fetcher.get_xml(url).await.map_err(|e| e.0)?;
        let metadata = Arc::new(parse(&xml).map_err(|e| format!("{url}: {e}"))?);
        let mut fetched = self.fetched.lock();
        if fetched.len() > 1000 {
            fetched.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        fetched.insert(url.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }
}
