//! Claims an access token does not carry (issue 14, item 5): when the identity claim (by
//! default `email`) or the groups claim is missing from an access token, the server asks the
//! provider's userinfo endpoint with that token — once per token — and EXPLAIN AUTHENTICATION
//! says where each claim came from. A missing groups claim is not an empty one: an empty list
//! is taken as "no groups" and nothing is asked. An answer about another subject is refused,
//! and a blocked list that cannot be checked (no groups anywhere) refuses. The provider is the
//! test's rogue issuer (tests/idp/rogue.mjs), whose userinfo answers are scripted; the real
//! test provider only takes opaque tokens at its userinfo endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{db_error, rows};

use harness::idp::{rogue_post, rogue_sign, NodeServer};
use harness::inprocess::InProcess;
use serde_json::json;

async fn sign_in(server: &InProcess, token: &str) -> Result<String, String> {
    match server
        .connect("access_token", "example_database", token)
        .await
    {
        Ok(c) => Ok(rows(&c, "SELECT CURRENT_USER(), CURRENT_GROUPS()")
            .await
            .join("\n")),
        Err(e) => Err(db_error(&e)),
    }
}

fn userinfo_calls(rogue: &NodeServer) -> u64 {
    let out = std::process::Command::new("curl")
        .args(["-s", &format!("{}/stats", rogue.url)])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    stats["userinfo"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_claims_come_from_userinfo_once_per_token() {
    let rogue = NodeServer::rogue(&[]);
    let server = harness::inprocess::start().await;
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
            "CREATE GROUP analysts; CREATE GROUP sso_users; \
             GRANT USE ON DATABASE example_database TO GROUP analysts; \
             ALTER DATABASE example_database SET SSO INTEGRATION oidc issuer = \"{}\", \
               client_id = app, default_group = sso_users, groups_claim_ids = [groups]",
            rogue.url
        ))
        .await
        .unwrap();
    let now = harness::now();
    let access = |jti: &str, extra: serde_json::Value| {
        let mut claims = json!({"iss": rogue.url, "aud": "app", "sub": "u1", "client_id": "app",
            "jti": jti, "exp": now + 300, "iat": now});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        rogue_sign(
            &rogue,
            "rogue-rs",
            json!({"alg": "RS256", "kid": "rogue-rs", "typ": "at+jwt"}),
            claims,
        )
    };
    let script = |status: u16, claims: serde_json::Value| {
        rogue_post(
            &rogue,
            "/userinfo/script",
            json!({"status": status, "claims": claims}),
        );
    };
    script(
        200,
        json!({"sub": "u1", "email": "u1@example.com", "groups": ["analysts"]}),
    );

    // No email, no groups in the token: both from userinfo, asked once for this token.
    let bare = access("j1", json!({}));
    assert_eq!(
        sign_in(&server, &bare).await,
        Ok("u1@example.com|analysts@example_database".into())
    );
    assert_eq!(userinfo_calls(&rogue), 1);
    assert_eq!(
        sign_in(&server, &bare).await,
        Ok("u1@example.com|analysts@example_database".into())
    );
    assert_eq!(
        userinfo_calls(&rogue),
        1,
        "the answer is kept for the token"
    );
    let explained = rows(&in_db, &format!("EXPLAIN AUTHENTICATION '{bare}'"))
        .await
        .join("\n");
    assert!(
        explained.contains("claims from the userinfo endpoint: email, groups"),
        "{explained}"
    );

    // A token that carries them: nothing is asked. An empty groups list is the provider
    // saying "no groups": the default group (no USE here), and still nothing asked.
    let full = access(
        "j2",
        json!({"email": "u1@example.com", "groups": ["analysts"]}),
    );
    assert_eq!(
        sign_in(&server, &full).await,
        Ok("u1@example.com|analysts@example_database".into())
    );
    let empty = access("j3", json!({"email": "u1@example.com", "groups": []}));
    let err = sign_in(&server, &empty).await.unwrap_err();
    assert!(err.contains("USE"), "{err}");
    assert_eq!(userinfo_calls(&rogue), 1);
    let explained = rows(&in_db, &format!("EXPLAIN AUTHENTICATION '{empty}'"))
        .await
        .join("\n");
    assert!(
        explained.contains("claims from the token: email, groups"),
        "{explained}"
    );

    // The userinfo answer is about someone else: refused.
    script(
        200,
        json!({"sub": "u2", "email": "u2@example.com", "groups": ["analysts"]}),
    );
    let err = sign_in(&server, &access("j4", json!({})))
        .await
        .unwrap_err();
    assert!(err.contains("another subject"), "{err}");

    // The endpoint fails: the default identity falls back to iss::sub and the groups are
    // unknown — unless a blocked list needs them, which refuses.
    script(500, json!({"error": "server_error"}));
    in_db
        .batch_execute("GRANT USE ON DATABASE example_database TO GROUP sso_users")
        .await
        .unwrap();
    assert_eq!(
        sign_in(&server, &access("j5", json!({}))).await,
        Ok(format!("{}::u1|sso_users@example_database", rogue.url))
    );
    in_db
        .batch_execute("ALTER DATABASE example_database ALTER SSO INTEGRATION oidc blocked_groups = [contractors]")
        .await
        .unwrap();
    let err = sign_in(&server, &access("j6", json!({"email": "u1@example.com"})))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("28000") && err.contains("blocked_groups cannot be checked"),
        "{err}"
    );
    drop((admin, in_db));
    server.running.stop().await;
}
