//! The administration page (issue 13, item 6), in headless Chromium: each integration as a
//! readable summary, the live sessions with an End session button that ends the session (its
//! psql connection is told at once), the latest refused sign-ins with their reason codes, a
//! page no wider than the window; a forged End session form ends nothing. The page is
//! rendered by askama, so what providers and clients control (names, details) is escaped.
//! `ADMIN_SCREENSHOT=path` saves a screenshot (docs/admin-page.png).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{idp_dir, NodeServer};
use harness::web::Web;
use harness::{LivePsql, Server, ADMIN_PASSWORD};

#[test]
fn administrators_see_integrations_sessions_refusals_and_end_sessions() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    harness::example(&server);
    harness::idp::rogue_example_integration(
        &server,
        &rogue,
        "analysts",
        ", groups_claim_ids = [groups], blocked_groups = [contractors], \
         groups_claim_mappings = { \"Data Team\" = analysts }",
    );
    let mut alice = LivePsql::connect(
        &server,
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    );
    let alice_id =
        server.admin(&["SELECT id FROM sys.sessions WHERE user = 'alice@example_database'"]);
    // A refused sign-in whose name tries to inject markup into the page.
    let (ok, _, _) = server.psql(
        "<script>alert(1)</script>@example_database",
        "example_database",
        "nope",
        &["SELECT 1"],
    );
    assert!(!ok);
    let shot = std::env::var("ADMIN_SCREENSHOT").ok();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(idp_dir().join("admin-page.mjs")).args([
        "--base",
        &server.http(""),
        "--database",
        "example_database",
        "--user",
        "admin@system",
        "--password",
        ADMIN_PASSWORD,
        "--end",
        &alice_id,
    ]);
    if let Some(path) = &shot {
        cmd.args(["--screenshot", path]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "admin-page.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["status"], 200, "{page}");
    let card = page["integrations"][0]["text"].as_str().unwrap();
    for shown in [
        "oidc",
        "enabled",
        rogue.url.as_str(),
        "app",
        "analysts",
        "contractors",
        "Data Team → analysts",
    ] {
        assert!(card.contains(shown), "{shown} not in {card}");
    }
    assert!(
        page["width"].as_u64().unwrap() <= 1280,
        "the page is {} px wide",
        page["width"]
    );
    let sessions: Vec<&str> = page["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(sessions.contains(&alice_id.as_str()), "{page}");
    let refused = page["refused"].to_string();
    assert!(
        refused.contains("bad_password") && refused.contains("<script>alert(1)</script>"),
        "the refusal is listed, as text: {refused}"
    );
    // End session: gone from the list, listed with its cause, and the connection is told.
    assert!(page["notice"].as_str().unwrap().contains("ended"), "{page}");
    assert!(!page["sessionsAfter"].to_string().contains(&alice_id));
    assert!(page["endedAfter"]
        .to_string()
        .contains("ended_by_administrator"));
    let out = alice.run("SELECT 'still here'");
    assert!(
        out.contains("ended by an administrator (admin@system)"),
        "{out}"
    );
    // The page itself escapes: the raw markup never reaches the browser as markup.
    let web = Web::new();
    let login = web.post_json(
        &server.http("/v1/login"),
        &serde_json::json!({"username": "admin@system", "password": ADMIN_PASSWORD,
                            "database": "example_database"}),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let html = web.get(&server.http("/ui/admin")).body;
    assert!(
        !html.contains("<script>alert"),
        "unescaped markup on the page"
    );
    assert!(
        html.contains("script&#62;alert(1)&#60;/script") || html.contains("script&gt;alert(1)"),
        "the refusal is not on the page, escaped"
    );
    // A forged End session form (wrong anti-forgery value) ends nothing.
    let mut bob = LivePsql::connect(
        &server,
        "alice@example_database",
        "example_database",
        "Alice-pass-1",
    );
    let bob_id =
        server.admin(&["SELECT id FROM sys.sessions WHERE user = 'alice@example_database'"]);
    let r = web.post_form_with(
        &server.http("/ui/sessions/end"),
        &[("id", &bob_id), ("csrf", "forged")],
        &["Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(bob.run("SELECT 'alive'"), "alive");
}
