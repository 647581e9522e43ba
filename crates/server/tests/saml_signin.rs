//! SAML integrations (issue 14, item 2) against a real IdP (Debian's SimpleSAMLphp, started by
//! the test under `php -S` with its own signing key): a browser sign-in started with
//! `POST /v1/sso_authentication`, the IdP's signed response posted to the assertion consumer
//! service (first cross-site, then re-posted with the flow cookie), groups mapped, a blocked
//! group refused, seed 004's form login with an assertion; and each attack on the response,
//! run against the real signature — stripped, tampered, wrapped (XSW), replayed, meant for
//! another audience or recipient, expired, answering another request or none, posted from
//! another browser — refused with its reason and no session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use base64::Engine;
use harness::inprocess::{rows, InProcess};
use harness::saml::{Posted, SamlIdp, Sp};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value a `Set-Cookie` of `name` sets.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (k, v) = pair.split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
}

/// A browser sign-in started at the server: the IdP URL and the flow cookie.
async fn start(server: &InProcess) -> (String, String) {
    let r = http()
        .post(server.http("/v1/sso_authentication"))
        .json(&serde_json::json!({"database": "example_database", "do_redirect": false}))
        .send()
        .await
        .unwrap();
    let cookie = set_cookie(&r, "portcullis_saml_flow").expect("the SAML flow cookie");
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let url = body["redirect"].as_str().unwrap().to_owned();
    assert!(url.contains("SAMLRequest="), "{url}");
    (url, cookie)
}

/// Posts a response to the ACS as the browser's re-post (with `cookie` if given): the status,
/// the session cookie, and the page.
async fn post_acs(
    action: &str,
    response: &str,
    relay: Option<&str>,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut form = vec![("SAMLResponse", response), ("reposted", "1")];
    if let Some(r) = relay {
        form.push(("RelayState", r));
    }
    let mut req = http().post(action).form(&form);
    if let Some(c) = cookie {
        req = req.header(reqwest::header::COOKIE, format!("portcullis_saml_flow={c}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let session = set_cookie(&r, "portcullis_session");
    (status, session, r.text().await.unwrap())
}

async fn last_event(admin: &tokio_postgres::Client) -> String {
    rows(
        admin,
        "SELECT method, identity, result, reason FROM sys.authentication_events \
         ORDER BY id DESC LIMIT 1",
    )
    .await
    .join("")
}

/// The last sign-in event was refused with `reason`.
async fn refused_with(admin: &tokio_postgres::Client, reason: &str) {
    let event = last_event(admin).await;
    assert!(event.ends_with(&format!("failure|{reason}")), "{event}");
}

async fn saml_sessions(admin: &tokio_postgres::Client) -> Vec<String> {
    rows(
        admin,
        "SELECT user, groups FROM sys.sessions WHERE authentication_method = 'sso (saml)' \
         ORDER BY start_time",
    )
    .await
}

fn xml_of(p: &Posted) -> String {
    String::from_utf8(B64.decode(&p.saml_response).unwrap()).unwrap()
}

fn encode(xml: &str) -> String {
    B64.encode(xml.as_bytes())
}

/// The `saml:Assertion` element of a response: (start, end) byte offsets.
fn assertion_span(xml: &str) -> (usize, usize) {
    let start = xml.find("<saml:Assertion").expect("an assertion");
    let close = "</saml:Assertion>";
    let end = xml.find(close).unwrap() + close.len();
    (start, end)
}

/// A change made to a genuine response's XML.
type Tamper = Box<dyn Fn(&str) -> String>;

/// `xml` with every signature removed (SimpleSAMLphp signs the response and the assertion).
fn unsigned(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let (Some(s), Some(e)) = (out.find("<ds:Signature"), out.find("</ds:Signature>")) {
        out.replace_range(s..e + "</ds:Signature>".len(), "");
    }
    out
}

/// `xml` with the response's own signature removed: only the assertion stays signed (as many
/// IdPs send it), so wrapping attacks meet the assertion's signature alone.
fn response_unsigned(xml: &str) -> String {
    let mut out = xml.to_owned();
    let assertion = out.find("<saml:Assertion").unwrap();
    if let (Some(s), Some(e)) = (out.find("<ds:Signature"), out.find("</ds:Signature>")) {
        if s < assertion {
            out.replace_range(s..e + "</ds:Signature>".len(), "");
        }
    }
    out
}

/// The assertion unsigned, with alice's name made `root`'s.
fn forged(assertion: &str) -> String {
    unsigned(assertion).replace(">alice<", ">root<")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_sign_in_and_every_attack_on_the_response() {
    let server = harness::inprocess::start().await;
    let acs = server.http("/v1/saml/acs/example_database/corp_saml");
    let elsewhere = server.http("/v1/saml/acs/example_database/elsewhere");
    let short_acs = server.http("/v1/saml/acs/example_database/short_saml");
    let idp = SamlIdp::start(&[
        Sp {
            entity_id: "portcullis-test".into(),
            acs: vec![acs.clone(), elsewhere.clone()],
            lifetime: None,
        },
        Sp {
            entity_id: "someone-else".into(),
            acs: vec![acs.clone()],
            lifetime: None,
        },
        Sp {
            entity_id: "portcullis-short".into(),
            acs: vec![short_acs.clone()],
            lifetime: Some(1),
        },
    ]);
    let admin = server.admin().await;
    admin
        .batch_execute("CREATE DATABASE example_database")
        .await
        .unwrap();
    let in_db = server
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap();

    // Bad definitions are refused at CREATE, and nothing is created.
    for (sql, expect) in [
        (
            "CREATE SSO INTEGRATION x PROTOCOL saml sp_entity_id = 'a', default_group = g",
            "idp_metadata_url",
        ),
        (
            "CREATE SSO INTEGRATION x PROTOCOL saml idp_metadata_url = 'http://idp.example.org/m', \
             sp_entity_id = 'a', default_group = g",
            "https",
        ),
        (
            "CREATE SSO INTEGRATION x PROTOCOL saml idp_metadata = 'not xml', sp_entity_id = 'a', \
             default_group = g",
            "EntityDescriptor",
        ),
        (
            "CREATE SSO INTEGRATION x PROTOCOL saml idp_metadata_url = 'https://idp/m', \
             sp_entity_id = 'a', default_group = g, client_secret = 's'",
            "unknown SAML integration property",
        ),
    ] {
        let err = in_db.batch_execute(sql).await.unwrap_err();
        let message = err.as_db_error().unwrap().message().to_owned();
        assert!(message.contains(expect), "{sql}: {message}");
    }
    assert_eq!(
        rows(&admin, "SELECT count(*) FROM sys.oidc_integrations").await,
        vec!["0"]
    );

    in_db
        .batch_execute(&format!(
            "CREATE GROUP analysts; CREATE GROUP saml_users; CREATE GROUP contractors; \
             GRANT USE ON DATABASE example_database TO GROUP analysts; \
             GRANT USE ON DATABASE example_database TO GROUP saml_users; \
             CREATE SSO INTEGRATION corp_saml PROTOCOL saml idp_metadata_url = '{md}', \
               sp_entity_id = 'portcullis-test', user_id_claims = [uid], \
               groups_claim_ids = [eduPersonAffiliation], default_group = saml_users, \
               blocked_groups = [contractors]; \
             CREATE SSO INTEGRATION short_saml PROTOCOL saml idp_metadata_url = '{md}', \
               sp_entity_id = 'portcullis-short', user_id_claims = [uid], \
               default_group = saml_users, allow_idp_initiated = true, clock_skew_seconds = 0; \
             ALTER DATABASE example_database SET SSO INTEGRATION corp_saml;",
            md = idp.metadata_url()
        ))
        .await
        .unwrap();
    let shown = rows(
        &admin,
        "SELECT protocol, directory FROM sys.oidc_integrations WHERE name = 'corp_saml'",
    )
    .await
    .join("");
    assert!(
        shown.starts_with("saml") && shown.contains("\"sp_entity_id\":\"portcullis-test\""),
        "{shown}"
    );

    // --- The browser sign-in: request, IdP login, cross-site POST, same-site re-post. ---
    let (url, cookie) = start(&server).await;
    let posted = idp.login(&url, "alice", "alice-pw").await;
    assert_eq!(posted.action, acs);
    let relay = posted.relay_state.clone().expect("RelayState comes back");
    assert_eq!(relay, cookie, "the flow cookie names the request");
    // The IdP's cross-site POST carries no cookie: the answer posts the fields again.
    let r = http()
        .post(&acs)
        .form(&[
            ("SAMLResponse", posted.saml_response.as_str()),
            ("RelayState", relay.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "portcullis_session").is_none());
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"reposted\" value=\"1\"") && page.contains("/ui/continue.js"),
        "{page}"
    );
    // The re-post from this origin brings the cookie: signed in.
    let (status, session, page) =
        post_acs(&acs, &posted.saml_response, Some(&relay), Some(&cookie)).await;
    assert_eq!(status, 303, "{page}");
    assert!(session.is_some());
    assert_eq!(
        saml_sessions(&admin).await,
        vec!["alice|analysts@example_database".to_owned()],
        "alice with her mapped group"
    );
    assert!(last_event(&admin).await.starts_with("saml|alice|success"));
    // The session cookie works on the server's own page.
    let r = http()
        .get(server.http("/ui/session"))
        .header(
            reqwest::header::COOKIE,
            format!("portcullis_session={}", session.unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("alice"));

    // The same response again: its request is used up.
    let (status, session, page) =
        post_acs(&acs, &posted.saml_response, Some(&relay), Some(&cookie)).await;
    assert_eq!((status, session.is_some()), (401, false), "{page}");
    assert!(
        page.contains("does not have") || page.contains("unknown"),
        "{page}"
    );
    assert_eq!(saml_sessions(&admin).await.len(), 1);

    // A blocked group: mallory is refused.
    let (url, cookie) = start(&server).await;
    let p = idp.login(&url, "mallory", "mallory-pw").await;
    let (status, session, page) = post_acs(
        &acs,
        &p.saml_response,
        p.relay_state.as_deref(),
        Some(&cookie),
    )
    .await;
    assert_eq!((status, session.is_some()), (401, false), "{page}");
    assert!(page.contains("contractors"), "{page}");
    refused_with(&admin, "policy").await;

    // No group the catalog knows: the default group.
    let (url, cookie) = start(&server).await;
    let p = idp.login(&url, "bob", "bob-pw").await;
    let (status, _, page) = post_acs(
        &acs,
        &p.saml_response,
        p.relay_state.as_deref(),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 303, "{page}");
    assert!(saml_sessions(&admin)
        .await
        .contains(&"bob|saml_users@example_database".to_owned()));

    // --- Attacks on alice's genuine response, each against a fresh request. ---
    let before = saml_sessions(&admin).await;
    let attacks: Vec<(&str, Tamper, &str)> = vec![
        (
            "signature stripped",
            Box::new(|xml: &str| unsigned(xml)),
            "saml_signature",
        ),
        (
            "name changed under the signature",
            Box::new(|xml: &str| xml.replace(">alice<", ">root<")),
            "saml_signature",
        ),
        (
            "only the assertion signed (not an attack: accepted)",
            Box::new(|xml: &str| response_unsigned(xml)),
            "",
        ),
        (
            "XSW: a forged assertion before the signed one",
            Box::new(|xml: &str| {
                let xml = response_unsigned(xml);
                let (s, e) = assertion_span(&xml);
                let f = forged(&xml[s..e]).replace("ID=\"", "ID=\"evil");
                format!("{}{}{}", &xml[..s], f, &xml[s..])
            }),
            "saml_signature",
        ),
        (
            "XSW: a forged assertion after the signed one",
            Box::new(|xml: &str| {
                let xml = response_unsigned(xml);
                let (s, e) = assertion_span(&xml);
                let f = forged(&xml[s..e]).replace("ID=\"", "ID=\"evil");
                format!("{}{}{}", &xml[..e], f, &xml[e..])
            }),
            "saml_signature",
        ),
        (
            "XSW: a forged assertion with the signed one's ID",
            Box::new(|xml: &str| {
                let xml = response_unsigned(xml);
                let (s, e) = assertion_span(&xml);
                format!("{}{}{}", &xml[..s], forged(&xml[s..e]), &xml[s..])
            }),
            "saml_signature",
        ),
        (
            "XSW: the signed assertion wrapped inside a forged one",
            Box::new(|xml: &str| {
                let xml = response_unsigned(xml);
                let (s, e) = assertion_span(&xml);
                let a = &xml[s..e];
                let f = forged(a).replace("ID=\"", "ID=\"evil");
                let cut = f.find("</saml:Assertion>").unwrap();
                format!(
                    "{}{}<saml:Advice>{}</saml:Advice></saml:Assertion>{}",
                    &xml[..s],
                    &f[..cut],
                    a,
                    &xml[e..]
                )
            }),
            "saml_signature",
        ),
        (
            "XSW: the signed assertion moved into the response's Extensions",
            Box::new(|xml: &str| {
                let xml = response_unsigned(xml);
                let (s, e) = assertion_span(&xml);
                let a = &xml[s..e];
                let f = forged(a).replace("ID=\"", "ID=\"evil");
                let issuer_end = xml.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
                format!(
                    "{}<samlp:Extensions>{}</samlp:Extensions>{}{}{}",
                    &xml[..issuer_end],
                    a,
                    &xml[issuer_end..s],
                    f,
                    &xml[e..]
                )
            }),
            "saml_signature",
        ),
        (
            "a document type with an entity",
            Box::new(|xml: &str| {
                let body = xml.trim_start_matches(|c| c != '<');
                let body = body.strip_prefix("<?xml version=\"1.0\"?>").unwrap_or(body);
                format!("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{body}")
            }),
            "saml_signature",
        ),
    ];
    for (name, tamper, reason) in attacks {
        let (url, cookie) = start(&server).await;
        let p = idp.login(&url, "alice", "alice-pw").await;
        let tampered = encode(&tamper(&xml_of(&p)));
        let (status, session, page) =
            post_acs(&acs, &tampered, p.relay_state.as_deref(), Some(&cookie)).await;
        let event = last_event(&admin).await;
        eprintln!("attack \"{name}\": HTTP {status}, event {event}");
        // Never root: either refused, or (XSW) only the signed assertion was read.
        assert!(!page.contains("root"), "{name}: {page}");
        assert!(
            !saml_sessions(&admin)
                .await
                .iter()
                .any(|s| s.contains("root")),
            "{name}"
        );
        if reason.is_empty() {
            assert!(
                status == 303 && event.starts_with("saml|alice|success"),
                "{name}: {status} {event} {page}"
            );
        } else {
            assert_eq!((status, session.is_some()), (401, false), "{name}: {page}");
            assert!(
                event.ends_with(&format!("failure|{reason}")),
                "{name}: {event}"
            );
        }
    }
    // Wrapped responses that were refused opened nothing; alice's sessions are alice's.
    for s in saml_sessions(&admin).await {
        assert!(
            before.contains(&s) || s == "alice|analysts@example_database",
            "{s}"
        );
    }

    // A response for another request: alice's answer to request A, posted with request B's
    // RelayState and cookie, is refused; request A still completes afterwards.
    let (url_a, cookie_a) = start(&server).await;
    let (_url_b, cookie_b) = start(&server).await;
    let pa = idp.login(&url_a, "alice", "alice-pw").await;
    let (status, _, page) =
        post_acs(&acs, &pa.saml_response, Some(&cookie_b), Some(&cookie_b)).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("another sign-in request"), "{page}");
    refused_with(&admin, "saml_request").await;
    // From another browser (no cookie, already re-posted): refused, request A not used up.
    let (status, _, page) = post_acs(&acs, &pa.saml_response, Some(&cookie_a), None).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("another browser"), "{page}");
    let (status, _, page) =
        post_acs(&acs, &pa.saml_response, Some(&cookie_a), Some(&cookie_a)).await;
    assert_eq!(status, 303, "{page}");

    // --- Unsolicited (IdP-initiated) responses. ---
    let unsolicited = idp
        .login(
            &idp.initiated_url("portcullis-test", None),
            "alice",
            "alice-pw",
        )
        .await;
    let (status, _, page) = post_acs(&acs, &unsolicited.saml_response, None, None).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("allow_idp_initiated"), "{page}");
    refused_with(&admin, "saml_request").await;
    in_db
        .batch_execute("ALTER SSO INTEGRATION corp_saml SET allow_idp_initiated = true")
        .await
        .unwrap();
    // Seed 004's form login with the assertion: the provider-named cookie and the names.
    let login = |response: String| {
        let url = server.http("/v1/login");
        async move {
            http()
                .post(url)
                .header("Accept", "application/json")
                .form(&[("Domain", "corp_saml"), ("SAMLResponse", response.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let r = login(unsolicited.saml_response.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "OAuthToken_corp_saml").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"DomainName": "corp_saml", "UserName": "alice"})
    );
    // Replayed: refused by the replay cache.
    let r = login(unsolicited.saml_response.clone()).await;
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("already used"), "{text}");
    refused_with(&admin, "saml_replay").await;
    // Meant for another service provider (a valid signature, another audience).
    let other = idp
        .login(
            &idp.initiated_url("someone-else", None),
            "alice",
            "alice-pw",
        )
        .await;
    let (status, _, page) = post_acs(&acs, &other.saml_response, None, None).await;
    assert_eq!(status, 401, "{page}");
    assert!(
        page.contains("portcullis-test") || page.contains("udience"),
        "{page}"
    );
    refused_with(&admin, "saml_conditions").await;
    // Sent to another assertion consumer service (recipient and destination elsewhere).
    let misdirected = idp
        .login(
            &idp.initiated_url("portcullis-test", Some(&elsewhere)),
            "alice",
            "alice-pw",
        )
        .await;
    assert_eq!(misdirected.action, elsewhere);
    let (status, _, page) = post_acs(&acs, &misdirected.saml_response, None, None).await;
    assert_eq!(status, 401, "{page}");
    refused_with(&admin, "saml_conditions").await;
    // Expired: a one-second assertion, no clock allowance, posted three seconds later.
    in_db
        .batch_execute("ALTER DATABASE example_database SET SSO INTEGRATION short_saml")
        .await
        .unwrap();
    let short = idp
        .login(
            &idp.initiated_url("portcullis-short", None),
            "alice",
            "alice-pw",
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (status, _, page) = post_acs(&short_acs, &short.saml_response, None, None).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("expired"), "{page}");
    refused_with(&admin, "saml_conditions").await;

    // A SAML integration takes no tokens.
    let r = http()
        .post(server.http("/v1/sso_token"))
        .json(&serde_json::json!({"database": "example_database", "token": "a.b.c"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_metadata_signs_in_and_metadata_without_a_certificate_is_refused() {
    let server = harness::inprocess::start().await;
    let acs = server.http("/v1/saml/acs/example_database/inline_saml");
    let idp = SamlIdp::start(&[Sp {
        entity_id: "portcullis-inline".into(),
        acs: vec![acs.clone()],
        lifetime: None,
    }]);
    let metadata = idp.metadata_xml().await;
    assert!(metadata.contains("KeyDescriptor"), "{metadata}");
    let admin = server.admin().await;
    admin
        .batch_execute("CREATE DATABASE example_database")
        .await
        .unwrap();
    let in_db = server
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap();
    // The IdP's metadata without its certificate: accepted as a definition (it is an IdP's
    // EntityDescriptor), refused when a sign-in would need it, with a sentence saying why.
    let without_key = {
        let s = metadata.find("<md:KeyDescriptor").unwrap();
        let close = "</md:KeyDescriptor>";
        let e = metadata.rfind(close).unwrap() + close.len();
        format!("{}{}", &metadata[..s], &metadata[e..])
    };
    in_db
        .batch_execute(&format!(
            "CREATE GROUP saml_users; \
             GRANT USE ON DATABASE example_database TO GROUP saml_users; \
             CREATE SSO INTEGRATION inline_saml PROTOCOL saml idp_metadata = '{}', \
               sp_entity_id = 'portcullis-inline', user_id_claims = [mail], \
               default_group = saml_users; \
             ALTER DATABASE example_database SET SSO INTEGRATION inline_saml;",
            without_key.replace('\'', "''")
        ))
        .await
        .unwrap();
    let r = http()
        .post(server.http("/v1/sso_authentication"))
        .json(&serde_json::json!({"database": "example_database", "do_redirect": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(text.contains("no signing certificate"), "{text}");
    // With the certificate: the browser sign-in works from the inline document.
    in_db
        .batch_execute(&format!(
            "ALTER SSO INTEGRATION inline_saml SET idp_metadata = '{}'",
            metadata.replace('\'', "''")
        ))
        .await
        .unwrap();
    let (url, cookie) = start(&server).await;
    let p = idp.login(&url, "alice", "alice-pw").await;
    let (status, session, page) = post_acs(
        &acs,
        &p.saml_response,
        p.relay_state.as_deref(),
        Some(&cookie),
    )
    .await;
    assert_eq!((status, session.is_some()), (303, true), "{page}");
    assert_eq!(
        saml_sessions(&admin).await,
        vec!["alice@example.org|saml_users@example_database".to_owned()]
    );
    // The server's own metadata for the IdP's administrator.
    let sp = http()
        .get(server.http("/v1/saml/metadata/example_database/inline_saml"))
        .send()
        .await
        .unwrap();
    assert_eq!(sp.status(), 200);
    let sp = sp.text().await.unwrap();
    assert!(
        sp.contains("entityID=\"portcullis-inline\"")
            && sp.contains(&format!("Location=\"{acs}\"")),
        "{sp}"
    );
    let none = http()
        .get(server.http("/v1/saml/metadata/example_database/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    let shown = rows(
        &admin,
        "SELECT directory FROM sys.oidc_integrations WHERE name = 'inline_saml'",
    )
    .await
    .join("");
    assert!(
        shown.contains("inline, ") && !shown.contains("X509"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_signs_in_through_the_servers_code_page() {
    let server = harness::inprocess::start().await;
    let acs = server.http("/v1/saml/acs/example_database/corp_saml");
    let idp = SamlIdp::start(&[Sp {
        entity_id: "portcullis-test".into(),
        acs: vec![acs.clone()],
        lifetime: None,
    }]);
    let admin = server.admin().await;
    admin
        .batch_execute("CREATE DATABASE example_database")
        .await
        .unwrap();
    let in_db = server
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap();
    in_db
        .batch_execute(&format!(
            "CREATE GROUP analysts; CREATE GROUP saml_users; \
             GRANT USE ON DATABASE example_database TO GROUP analysts; \
             GRANT USE ON DATABASE example_database TO GROUP saml_users; \
             CREATE SSO INTEGRATION corp_saml PROTOCOL saml idp_metadata_url = '{}', \
               sp_entity_id = 'portcullis-test', user_id_claims = [uid], \
               groups_claim_ids = [eduPersonAffiliation], default_group = saml_users; \
             ALTER DATABASE example_database SET SSO INTEGRATION corp_saml;",
            idp.metadata_url()
        ))
        .await
        .unwrap();
    // psql as @example_database: the server's page and a code, as for a device grant.
    let mut cmd = std::process::Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={} user=@example_database dbname=example_database \
         connect_timeout=60",
        server.sql_addr().port()
    ))
    .args([
        "-X",
        "-A",
        "-t",
        "-c",
        "SELECT CURRENT_USER(), CURRENT_GROUPS()",
    ])
    .env("PGSSLMODE", "disable")
    .env_remove("PGPASSWORD");
    let psql = harness::process::Watched::spawn(cmd);
    let (psql, line, link) = tokio::task::spawn_blocking(move || {
        let mut psql = psql;
        let line = psql.line_with("enter the code");
        let link = psql.line_with("user_code=");
        (psql, line, link)
    })
    .await
    .unwrap();
    let code = line.rsplit(' ').next().unwrap().trim().to_owned();
    assert!(line.contains(&server.http("/ui/terminal")), "{line}");
    assert!(
        link.contains(&format!("/ui/terminal?user_code={code}")),
        "{link}"
    );
    // The page says what the code signs in, and a GET changes nothing.
    let page = http()
        .get(server.http(&format!("/ui/terminal?user_code={code}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("database &quot;example_database&quot;"),
        "{page}"
    );
    // Searching for a live code with the GET page is throttled as the POST is: after 20
    // unknown codes from one address, that address is told so even for the live code (which
    // another address still sees).
    let guesser = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for i in 0..20 {
        let page = guesser
            .get(server.http(&format!("/ui/terminal?user_code=BCDF-{:0>4}", i)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("example_database"), "{page}");
    }
    let r = guesser
        .get(server.http(&format!("/ui/terminal?user_code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("too many unknown codes"), "{page}");
    assert!(!page.contains("example_database"), "{page}");
    // A wrong code: refused on the page, nothing started.
    let r = http()
        .post(server.http("/ui/terminal"))
        .form(&[("user_code", "BCDF-GHJK")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The code, typed loosely: off to the IdP with the flow cookie.
    let r = http()
        .post(server.http("/ui/terminal"))
        .form(&[("user_code", code.to_lowercase().replace('-', " "))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = set_cookie(&r, "portcullis_saml_flow").unwrap();
    let to_idp = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let p = idp.login(&to_idp, "alice", "alice-pw").await;
    let (status, session, page) = post_acs(
        &acs,
        &p.saml_response,
        p.relay_state.as_deref(),
        Some(&cookie),
    )
    .await;
    assert_eq!(
        (status, session),
        (200, None),
        "the terminal gets the session: {page}"
    );
    assert!(page.contains("Terminal signed in"), "{page}");
    let (code_, out, err) = tokio::task::spawn_blocking(move || psql.finish())
        .await
        .unwrap();
    assert_eq!(code_, 0, "{err}");
    assert!(out.starts_with("alice|"), "{out}");
    assert!(out.contains("analysts"), "{out}");
    // The code was used: it signs nothing in again.
    let r = http()
        .post(server.http("/ui/terminal"))
        .form(&[("user_code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
