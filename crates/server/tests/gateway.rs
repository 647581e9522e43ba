//! Binding a database to a real PostgreSQL 15 (issue 12, item 1): `CREATE DATABASE … UPSTREAM`,
//! `ALTER DATABASE … SET UPSTREAM` / `REMOVE UPSTREAM`. The upstream is checked before the
//! binding is stored (reachable, the administrator's password right, CREATEROLE and ownership of
//! the database); the password is sealed, never shown, never in the catalog file; only the
//! system's administrators may bind — nobody else can make the server connect anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::postgres::Postgres;
use harness::Server;

const ADMIN_PASS: &str = "Upstream-admin-1";

fn upstream() -> Postgres {
    let pg = Postgres::start();
    pg.sql(
        "postgres",
        &[
            &format!("CREATE ROLE portcullis_admin LOGIN CREATEROLE PASSWORD '{ADMIN_PASS}'"),
            "CREATE DATABASE sales OWNER portcullis_admin",
            "CREATE DATABASE other",
            "CREATE ROLE weak_admin LOGIN PASSWORD 'Weak-admin-1'",
            "GRANT CONNECT ON DATABASE sales TO weak_admin",
        ],
    );
    pg
}

#[test]
fn a_database_is_bound_to_a_checked_upstream_whose_password_stays_sealed() {
    let pg = upstream();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(data.clone());
    let good = pg.url("portcullis_admin", ADMIN_PASS, "sales");
    server.admin(&[&format!("CREATE DATABASE sales UPSTREAM '{good}'")]);
    let shown = server.admin(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"]);
    assert_eq!(
        shown,
        format!(
            "postgresql://portcullis_admin@127.0.0.1:{}/sales?sslmode=disable",
            pg.port
        )
    );
    // Each bad binding: a clear error, and the binding as it was.
    let unchanged = || {
        assert_eq!(
            server.admin(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"]),
            shown
        );
    };
    for (url, needle) in [
        (
            pg.url("portcullis_admin", "wrong-password", "sales"),
            "refused the administrator",
        ),
        (
            format!(
                "postgresql://portcullis_admin:{ADMIN_PASS}@127.0.0.1:{}/sales?sslmode=disable",
                harness::idp::free_port()
            ),
            "could not be reached",
        ),
        (
            pg.url("weak_admin", "Weak-admin-1", "sales"),
            "needs CREATEROLE",
        ),
        (
            pg.url("portcullis_admin", ADMIN_PASS, "other"),
            "must own database",
        ),
        (
            format!("postgresql://portcullis_admin:{ADMIN_PASS}@db.example/sales?sslmode=disable"),
            "loopback",
        ),
        (
            format!(
                "postgresql://portcullis_admin:{ADMIN_PASS}@127.0.0.1:{}/sales?sslmode=prefer",
                pg.port
            ),
            "not supported",
        ),
    ] {
        let err = server.admin_fails(&format!("ALTER DATABASE sales SET UPSTREAM '{url}'"));
        assert!(err.contains(needle), "{url}: {err}");
        assert!(!err.contains(ADMIN_PASS), "the password is echoed: {err}");
        unchanged();
    }
    let err = server.admin_fails(&format!("ALTER DATABASE system SET UPSTREAM '{good}'"));
    assert!(err.contains("system database"), "{err}");
    // A database's own administrator may not bind it: the server connects nowhere for them.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!(
        "postgresql://x:y@127.0.0.1:{}/sales?sslmode=disable",
        trap.local_addr().unwrap().port()
    );
    server.admin(&[
        "CREATE USER \"dana@sales\" PASSWORD = 'Dana-pass-123'",
        "GRANT ROLE database_administrator@sales TO USER dana@sales",
        "GRANT USE ON DATABASE sales TO USER dana@sales",
    ]);
    let (ok, _, err) = server.psql(
        "dana@sales",
        "sales",
        "Dana-pass-123",
        &[&format!("ALTER DATABASE sales SET UPSTREAM '{trap_url}'")],
    );
    assert!(!ok && err.contains("permission denied"), "{err}");
    assert!(
        trap.accept().is_err(),
        "a connection was made for someone who may not bind"
    );
    unchanged();
    // Never in the clear in the catalog file; kept across a restart.
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(server);
    let bytes = std::fs::read(data.join("catalog.db")).unwrap();
    let wal = std::fs::read(data.join("catalog.db-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        assert!(
            !b.windows(ADMIN_PASS.len())
                .any(|w| w == ADMIN_PASS.as_bytes()),
            "the upstream password is in the catalog file"
        );
    }
    let server = Server::start_in(data);
    assert_eq!(
        server.admin(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"]),
        shown
    );
    // Unbinding, then again: the second says there is nothing to remove.
    server.admin(&["ALTER DATABASE sales REMOVE UPSTREAM"]);
    assert_eq!(
        server
            .admin(&["SELECT coalesce(upstream, 'none') FROM sys.databases WHERE name = 'sales'"]),
        "none"
    );
    let err = server.admin_fails("ALTER DATABASE sales REMOVE UPSTREAM");
    assert!(err.contains("has no upstream"), "{err}");
}
