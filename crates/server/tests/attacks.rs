//! The threat model, as attacks that must fail (issue 11). Each test plays one attacker with real
//! clients (psql, curl, raw sockets) against the real server, and a hostile test issuer where
//! the attacker controls the provider; each asserts the refusal and that the catalog did not
//! change. Who the attacker is:
//! - a tenant administrator (ALL on one database, nothing else) who points that database's SSO
//!   integration at a provider they control and mints any token they like;
//! - a signed-in user of one database looking at or reaching into another;
//! - another web site whose page a signed-in administrator opens (CSRF);
//! - anyone on the network who can reach the listeners.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::idp::{rogue_sign, NodeServer};
use harness::{catalog_dump, Server, ADMIN_PASSWORD};
use serde_json::json;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A tenant `tenant` administered by `tom@tenant` (database_administrator, i.e. ALL on it).
fn tenant(server: &Server) {
    server.admin(&[
        "CREATE DATABASE tenant",
        "CREATE USER \"tom@tenant\" PASSWORD = 'Tom-pass-12'",
        "GRANT ROLE database_administrator@tenant TO USER tom@tenant",
        "GRANT USE ON DATABASE tenant TO USER tom@tenant",
    ]);
}

fn tom(server: &Server, commands: &[&str]) -> (bool, String, String) {
    server.psql("tom@tenant", "tenant", "Tom-pass-12", commands)
}

/// Finding 1: a name in a token resolves only inside the integration's own database; nothing a
/// tenant's provider says reaches `system` or a built-in administrator role.
#[test]
fn a_tenant_provider_cannot_mint_system_administrators() {
    let rogue = NodeServer::rogue(&[]);
    let server = Server::start();
    tenant(&server);
    let (ok, _, err) = tom(
        &server,
        &[
            "CREATE GROUP staff",
            "GRANT USE ON DATABASE tenant TO GROUP staff",
            &format!(
                "ALTER DATABASE tenant SET SSO INTEGRATION oidc issuer = \"{}\", client_id = app, \
                 default_group = staff, groups_claim_ids = [groups], roles_claim_ids = [roles]",
                rogue.url
            ),
        ],
    );
    assert!(ok, "{err}");
    let before = catalog_dump(&server);
    let n = now();
    let token = |groups: serde_json::Value, roles: serde_json::Value| {
        rogue_sign(
            &rogue,
            "rogue-rs",
            json!({"alg": "RS256", "kid": "rogue-rs", "typ": "JWT"}),
            json!({"iss": rogue.url, "aud": "app", "sub": "evil", "email": "evil@tenant.example",
                   "groups": groups, "roles": roles, "exp": n + 300, "iat": n}),
        )
    };
    // Every spelling of the system's administrator role and of foreign groups.
    let forged = token(
        json!(["public_role@system", "staff@system", "staff"]),
        json!([
            "system_administrator@system",
            "system System_Administrator",
            "system system administrator",
            "security_administrator@system",
            "database_administrator",
            "Database Administrator",
            "database_administrator@tenant",
        ]),
    );
    // Into system: no USE there, so refused before any statement.
    let (ok, out, err) = server.psql(
        "id_token@tenant",
        "system",
        &forged,
        &[
            "ALTER USER admin@system PASSWORD = 'Owned-by-evil-1'",
            "SELECT 'ran'",
        ],
    );
    assert!(!ok && !out.contains("ran"), "signed in to system: {out}");
    assert!(err.contains("FATAL") && err.contains("USE"), "{err}");
    // Into the tenant: signed in, but with the token's own-database group only; no role came.
    let (ok, out, err) = server.psql(
        "id_token",
        "tenant",
        &forged,
        &["SELECT CURRENT_GROUPS(), CURRENT_ROLES()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "staff@tenant|public_role@tenant");
    for attack in [
        "ALTER USER admin@system PASSWORD = 'Owned-by-evil-1'",
        "CREATE USER \"mallory@tenant\" PASSWORD = 'Mallory-pass-1'",
        "GRANT ALL ON SYSTEM TO GROUP staff@tenant",
    ] {
        let (ok, _, err) = server.psql("id_token", "tenant", &forged, &[attack]);
        assert!(!ok && err.contains("permission denied"), "{attack}: {err}");
    }
    // The admin password still works; nothing changed.
    assert_eq!(before, catalog_dump(&server));

    // A mapping may name another database's group only if its writer holds ALTER on it — and
    // that is checked again at sign-in: a name squatted before the group existed confers nothing.
    let (ok, _, err) = tom(
        &server,
        &[&format!(
            "ALTER DATABASE tenant SET SSO INTEGRATION oidc issuer = \"{}\", client_id = app, \
             default_group = staff, groups_claim_ids = [groups], \
             groups_claim_mappings = {{ ops = ops@system, staff = staff }}",
            rogue.url
        )],
    );
    assert!(ok, "{err}");
    server.admin(&[
        "CREATE GROUP ops@system",
        "GRANT ALL ON SYSTEM TO GROUP ops@system",
    ]);
    let squatter = token(json!(["ops", "staff"]), json!([]));
    let (ok, out, err) = server.psql(
        "id_token",
        "tenant",
        &squatter,
        &["SELECT CURRENT_GROUPS()"],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "staff@tenant");
    let (ok, _, err) = server.psql("id_token@tenant", "system", &squatter, &["SELECT 1"]);
    assert!(!ok && err.contains("USE"), "{err}");
    // Written now, by tom, the mapping is refused outright (no ALTER on ops@system).
    let (ok, _, err) = tom(
        &server,
        &["ALTER DATABASE tenant ALTER SSO INTEGRATION oidc default_group = staff"],
    );
    assert!(
        !ok && err.contains("ALTER on group \"ops@system\""),
        "{err}"
    );
    // The system administrator may map a system group explicitly: that is honoured.
    let (ok, _, err) = server.psql(
        "admin@system",
        "tenant",
        ADMIN_PASSWORD,
        &["ALTER DATABASE tenant ALTER SSO INTEGRATION oidc default_group = staff"],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = server.psql(
        "id_token",
        "tenant",
        &squatter,
        &["SELECT CURRENT_GROUPS()"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("ops@system"), "{out}");
}
