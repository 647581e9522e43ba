//! Fuzz target: a token given as the password, against a fixed key set (an RSA and a P-256
//! key). Header rules, rule choice, signature check and claim rules see any input without a
//! panic, and no input the fuzzer makes is ever accepted as signed: it holds no private key,
//! so an accepted signature would be a forgery (alg none, a symmetric key made of a public
//! key, a confused key family…).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_auth::oidc::provider::{parse_jwks, SigningKey};
use portcullis_auth::oidc::validate::{
    check_claims, check_header, check_signature, choose_rules, Trace,
};
use portcullis_auth::oidc::TokenKind;
use portcullis_catalog::sso::SsoProperties;
use std::sync::Arc;

static KEYS: LazyLock<Vec<Arc<SigningKey>>> = LazyLock::new(|| {
    let set = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "use": "sig", "e": "AQAB",
         "n": "x-LTiFt2lpCtiCe3xycrvbvqvPxJqkaKCamAmg7ICYmnRInRKfWwxRFBJj76GYtjdi-SGKmIDfs-JNxWypBQtC1PxPehqrbnY8DEEPRw4tnN6PkXOuSPNNJTuOE-qybdjcb2hJfzy1G9_sUL4NRDt_pVlHZkJVEr8cwe2wyNL3TjpYsbQT-1vhKdamPwxG5_y4SnZgC3F3D9lBkmIzGswNWgO_MMGNMwiNz23iktiCFJcGJ4aMVh-3WlrdEPKn-W6mkZRmxUShJrIqIyEWAOM1O8Jo6Ym-pqSaTQwoAc8RTvSo4yYfHnblDb54NEQll1Bi7kCEjnvwqmqWee6t5hqw"},
        {"kty": "EC", "kid": "ec", "use": "sig", "crv": "P-256",
         "x": "uPgvIDnIsuZUjSXxeuWUqbutxdng20Ktg8t0WSbDVAM", "y": "CcaswQA2rqqJgPSQarfaMGg9501k9PR6N45tr_ZF2-s"}
    ]});
    let (keys, skipped) = parse_jwks(&set).expect("the fixed key set parses");
    assert!(skipped.is_empty(), "{skipped:?}");
    keys
});

static PROPS: LazyLock<SsoProperties> = LazyLock::new(|| SsoProperties {
    issuer: "https://idp.example".into(),
    client_id: "app".into(),
    default_group: "users".into(),
    additional_audiences: vec!["https://api.example".into()],
    ..Default::default()
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let mut trace = Trace::default();
    // The claim rules on whatever the payload says, signed or not.
    if let Some(payload) = token.split('.').nth(1) {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        if let Ok(bytes) = engine.decode(payload) {
            if let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(&bytes) {
                for kind in [TokenKind::IdToken, TokenKind::AccessToken] {
                    let _ = check_claims(&claims, kind, &PROPS, 1_700_000_000, &mut trace);
                }
            }
        }
    }
    let Ok(header) = check_header(token, &mut trace) else {
        return;
    };
    for kind in [TokenKind::IdToken, TokenKind::AccessToken] {
        let _ = choose_rules(&header, kind, &PROPS, &mut trace);
    }
    for key in KEYS.iter() {
        if let Ok(claims) = check_signature(token, &header, key, &mut trace) {
            panic!(
                "a token nobody signed was accepted by key {:?}: {claims:?}",
                key.kid
            );
        }
    }
});
