//! A database without an upstream (issue 12, item 6): psql's `\l`, `\du`, `\dg` and
//! `\conninfo` answer from the catalog (a few `pg_catalog` views, showing only what the caller
//! may VIEW), and anything that is PostgreSQL's — a table, an INSERT, a function the catalog
//! does not have, an object grant — gets `0A000` with a sentence saying why, never the query
//! engine's own syntax error; nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::Server;

/// psql with `-c` commands (aligned output, as a person sees it, errors with their SQLSTATE).
fn psql(server: &Server, user: &str, password: &str, commands: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new("psql");
    cmd.arg(server.conninfo(user, "sales"))
        .args(["-X", "-v", "VERBOSITY=verbose"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_meta_commands_answer_and_postgresql_statements_say_why_not() {
    let server = Server::start();
    server.admin(&[
        "CREATE DATABASE sales",
        "CREATE USER \"alice@sales\" PASSWORD = 'Alice-pass-123'",
        "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-12345'",
        "CREATE GROUP analysts@sales",
        "ALTER GROUP analysts@sales ADD USER alice@sales",
        "GRANT USE ON DATABASE sales TO GROUP analysts@sales",
        "GRANT USE ON DATABASE sales TO USER bob@sales",
        "GRANT ROLE database_administrator@sales TO USER bob@sales",
    ]);
    let before = harness::catalog_dump(&server);
    // The administrator of sales sees its databases and people.
    let (ok, out, err) = psql(&server, "bob@sales", "Bob-pass-12345", &["\\l"]);
    assert!(ok, "{err}");
    assert!(out.contains("List of databases"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("sales ") && l.contains("UTF8")),
        "{out}"
    );
    let (ok, out, err) = psql(&server, "bob@sales", "Bob-pass-12345", &["\\du"]);
    assert!(ok, "{err}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_owned()
    };
    let alice = row("alice@sales");
    assert!(
        alice.contains("{analysts@sales}") && !alice.contains("Cannot login"),
        "{alice}"
    );
    assert!(row("analysts@sales").contains("Cannot login"));
    assert!(row("bob@sales").contains("{database_administrator@sales}"));
    let (ok, dg, err) = psql(&server, "bob@sales", "Bob-pass-12345", &["\\dg alice*"]);
    assert!(ok, "{err}");
    assert!(
        dg.contains("alice@sales") && !dg.contains("bob@sales"),
        "{dg}"
    );
    let (ok, out, _) = psql(&server, "bob@sales", "Bob-pass-12345", &["\\conninfo"]);
    assert!(ok && out.contains("as user \"bob@sales\""), "{out}");
    // Alice may VIEW nobody else: she sees herself, not the system's people.
    let (ok, out, err) = psql(&server, "alice@sales", "Alice-pass-123", &["\\du"]);
    assert!(ok, "{err}");
    assert!(out.contains("alice@sales"), "{out}");
    assert!(
        !out.contains("admin@system") && !out.contains("bob@sales"),
        "{out}"
    );
    // PostgreSQL's statements and queries: 0A000, with the reason, and nothing changed.
    for sql in [
        "CREATE TABLE t (a int)",
        "INSERT INTO t VALUES (1)",
        "COPY t FROM STDIN",
        "GRANT SELECT ON TABLE t TO GROUP analysts",
        "\\dt",
        "SELECT now()",
        "SELECT 1 +",
        "SELECT * FROM pg_class",
    ] {
        let (ok, _, err) = psql(&server, "bob@sales", "Bob-pass-12345", &[sql]);
        assert!(!ok, "{sql} ran");
        assert!(err.contains("ERROR:  0A000:"), "{sql}: {err}");
        assert!(err.contains("not bound to PostgreSQL"), "{sql}: {err}");
        assert!(!err.contains("syntax error"), "{sql}: {err}");
    }
    // Mistakes in Portcullis's own statements are still said as its own.
    let (ok, _, err) = psql(
        &server,
        "bob@sales",
        "Bob-pass-12345",
        &["SELECT * FROM sys.userz"],
    );
    assert!(!ok && err.contains("42P01"), "{err}");
    assert_eq!(harness::catalog_dump(&server), before);
}
