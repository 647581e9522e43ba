//! Unmodified drivers through the relay (issue 12, item 3): pgjdbc (extended protocol for
//! everything, named server-side statements), node-postgres (simple, and extended with
//! parameters), psycopg 3 (server-side parameters, prepared statements, pipeline mode, COPY),
//! each as the person upstream with PostgreSQL's own errors and SQLSTATEs; and 100 MB through
//! COPY both ways with psql, arriving whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::process::Command;

use harness::idp::idp_dir;
use harness::postgres::{bound, upstream};

const ALICE: &str = "Alice-pass-123";

#[test]
fn jdbc_node_postgres_and_psycopg_work_upstream_as_the_person() {
    let pg = upstream();
    let server = bound(&pg);
    pg.sql(
        "sales",
        &[
            "CREATE TABLE notes (id int PRIMARY KEY, body text)",
            "INSERT INTO notes VALUES (1, 'one'), (2, 'two')",
            "GRANT SELECT, INSERT ON notes TO \"analysts@sales\"",
            "CREATE TABLE secret (id int)",
        ],
    );
    // pgjdbc: named server-side statements from the first execution.
    let url = format!(
        "jdbc:postgresql://127.0.0.1:{}/sales?prepareThreshold=1",
        server.sql_port
    );
    let jdbc = |sql: &str| {
        let out = Command::new("java")
            .args(["-cp", "/usr/share/java/postgresql.jar"])
            .arg(idp_dir().join("../jdbc/JdbcClient.java"))
            .args([url.as_str(), "alice@sales", ALICE, sql])
            .output()
            .expect("java (the JDK) must be installed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = jdbc("SELECT current_user, count(*) FROM notes WHERE id > 0");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "alice@sales|2");
    let (code, _, err) = jdbc("SELECT * FROM secret");
    assert_eq!(code, 1);
    assert!(
        err.contains("ERROR: 42501") && err.contains("permission denied for table secret"),
        "{err}"
    );
    // node-postgres: simple protocol, then extended with a parameter.
    let node = |query: &str, params: Option<&str>| {
        let mut cmd = Command::new("node");
        cmd.arg(idp_dir().join("pg-client.mjs")).args([
            "--port",
            &server.sql_port.to_string(),
            "--user",
            "alice@sales",
            "--database",
            "sales",
            "--password",
            ALICE,
            "--query",
            query,
        ]);
        if let Some(p) = params {
            cmd.args(["--params", p]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = node(
        "SELECT current_user AS who, count(*)::int AS n FROM notes",
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, r#"[{"who":"alice@sales","n":2}]"#);
    let (ok, out, err) = node("SELECT body FROM notes WHERE id = $1", Some("[2]"));
    assert!(ok, "{err}");
    assert_eq!(out, r#"[{"body":"two"}]"#);
    let (ok, _, err) = node("SELECT * FROM secret WHERE id = $1", Some("[1]"));
    assert!(!ok && err.contains("42501"), "{err}");
    // psycopg 3: server-side parameters, a prepared statement, pipeline mode, COPY.
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    cur = conn.cursor()
    print(cur.execute("SELECT current_user, count(*) FROM notes WHERE id > %s", (0,)).fetchone())
    for i in range(3):
        cur.execute("SELECT body FROM notes WHERE id = %s", (1,), prepare=True)
    print(cur.fetchone()[0])
    with conn.pipeline():
        conn.execute("INSERT INTO notes VALUES (%s, %s)", (3, "three"))
        conn.execute("INSERT INTO notes VALUES (%s, %s)", (4, "four"))
        last = conn.execute("SELECT count(*) FROM notes")
    print(last.fetchone()[0])
    with cur.copy("COPY notes (id, body) FROM STDIN") as copy:
        for i in range(5, 105):
            copy.write_row((i, f"row {i}"))
    print(cur.execute("SELECT count(*) FROM notes").fetchone()[0])
    conn.commit()
    try:
        cur.execute("SELECT * FROM secret")
    except psycopg.errors.InsufficientPrivilege as e:
        print("refused", e.sqlstate)
"#;
    let (out, err) = harness::python_client(
        &harness::python(),
        &server,
        ("alice@sales", "sales", ALICE),
        script,
    );
    assert_eq!(
        out, "('alice@sales', 2)\none\n4\n104\nrefused 42501\n",
        "{err}"
    );
    assert_eq!(pg.sql("sales", &["SELECT count(*) FROM notes"]), "104");
}

#[test]
fn a_hundred_megabytes_go_through_copy_both_ways() {
    let pg = upstream();
    let server = bound(&pg);
    pg.sql(
        "sales",
        &[
            "CREATE TABLE big (id int, body text)",
            "GRANT SELECT, INSERT ON big TO \"analysts@sales\"",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.tsv");
    let line_body = "x".repeat(90);
    let mut text = String::with_capacity(105 << 20);
    let mut rows = 0u64;
    while text.len() < 100 << 20 {
        rows += 1;
        text.push_str(&format!("{rows}\t{line_body}\n"));
    }
    std::fs::write(&file, &text).unwrap();
    let (ok, out, err) = server.psql(
        "alice@sales",
        "sales",
        ALICE,
        &[&format!("\\copy big FROM '{}'", file.display())],
    );
    assert!(ok, "{err}");
    assert_eq!(out, format!("COPY {rows}"));
    let (ok, out, err) = server.psql(
        "alice@sales",
        "sales",
        ALICE,
        &["SELECT count(*), sum(length(body)), sum(id) FROM big"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!("{rows}|{}|{}", rows * 90, rows * (rows + 1) / 2)
    );
    let back = dir.path().join("back.tsv");
    let (ok, _, err) = server.psql(
        "alice@sales",
        "sales",
        ALICE,
        &[&format!(
            "\\copy (SELECT * FROM big ORDER BY id) TO '{}'",
            back.display()
        )],
    );
    assert!(ok, "{err}");
    assert!(
        std::fs::read(&back).unwrap() == text.as_bytes(),
        "COPY TO changed the data"
    );
}
