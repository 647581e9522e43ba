//! Browser sign-in end to end against the real provider (npm oidc-provider): the
//! authorization code flow through `/v1/sso_authentication` and `/v1/callback`, every refusal
//! (tampered, replayed or expired state, replayed code, wrong nonce, foreign callback paths,
//! mix-up `iss`, another browser, provider error) leaving no session, renewal with the refresh
//! token, sign-out with revocation, seed 004's domain login, HTTPS, and headless Chromium
//! through the provider's own login and consent pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{free_port, idp_dir, tokens, NodeServer};
use harness::web::{field_value, query_param, resolve, with_param, Web};
use harness::{Server, ADMIN_PASSWORD};
use serde_json::json;

/// `example_database` with integration `corp_sso` (client rs256-client with its secret,
/// offline access) and the group analysts@example_database holding USE.
fn configure(server: &Server, issuer: &str) {
    harness::example(server);
    let sql = format!(
        "CREATE SSO INTEGRATION corp_sso PROTOCOL oidc \
         issuer = \"{issuer}\", client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", \
         default_group = sso_users, additional_scopes = [email, groups, offline_access], \
         allow_offline_access = true, groups_claim_ids = [groups]"
    );
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        ADMIN_PASSWORD,
        &[
            "CREATE GROUP sso_users",
            &sql,
            "ALTER DATABASE example_database SET SSO INTEGRATION corp_sso",
        ],
    );
    assert!(ok, "{err}");
    server.admin(&["CREATE DATABASE plain_database"]);
}

fn start_provider(server: &Server, extra: &[&str]) -> (NodeServer, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let redirect = format!("http://127.0.0.1:{}/v1/callback", server.http_port);
    let mut args = vec!["--redirect-uri", redirect.as_str()];
    args.extend_from_slice(extra);
    let idp = NodeServer::provider_with(0, &keys.path().join("keys.json"), &args);
    (idp, keys)
}

/// The flow counters, from `/metrics` (parsed by prometheus_client; absent = 0).
fn health(web: &Web, server: &Server) -> serde_json::Value {
    let samples = harness::parse_metrics(&web.get(&server.http("/metrics")).body);
    let count = |name: &str| {
        samples
            .get(format!("{name}{{}}"))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0) as u64
    };
    serde_json::json!({
        "sso_flows_completed": count("portcullis_sso_callback_seconds_count"),
        "sso_sessions_renewed": count("portcullis_sso_sessions_renewed_total"),
        "sso_flows_pending": count("portcullis_sso_flows_pending"),
        "sso_refresh_tokens_revoked": count("portcullis_sso_refresh_tokens_revoked_total"),
    })
}

fn sso_sessions(server: &Server) -> String {
    server.admin(&["SELECT count(*) FROM sys.sessions WHERE sso_integration IS NOT NULL"])
}

/// Starts a flow with do_redirect=false; answers the provider URL.
fn start_flow(web: &Web, server: &Server, body: serde_json::Value) -> String {
    let r = web.post_json(&server.http("/v1/sso_authentication"), &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v["redirect"].as_str().unwrap().to_owned()
}

fn assert_security_headers(r: &harness::web::Resp) {
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(
        r.header("content-security-policy")
            .contains("frame-ancestors 'none'"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("referrer-policy"), "no-referrer");
}

#[test]
fn authorization_code_flow_and_every_refusal() {
    let server = Server::start_env(&[("PORTCULLIS_SSO_RENEW_MARGIN_SECONDS", "80000")]);
    let (mut idp, _keys) = start_provider(&server, &[]);
    configure(&server, &idp.url);
    let web = Web::new();
    let callback_prefix = server.http("/v1/callback");

    // The authorization request (seed 000, do_redirect=false): PKCE S256, state, nonce,
    // openid + additional scopes, offline access, the advertised redirect URI.
    let url = start_flow(
        &web,
        &server,
        json!({"database": "example_database", "sso_callback_path": "/ui/session", "do_redirect": false}),
    );
    assert!(url.starts_with(&format!("{}/auth?", idp.url)), "{url}");
    assert_eq!(query_param(&url, "response_type").unwrap(), "code");
    assert_eq!(query_param(&url, "client_id").unwrap(), "rs256-client");
    assert_eq!(query_param(&url, "code_challenge_method").unwrap(), "S256");
    assert_eq!(query_param(&url, "code_challenge").unwrap().len(), 43);
    assert_eq!(
        query_param(&url, "scope").unwrap(),
        "openid email groups offline_access"
    );
    assert_eq!(query_param(&url, "access_type").unwrap(), "offline");
    assert_eq!(query_param(&url, "prompt").unwrap(), "consent");
    assert_eq!(query_param(&url, "redirect_uri").unwrap(), callback_prefix);
    let state = query_param(&url, "state").unwrap();
    assert!(state.len() >= 43 && query_param(&url, "nonce").unwrap().len() >= 43);
    assert!(!url.contains("secret"), "no secret in the URL");

    // The happy path: provider → callback → session cookie → session page.
    let cb = web.follow_until(&url, &callback_prefix);
    assert_eq!(query_param(&cb, "state").unwrap(), state);
    assert_eq!(query_param(&cb, "iss").unwrap(), idp.url, "RFC 9207 iss");
    let r = web.get(&cb);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/ui/session");
    let set_cookie = r.header("set-cookie");
    assert!(set_cookie.contains("portcullis_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.contains("Secure"),
        "plain-http loopback: not Secure"
    );
    assert_security_headers(&r);
    let page = web.get(&server.http("/ui/session"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<dd id=\"user\">alice@example.com</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("analysts@example_database"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("refresh token, before the token expires"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("eyJ"), "no token on the page");
    assert_security_headers(&page);
    assert_eq!(sso_sessions(&server), "1");
    let h = health(&web, &server);
    assert_eq!(h["sso_flows_completed"], 1);
    // The margin makes every request renew: the session page renewed it with the refresh token.
    assert!(h["sso_sessions_renewed"].as_u64().unwrap() >= 1, "{h}");
    // /v1/execute with the browser session's cookie.
    let r = web.post_json(
        &server.http("/v1/execute/example_database"),
        &json!({"statement": "SELECT CURRENT_USER(), CURRENT_GROUPS()"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("alice@example.com"), "{}", r.body);

    // Replayed callback (same state and code): the flow was used once.
    let r = web.get(&cb);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown or was already used"), "{}", r.body);
    assert!(r.body.contains("No session was opened"));

    // Tampered state.
    let r = web.get(&with_param(
        &cb,
        "state",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown or was already used"), "{}", r.body);
    let r = web.get(&format!("{callback_prefix}?code=x"));
    assert!(r.body.contains("no state parameter"), "{}", r.body);

    // Replayed code with a fresh state: the provider refuses the used code.
    let other = Web::new();
    let url2 = start_flow(
        &other,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let state2 = query_param(&url2, "state").unwrap();
    // (from the browser that started the fresh flow: every flow is bound to its browser)
    let r = other.get(&with_param(&cb, "state", &state2));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("invalid_grant"), "{}", r.body);

    // Wrong nonce: the request the provider sees carries another nonce than the flow's.
    let url3 = start_flow(
        &other,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let cb3 = other.follow_until(
        &with_param(&url3, "nonce", "forged-nonce"),
        &callback_prefix,
    );
    let r = other.get(&cb3);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("nonce"), "{}", r.body);

    // Mix-up: an iss that is not the flow's issuer.
    let url4 = start_flow(
        &other,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let cb4 = other.follow_until(&url4, &callback_prefix);
    let r = other.get(&with_param(&cb4, "iss", "http%3A%2F%2F127.0.0.1%3A1"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("RFC 9207"), "{}", r.body);
    // … and the flow is gone afterwards, even with the right iss.
    assert!(other.get(&cb4).body.contains("already used"));

    // Provider error: the user declines at the provider.
    let fresh = Web::new();
    let url5 = start_flow(
        &fresh,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let cb5 = fresh.follow_until(&format!("{url5}&login_hint=denied"), &callback_prefix);
    assert_eq!(
        query_param(&cb5, "error").as_deref(),
        Some("access_denied"),
        "{cb5}"
    );
    let r = fresh.get(&cb5);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body
            .contains("did not sign you in: access_denied (the user declined to sign in)"),
        "{}",
        r.body
    );

    // Foreign callback paths are refused before any flow starts.
    let pending = health(&web, &server)["sso_flows_pending"].clone();
    for bad in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: a=b",
    ] {
        let r = web.post_json(
            &server.http("/v1/sso_authentication"),
            &json!({"database": "example_database", "sso_callback_path": bad}),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("one of this server's pages"), "{}", r.body);
        assert!(r.header("location").is_empty());
    }
    assert_eq!(health(&web, &server)["sso_flows_pending"], pending);

    // Bad bodies and databases.
    let r = web.post_raw(
        &server.http("/v1/sso_authentication"),
        "application/json",
        "{\"database\":",
    );
    assert_eq!(r.status, 400);
    let r = web.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"databse": "x"}),
    );
    assert_eq!(r.status, 400, "unknown field");
    let r = web.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"database": "nope"}),
    );
    assert_eq!(r.status, 404);
    // No integration: do_redirect=true is an error, false an empty redirect.
    let r = web.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"database": "plain_database"}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("has no SSO integration"));
    let r = web.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"database": "plain_database", "do_redirect": false}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["redirect"],
        ""
    );

    // Browser-bound flow (do_redirect=true): 302 with the flow cookie; the callback without
    // that cookie (another browser) is refused; with it, the browser lands on its path.
    let bound = Web::new();
    let r = bound.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"database": "example_database", "sso_callback_path": "/ui/console"}),
    );
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.header("set-cookie").contains("portcullis_flow="));
    assert!(r.header("set-cookie").contains("Path=/v1/callback"));
    let cbb = bound.follow_until(r.location(), &callback_prefix);
    let thief = Web::new();
    let r = thief.get(&cbb);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("started in another browser"), "{}", r.body);
    let r = bound.post_json(
        &server.http("/v1/sso_authentication"),
        &json!({"database": "example_database", "sso_callback_path": "/ui/console"}),
    );
    let cbb = bound.follow_until(r.location(), &callback_prefix);
    let r = bound.get(&cbb);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/ui/console");

    // Only the two good callbacks opened sessions.
    assert_eq!(sso_sessions(&server), "2");
    assert_eq!(health(&web, &server)["sso_flows_completed"], 2);

    // Administration page: integrations without secrets, live sessions; admins only.
    let admin = Web::new();
    let signin = admin.get(&server.http("/ui/signin?database=system"));
    let rs = field_value(&signin.body, "requestState");
    let r = admin.post_form(
        &server.http("/ui/password"),
        &[
            ("requestState", &rs),
            ("database", "system"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let page = admin.get(&server.http("/ui/admin"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("corp_sso") && page.body.contains("rs256-client"));
    assert!(!page.body.contains("rs256-client-secret"), "secret shown");
    assert!(page.body.contains("alice@example.com"), "live sessions");
    let r = web.get(&server.http("/ui/admin"));
    assert_eq!(r.status, 403, "alice is no administrator: {}", r.body);

    // Sign-out: CSRF-checked, the session ends, the refresh token is revoked at the provider.
    let page = web.get(&server.http("/ui/session"));
    let csrf = field_value(&page.body, "csrf");
    let r = web.post_form(&server.http("/ui/signout"), &[("csrf", "forged")]);
    assert_eq!(r.status, 403);
    let r = web.post_form(&server.http("/ui/signout"), &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.location().contains("signed_out=revoked"),
        "{}",
        r.location()
    );
    assert_eq!(health(&web, &server)["sso_refresh_tokens_revoked"], 1);
    let r = web.get(&server.http("/ui/session"));
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/ui/signin");
    let r = web.get(&resolve(
        &server.http("/"),
        "/ui/signin?database=example_database&signed_out=revoked",
    ));
    assert!(r.body.contains("revoked the session&#39;s refresh token"));
    assert_eq!(sso_sessions(&server), "1");

    // Renewal fails when the provider is gone: the session ends with a clear page.
    idp.stop();
    let r = bound.get(&server.http("/ui/session"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("could not be renewed"), "{}", r.body);
    assert_eq!(sso_sessions(&server), "0");
}

/// The value of a hidden form field in a page.
#[test]
fn expired_flows_chooser_domain_login_and_https() {
    let server = Server::start_env(&[("PORTCULLIS_SSO_FLOW_SECONDS", "1")]);
    let (idp, _keys) = start_provider(&server, &[]);
    configure(&server, &idp.url);
    let web = Web::new();
    let callback_prefix = server.http("/v1/callback");

    // An expired flow.
    let url = start_flow(
        &web,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let cb = web.follow_until(&url, &callback_prefix);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = web.get(&cb);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("expired"), "{}", r.body);
    assert_eq!(sso_sessions(&server), "0");

    // The IdP chooser (seed 002): the sign-in page offers the database's provider; choosing
    // it POSTs requestState/idpName and gets 303 to the provider with the flow cookie.
    let page = web.get(&server.http("/ui/signin?database=example_database"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in with corp_sso"), "{}", page.body);
    let rs = field_value(&page.body, "requestState");
    let r = web.post_form(
        &server.http("/sso/v1/sdk/idp"),
        &[
            ("requestState", &rs),
            ("idpName", "corp_sso"),
            ("idpType", "OIDC"),
            ("appName", "portcullis"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with(&idp.url));
    assert!(
        r.header("set-cookie").contains("portcullis_flow=")
            && r.header("set-cookie").contains("HttpOnly")
    );
    assert_security_headers(&r);
    // requestState is used once; unknown providers are refused.
    let r = web.post_form(
        &server.http("/sso/v1/sdk/idp"),
        &[("requestState", &rs), ("idpName", "corp_sso")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("already used"));
    let page = web.get(&server.http("/ui/signin?database=example_database"));
    let rs = field_value(&page.body, "requestState");
    let r = web.post_form(
        &server.http("/sso/v1/sdk/idp"),
        &[("requestState", &rs), ("idpName", "evil")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("offers no identity provider named"));

    // Seed 004: domain login with a form body.
    let t = tokens(&idp.url, "rs256-client", "code", "alice");
    let id_token = t["id_token"].as_str().unwrap();
    let r = web.post_form(
        &server.http("/v1/login"),
        &[("Domain", "corp_sso"), ("id_token", id_token)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"DomainName": "corp_sso", "UserName": "alice@example.com"})
    );
    assert!(
        r.header("set-cookie").starts_with("OAuthToken_corp_sso="),
        "{:?}",
        r.headers
    );
    // The cookie works for /v1/execute.
    let r = web.post_json(
        &server.http("/v1/execute/example_database"),
        &json!({"statement": "SELECT CURRENT_USER()"}),
    );
    assert!(r.body.contains("alice@example.com"), "{}", r.body);
    let r = web.post_form(
        &server.http("/v1/login"),
        &[
            ("Domain", "example_database"),
            ("identity_username", "alice"),
            ("secret_password", "Alice-pass-1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"DomainName\":\"example_database\""));
    assert!(r
        .header("set-cookie")
        .starts_with("OAuthToken_example_database="));
    let r = web.post_form(
        &server.http("/v1/login"),
        &[
            ("Domain", "example_database"),
            ("identity_username", "alice"),
            ("secret_password", "wrong"),
        ],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("set-cookie").is_empty());
    let r = web.post_form(
        &server.http("/v1/login"),
        &[("Domain", "nowhere"), ("id_token", id_token)],
    );
    assert_eq!(r.status, 404);
    let r = web.post_form(
        &server.http("/v1/login"),
        &[("Domain", "corp_sso"), ("id_token", "garbage")],
    );
    assert_eq!(r.status, 401);
    assert!(!r.body.contains("garbage"), "token echoed");
    // The JSON login still works.
    let r = web.post_json(
        &server.http("/v1/login"),
        &json!({"username": "alice@example_database", "password": "Alice-pass-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(idp);

    // HTTPS: the HTTP listener with TLS; cookies are Secure.
    let tls = Server::start_env(&[("PORTCULLIS_DEV_TLS", "1"), ("PORTCULLIS_HTTP_TLS", "1")]);
    let (idp, _keys2) = start_provider(&tls, &[]);
    configure(&tls, &idp.url);
    let mut w = Web::new();
    w.extra.push("-k".into());
    let base = format!("https://127.0.0.1:{}", tls.http_port);
    let r = w.post_json(
        &format!("{base}/v1/sso_authentication"),
        &json!({"database": "example_database", "do_redirect": false}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let url: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        query_param(url["redirect"].as_str().unwrap(), "redirect_uri").unwrap(),
        format!("{base}/v1/callback")
    );
    let page = w.get(&format!("{base}/ui/signin?database=example_database"));
    let rs = field_value(&page.body, "requestState");
    let r = w.post_form(
        &format!("{base}/sso/v1/sdk/idp"),
        &[("requestState", &rs), ("idpName", "corp_sso")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        r.header("set-cookie").contains("; Secure"),
        "{}",
        r.header("set-cookie")
    );
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{}/healthz", tls.http_port),
        ])
        .output()
        .unwrap();
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        "200",
        "plain http on the TLS listener"
    );
}

#[test]
fn chromium_signs_in_through_the_providers_pages() {
    let server = Server::start();
    let (idp, _keys) = start_provider(&server, &["--dev-interactions"]);
    configure(&server, &idp.url);
    let shot = std::env::var("BROWSER_SCREENSHOT").ok();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(idp_dir().join("browser.mjs")).args([
        "--base",
        &server.http(""),
        "--database",
        "example_database",
        "--idp",
        "corp_sso",
    ]);
    if let Some(path) = &shot {
        cmd.args(["--screenshot", path]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "browser.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signinStatus"], 200);
    assert!(v["signinHeaders"]["csp"]
        .as_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(v["signinHeaders"]["nosniff"], "nosniff");
    assert_eq!(
        v["providerLoginUrl"]
            .as_str()
            .unwrap()
            .split("/interaction/")
            .next()
            .unwrap(),
        idp.url
    );
    assert_eq!(v["user"], "alice@example.com", "{v}");
    assert_eq!(v["database"], "example_database");
    assert!(
        v["groups"]
            .as_str()
            .unwrap()
            .contains("analysts@example_database"),
        "{v}"
    );
    assert!(v["method"].as_str().unwrap().contains("corp_sso"), "{v}");
    assert!(v["token-expiry"].as_str().unwrap().contains("UTC"), "{v}");
    assert_eq!(v["sessionCookie"]["httpOnly"], true);
    assert_eq!(v["sessionCookie"]["sameSite"], "Lax");
    assert!(
        v["consoleResult"]
            .as_str()
            .unwrap()
            .contains("alice@example.com"),
        "{v}"
    );
    assert!(
        v["signedOutMessage"]
            .as_str()
            .unwrap()
            .contains("signed out"),
        "{v}"
    );
    assert_eq!(v["afterSignOutPath"], "/ui/signin");
    assert_eq!(sso_sessions(&server), "0");
    let _ = free_port;
}

/// Issue 13: a user newly matched by `blocked_groups` keeps the session only until its next
/// renewal, which ends it (the page says why) and records the cause.
#[test]
fn a_user_blocked_meanwhile_loses_the_session_at_renewal() {
    // The margin makes every request renew.
    let server = Server::start_env(&[("PORTCULLIS_SSO_RENEW_MARGIN_SECONDS", "80000")]);
    let (_idp, _keys) = {
        let (idp, keys) = start_provider(&server, &[]);
        configure(&server, &idp.url);
        (idp, keys)
    };
    let web = Web::new();
    let url = start_flow(
        &web,
        &server,
        json!({"database": "example_database", "do_redirect": false}),
    );
    let cb = web.follow_until(&url, &server.http("/v1/callback"));
    assert_eq!(web.get(&cb).status, 303);
    let page = web.get(&server.http("/ui/session"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("analysts"), "{}", page.body);
    server.admin(&[
        "ALTER SSO INTEGRATION corp_sso@example_database SET blocked_groups = [analysts]",
    ]);
    let page = web.get(&server.http("/ui/session"));
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("could not be renewed"), "{}", page.body);
    assert_eq!(sso_sessions(&server), "0");
    let events = server.admin(&[
        "SELECT event || '|' || result || '|' || reason FROM sys.authentication_events \
         WHERE method = 'code_flow' AND result <> 'success' ORDER BY id",
    ]);
    assert_eq!(
        events, "sign_in|failure|policy\nsession_end|ended|renewal_failed",
        "{events}"
    );
}
