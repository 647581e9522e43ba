//! Checking a SAML response (issue 14): the signature with the IdP's certificate through
//! samael (libxmlsec1, exclusive C14N; only what the signature covers is read, so a wrapped
//! copy is never the one used), then what samael leaves to its caller — an algorithm
//! allow-list, a required audience, an assertion id for the replay cache, and no
//! `InResponseTo` on a response nobody asked for. Synchronous (libxml2): call it off the async
//! workers.

use chrono::{DateTime, Utc};
use portcullis_catalog::Reason;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::EntityDescriptor;
use samael::schema::{Assertion, Response};
use samael::service_provider::{Error as SpError, ServiceProvider};

/// The largest decoded response accepted.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// Signature algorithms accepted: RSA and ECDSA with SHA-256 or stronger (no SHA-1, no DSA).
pub const ALLOWED_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// What a response must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The server's entity id at the IdP: the audience.
    pub sp_entity_id: &'a str,
    /// The assertion consumer service URL the response was sent to: recipient and
    /// destination.
    pub acs_url: &'a str,
    /// The id of the request this response must answer; `None` for an unsolicited one.
    pub request_id: Option<&'a str>,
    pub clock_skew_seconds: i64,
}

/// A checked assertion: what the sign-in reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub issuer: String,
    pub assertion_id: String,
    pub name_id: Option<String>,
    /// `(Name, FriendlyName, values)` of each attribute.
    pub attributes: Vec<(String, Option<String>, Vec<String>)>,
    /// The end of the assertion's validity: the replay cache keeps its id until then.
    pub valid_until: DateTime<Utc>,
}

/// Why a response was refused: the reason, and a sentence for the administrator.
pub type Refusal = (Reason, String);

/// Decodes the `SAMLResponse` form field: base64 of UTF-8 XML, bounded, with no document type
/// declaration (no entities, internal or external, reach the XML parsers).
pub fn decode(field: &str) -> Result<String, Refusal> {
    use base64::Engine;
    let format = |why: &str| (Reason::SamlSignature, format!("the SAML response {why}"));
    if field.len() > MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err(format("is larger than 512 KiB"));
    }
    let compact: String = field.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| format("is not base64"))?;
    let xml = String::from_utf8(bytes).map_err(|_| format("is not UTF-8 text"))?;
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(format("declares a document type; SAML messages never do"));
    }
    Ok(xml)
}

/// The request id a response claims to answer, read without checking anything (to find the
/// pending request to check it against): the response's `InResponseTo`, else its assertion's.
pub fn claimed_request_id(xml: &str) -> Option<String> {
    let response: Response = xml.parse().ok()?;
    response.in_response_to.clone().or_else(|| {
        response
            .assertion
            .as_ref()
            .and_then(|a| a.subject.as_ref())
            .and_then(|s| s.subject_confirmations.as_ref())
            .into_iter()
            .flatten()
            .find_map(|c| c.subject_confirmation_data.as_ref()?.in_response_to.clone())
    })
}

/// Checks a decoded response against the IdP's metadata and what it must match.
pub fn verify(
    xml: &str,
    idp: &EntityDescriptor,
    expected: &Expected<'_>,
) -> Result<Verified, Refusal> {
    let sp = ServiceProvider {
        entity_id: Some(expected.sp_entity_id.to_owned()),
        acs_url: Some(expected.acs_url.to_owned()),
        metadata_url: None,
        slo_url: None,
        idp_metadata: idp.clone(),
        allow_idp_initiated: expected.request_id.is_none(),
        max_clock_skew: chrono::Duration::seconds(expected.clock_skew_seconds),
        max_issue_delay: chrono::Duration::seconds(90 + expected.clock_skew_seconds),
        allowed_signature_algorithms: Some(ALLOWED_ALGORITHMS.to_vec()),
        ..ServiceProvider::default()
    };
    // samael skips every signature check when the metadata has no certificate: never let it.
    match sp.idp_signing_certs() {
        Ok(Some(certs)) if !certs.is_empty() => {}
        _ => {
            return Err((
                Reason::ProviderDiscovery,
                "the IdP's metadata has no usable signing certificate".into(),
            ))
        }
    }
    // Only what the signature covers is read, but a response that carries more than one
    // assertion (the shape of every signature-wrapping attack) is refused outright.
    match assertion_elements(xml) {
        1 => {}
        n => {
            return Err((
                Reason::SamlSignature,
                format!("the SAML response must carry exactly one assertion; it carries {n}"),
            ))
        }
    }
    let ids = expected.request_id.map(|id| [id]);
    let assertion = sp
        .parse_xml_response(xml, ids.as_ref().map(|a| &a[..]))
        .map_err(|e| (reason_of(&e), format!("the SAML response was refused: {e}")))?;
    checked(assertion, expected)
}

/// How many `Assertion` elements (any namespace prefix) a document has.
fn assertion_elements(xml: &str) -> usize {
    xml.split('<')
        .skip(1)
        .filter(|tag| {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or_default();
            name.rsplit(':').next() == Some("Assertion")
        })
        .count()
}

/// What samael's error means for the sign-in.
fn reason_of(e: &SpError) -> Reason {
    match e {
        SpError::ResponseInResponseToInvalid { .. }
        | SpError::AssertionInResponseToInvalid { .. } => Reason::SamlRequest,
        SpError::FailedToValidateSignature
        | SpError::FailedToParseSamlResponse(_)
        | SpError::FailedToParseSamlAssertion(_)
        | SpError::FailedToParseCert { .. }
        | SpError::CryptoXmlError(_)
        | SpError::CryptoProviderError(_)
        | SpError::UnexpectedError => Reason::SamlSignature,
        _ => Reason::SamlConditions,
    }
}

/// The checks samael leaves out, on an assertion it verified.
fn checked(assertion: Assertion, expected: &Expected<'_>) -> Result<Verified, Refusal> {
    let conditions = |why: String| (Reason::SamlConditions, why);
    // samael checks the audience only when there is one: require it.
    let audiences: Vec<&String> = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|r| r.audience.iter())
        .collect();
    if !audiences
        .iter()
        .any(|a| a.as_str() == expected.sp_entity_id)
    {
        return Err(conditions(format!(
            "the assertion names no audience \"{}\" (it names {audiences:?})",
            expected.sp_entity_id
        )));
    }
    let confirmations: Vec<_> = assertion
        .subject
        .as_ref()
        .and_then(|s| s.subject_confirmations.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .collect();
    // With no request to answer samael accepts any InResponseTo: an assertion that answers a
    // request must come back with that request.
    if expected.request_id.is_none() && confirmations.iter().any(|d| d.in_response_to.is_some()) {
        return Err((
            Reason::SamlRequest,
            "the assertion answers a sign-in request this server does not have (used, expired \
             or never made)"
                .into(),
        ));
    }
    if assertion.id.is_empty() {
        return Err(conditions("the assertion has no ID".into()));
    }
    let skew = chrono::Duration::seconds(expected.clock_skew_seconds);
    let until = confirmations
        .iter()
        .filter_map(|d| d.not_on_or_after)
        .chain(
            assertion
                .conditions
                .as_ref()
                .and_then(|c| c.not_on_or_after),
        )
        .min()
        .ok_or_else(|| conditions("the assertion has no NotOnOrAfter".into()))?;
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.trim().to_owned())
        .filter(|v| !v.is_empty());
    let attributes = assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| s.attributes.iter())
        .filter_map(|a| {
            let values = a
                .values
                .iter()
                .filter_map(|v| v.value.as_ref().map(|t| t.trim().to_owned()))
                .filter(|v| !v.is_empty())
                .collect();
            Some((a.name.clone()?, a.friendly_name.clone(), values))
        })
        .collect();
    Ok(Verified {
        issuer: assertion.issuer.value.clone().unwrap_or_default(),
        assertion_id: assertion.id.clone(),
        name_id,
        attributes,
        valid_until: until + skew,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_are_counted_under_any_prefix() {
        assert_eq!(
            assertion_elements(
                "<samlp:Response><saml:Assertion ID=\"a\"></saml:Assertion></samlp:Response>"
            ),
            1
        );
        assert_eq!(
            assertion_elements("<Response><Assertion/><x:Assertion>\n</x:Assertion></Response>"),
            2
        );
        assert_eq!(
            assertion_elements("<r><saml:AssertionConsumer/><saml:EncryptedAssertion/></r>"),
            0
        );
    }

    #[test]
    fn document_types_and_garbage_are_refused_before_any_parser() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(decode(&b64(
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>"
        ))
        .is_err());
        assert!(decode("%%%").is_err());
        assert!(decode(&base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])).is_err());
        assert!(decode(&"A".repeat(MAX_RESPONSE_BYTES * 2)).is_err());
        assert_eq!(decode(&b64("<r/>")).unwrap(), "<r/>");
    }
}
