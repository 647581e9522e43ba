//! Binding a database to a real PostgreSQL 15 (issue 12, item 1): `CREATE DATABASE … UPSTREAM`,
//! `ALTER DATABASE … SET UPSTREAM` / `REMOVE UPSTREAM`. The upstream is checked before the
//! binding is stored (reachable, the administrator's password right, CREATEROLE and ownership of
//! the database); the password is sealed, never shown, never in the catalog file; only the
//! system's administrators may bind — nobody else can make the server connect anywhere.
//! The first three tests run the server in the test's process with tokio-postgres as the client
//! (issue 16, item 6); the relay's tests drive it with psql, pgbench and psycopg2, whose own
//! protocol use (describe commands, COPY, the extended protocol, cancels) they are about.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{settings_in, start_with};
use harness::postgres::{bound, bound_in_process, upstream, Postgres, ADMIN_PASS};

/// Runs blocking work (psql against the upstream, stopping it) without holding up the async
/// workers that serve the in-process server.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `psql` against the upstream itself, off the async workers.
fn upstream_sql(pg: &Postgres, database: &str, sql: &str) -> String {
    blocking(|| pg.sql(database, &[sql]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_is_bound_to_a_checked_upstream_whose_password_stays_sealed() {
    let pg = blocking(upstream);
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_in(dir.path());
    let data = settings.data_dir.clone();
    let server = start_with(dir, settings.clone()).await.unwrap();
    let good = pg.url("portcullis_admin", ADMIN_PASS, "sales");
    server
        .admin_sql(&[&format!("CREATE DATABASE sales UPSTREAM '{good}'")])
        .await;
    let shown = server
        .admin_sql(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"])
        .await;
    assert_eq!(
        shown,
        format!(
            "postgresql://portcullis_admin@127.0.0.1:{}/sales?sslmode=disable",
            pg.port
        )
    );
    // Each bad binding: a clear error, and the binding as it was.
    let unchanged = || async {
        assert_eq!(
            server
                .admin_sql(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"])
                .await,
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
        let err = server
            .admin_sql_fails(&format!("ALTER DATABASE sales SET UPSTREAM '{url}'"))
            .await;
        assert!(err.contains(needle), "{url}: {err}");
        assert!(!err.contains(ADMIN_PASS), "the password is echoed: {err}");
        unchanged().await;
    }
    let err = server
        .admin_sql_fails(&format!("ALTER DATABASE system SET UPSTREAM '{good}'"))
        .await;
    assert!(err.contains("system database"), "{err}");
    // A database's own administrator may not bind it: the server connects nowhere for them.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!(
        "postgresql://x:y@127.0.0.1:{}/sales?sslmode=disable",
        trap.local_addr().unwrap().port()
    );
    server
        .admin_sql(&[
            "CREATE USER \"dana@sales\" PASSWORD = 'Dana-pass-123'",
            "GRANT ROLE database_administrator@sales TO USER dana@sales",
            "GRANT USE ON DATABASE sales TO USER dana@sales",
        ])
        .await;
    let (ok, _, err) = server
        .sql(
            "dana@sales",
            "sales",
            "Dana-pass-123",
            &[&format!("ALTER DATABASE sales SET UPSTREAM '{trap_url}'")],
        )
        .await;
    assert!(!ok && err.contains("permission denied"), "{err}");
    assert!(
        trap.accept().is_err(),
        "a connection was made for someone who may not bind"
    );
    unchanged().await;
    // Never in the clear in the catalog file; kept across a restart.
    let dir = server.stop().await;
    let bytes = std::fs::read(data.join("catalog.db")).unwrap();
    let wal = std::fs::read(data.join("catalog.db-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        assert!(
            !b.windows(ADMIN_PASS.len())
                .any(|w| w == ADMIN_PASS.as_bytes()),
            "the upstream password is in the catalog file"
        );
    }
    let server = start_with(dir, settings).await.unwrap();
    assert_eq!(
        server
            .admin_sql(&["SELECT upstream FROM sys.databases WHERE name = 'sales'"])
            .await,
        shown
    );
    // Unbinding, then again: the second says there is nothing to remove.
    server
        .admin_sql(&["ALTER DATABASE sales REMOVE UPSTREAM"])
        .await;
    assert_eq!(
        server
            .admin_sql(&[
                "SELECT coalesce(upstream, 'none') FROM sys.databases WHERE name = 'sales'"
            ])
            .await,
        "none"
    );
    let err = server
        .admin_sql_fails("ALTER DATABASE sales REMOVE UPSTREAM")
        .await;
    assert!(err.contains("has no upstream"), "{err}");
}

/// Item 2, first part: a person who signs in to a bound database gets their own upstream
/// LOGIN role holding exactly their groups (NOLOGIN roles), revoked when they leave a group;
/// an upstream role of the same name that Portcullis does not manage is never taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_gives_the_person_their_own_upstream_role() {
    let pg = blocking(upstream);
    upstream_sql(
        &pg,
        "postgres",
        "CREATE ROLE \"bob@sales\" LOGIN SUPERUSER PASSWORD 'Bobs-own-pass-1'",
    );
    let server = bound_in_process(&pg).await;
    server
        .admin_sql(&[
            "CREATE USER \"bob@sales\" PASSWORD = 'Bob-pass-1234'",
            "CREATE GROUP auditors@sales",
            "ALTER GROUP auditors@sales ADD USER alice@sales",
            "GRANT USE ON DATABASE sales TO USER bob@sales",
        ])
        .await;
    let alice = || {
        server.sql(
            "alice@sales",
            "sales",
            "Alice-pass-123",
            &["SELECT CURRENT_USER()"],
        )
    };
    // Eight first sign-ins at once (found by the gateway benchmark: they raced on the role).
    let at_once: Vec<_> = (0..8).map(|_| alice()).collect();
    for (ok, out, err) in futures::future::join_all(at_once).await {
        assert!(ok && out == "alice@sales", "{err}");
    }
    let (ok, out, err) = alice().await;
    assert!(ok && out == "alice@sales", "{err}");
    let memberships = || {
        upstream_sql(
            &pg,
            "sales",
            "SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m \
             JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
             WHERE u.rolname = 'alice@sales'",
        )
    };
    assert_eq!(
        memberships(),
        "analysts@sales,auditors@sales,portcullis_managed"
    );
    assert_eq!(
        upstream_sql(
            &pg,
            "sales",
            "SELECT rolcanlogin || ',' || rolsuper FROM pg_roles WHERE rolname = 'alice@sales'"
        ),
        "true,false"
    );
    assert_eq!(
        upstream_sql(
            &pg,
            "sales",
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'analysts@sales'"
        ),
        "f"
    );
    // Leaving a group upstream too, at the next sign-in.
    server
        .admin_sql(&["ALTER GROUP auditors@sales REMOVE USER alice@sales"])
        .await;
    assert!(alice().await.0);
    assert_eq!(memberships(), "analysts@sales,portcullis_managed");
    // bob@sales exists upstream as somebody else's superuser: the sign-in is refused and the
    // role is untouched (its own password still works).
    let (ok, _, err) = server
        .sql("bob@sales", "sales", "Bob-pass-1234", &["SELECT 1"])
        .await;
    assert!(!ok && err.contains("not managed by Portcullis"), "{err}");
    let own = blocking(|| {
        std::process::Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-c", "SELECT current_user"])
            .arg(format!(
                "host=127.0.0.1 port={} user=bob@sales dbname=sales sslmode=disable",
                pg.port
            ))
            .env("PGPASSWORD", "Bobs-own-pass-1")
            .output()
            .unwrap()
    });
    assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "bob@sales");
    assert_eq!(
        server
            .admin_sql(&[
                "SELECT reason FROM sys.authentication_events WHERE event = 'session_end' \
                 AND identity = 'bob@sales'"
            ])
            .await,
        "upstream"
    );
}

/// Item 2, mirroring: catalog changes reach the upstream as they happen — groups, memberships,
/// dropped users (whose objects pass to the administrator, never dropped) — in a transaction
/// the catalog commits with; an upstream that refuses (here: down) refuses the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_changes_are_mirrored_upstream_or_refused_whole() {
    let pg = blocking(upstream);
    let server = bound_in_process(&pg).await;
    assert!(
        server
            .sql("alice@sales", "sales", "Alice-pass-123", &["SELECT 1"])
            .await
            .0
    );
    let of_alice = || {
        upstream_sql(
            &pg,
            "sales",
            "SELECT coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '') \
             FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'alice@sales'",
        )
    };
    let exists = |role: &str| {
        upstream_sql(
            &pg,
            "sales",
            &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"),
        )
    };
    server
        .admin_sql(&[
            "CREATE GROUP writers@sales",
            "ALTER GROUP writers@sales ADD USER alice@sales",
            "ALTER GROUP analysts@sales REMOVE USER alice@sales",
        ])
        .await;
    assert_eq!(exists("writers@sales"), "1");
    assert_eq!(of_alice(), "portcullis_managed,writers@sales");
    server.admin_sql(&["DROP GROUP writers@sales"]).await;
    assert_eq!(exists("writers@sales"), "0");
    // A dropped user's role goes; what it owned passes to the administrator.
    blocking(|| {
        pg.sql(
            "sales",
            &[
                "CREATE TABLE notes (t text)",
                "ALTER TABLE notes OWNER TO \"alice@sales\"",
            ],
        )
    });
    server.admin_sql(&["DROP USER alice@sales"]).await;
    assert_eq!(exists("alice@sales"), "0");
    assert_eq!(
        upstream_sql(
            &pg,
            "sales",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'"
        ),
        "portcullis_admin"
    );
    // Upstream down: the change is refused and the catalog is as it was.
    blocking(|| pg.stop());
    let err = server.admin_sql_fails("CREATE GROUP late@sales").await;
    assert!(err.contains("could not be reached"), "{err}");
    assert_eq!(
        server
            .admin_sql(&["SELECT count(*) FROM sys.groups WHERE name = 'late'"])
            .await,
        "0"
    );
    // Databases without an upstream are not held up by it.
    server
        .admin_sql(&["CREATE DATABASE plain", "CREATE GROUP g@plain"])
        .await;
}

/// Item 3, the relay (first part): a session in a bound database reaches its upstream as the
/// person — tables, rows, PostgreSQL's own privileges and errors, the extended protocol
/// (pgbench -M extended), COPY — while Portcullis still answers its own statements.
#[test]
fn a_signed_in_session_works_upstream_as_the_person() {
    let pg = upstream();
    let server = bound(&pg);
    server.admin(&[
        "CREATE USER \"bob@sales\" PASSWORD = 'Bobby-pass-123'",
        "GRANT USE ON DATABASE sales TO USER bob@sales",
    ]);
    pg.sql(
        "sales",
        &["GRANT CREATE ON SCHEMA public TO \"analysts@sales\""],
    );
    let alice = |sql: &[&str]| server.psql("alice@sales", "sales", "Alice-pass-123", sql);
    let (ok, out, err) = alice(&[
        "CREATE TABLE notes (id int, body text)",
        "INSERT INTO notes VALUES (1, 'hello'), (2, 'world')",
        "SELECT string_agg(body, ' ' ORDER BY id) FROM notes",
        "SELECT current_user",
        "SELECT CURRENT_USER() || ' ' || CURRENT_DATABASE()",
        "SELECT count(*) FROM sys.sessions WHERE user = 'alice@sales'",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        out, "CREATE TABLE\nINSERT 0 2\nhello world\nalice@sales\nalice@sales sales\n1",
        "{err}"
    );
    assert_eq!(
        pg.sql(
            "sales",
            &["SELECT tableowner FROM pg_tables WHERE tablename = 'notes'"]
        ),
        "alice@sales"
    );
    // psql's describe commands (their queries depend on the server version the client was
    // told: the upstream's).
    let (ok, out, err) = alice(&["\\d notes", "SHOW server_version"]);
    assert!(ok, "{err}");
    assert!(out.contains("body") && out.contains("15."), "{out}");
    // The client is told the upstream's parameters at sign-in (its real server_version).
    let (ok, out, err) = alice(&["\\echo :SERVER_VERSION_NAME"]);
    assert!(ok && out.starts_with("15."), "{out}{err}");
    let version = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import psycopg2, sys; print(psycopg2.connect(sys.argv[1]).server_version)",
        ])
        .arg(format!(
            "{} password=Alice-pass-123 sslmode=disable",
            server.conninfo("alice@sales", "sales")
        ))
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&version.stdout);
    assert!(
        v.trim().starts_with("15"),
        "{v}{}",
        String::from_utf8_lossy(&version.stderr)
    );
    // PostgreSQL's own privileges, errors and SQLSTATEs reach the client.
    let (ok, _, err) = server.psql(
        "bob@sales",
        "sales",
        "Bobby-pass-123",
        &["SELECT * FROM notes"],
    );
    assert!(
        !ok && err.contains("permission denied for table notes"),
        "{err}"
    );
    let (ok, _, err) = alice(&["SELECT * FROM no_such_table"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    // The extended protocol, as pgbench -M extended uses it.
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), "SELECT body FROM notes WHERE id = 1;\n").unwrap();
    let bench = std::process::Command::new("pgbench")
        .args(["-n", "-M", "extended", "-c", "1", "-t", "20", "-f"])
        .arg(script.path())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.sql_port.to_string(),
            "-U",
            "alice@sales",
            "sales",
        ])
        .env("PGPASSWORD", "Alice-pass-123")
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&bench.stdout);
    assert!(
        bench.status.success() && text.contains("number of transactions actually processed: 20"),
        "{text}{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    // COPY in and out.
    let mut copy = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "COPY notes FROM STDIN",
        ])
        .arg(server.conninfo("alice@sales", "sales"))
        .env("PGPASSWORD", "Alice-pass-123")
        .env("PGSSLMODE", "disable")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = copy.stdin.take().unwrap();
        for i in 3..1003 {
            writeln!(stdin, "{i}\tline {i}").unwrap();
        }
    }
    let done = copy.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let (ok, out, err) = alice(&[
        "SELECT count(*) FROM notes",
        "COPY (SELECT body FROM notes WHERE id = 2) TO STDOUT",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "1002\nworld");
}

/// Items 3 and 5: a cancel request with the client's key cancels only that session's upstream
/// query; an SSO identity gets its own upstream role too; and when the token expires, the
/// upstream session ends with the Portcullis session.
#[test]
fn cancels_reach_the_upstream_and_the_upstream_session_ends_with_the_token() {
    let pg = upstream();
    let rogue = harness::idp::NodeServer::rogue(&[]);
    let server = bound(&pg);
    let (ok, _, err) = server.psql(
        "admin@system",
        "sales",
        harness::ADMIN_PASSWORD,
        &[&format!(
            "ALTER DATABASE sales SET SSO INTEGRATION oidc issuer = \"{}\", client_id = app, \
             default_group = analysts, enable_id_token_authentication = true",
            rogue.url
        )],
    );
    assert!(ok, "{err}");
    // Cancel, through libpq's PQcancel (psycopg2's conn.cancel()).
    let script = "import psycopg2, sys, threading, time\n\
        conn = psycopg2.connect(sys.argv[1])\n\
        cur = conn.cursor()\n\
        threading.Thread(target=lambda: (time.sleep(1), conn.cancel())).start()\n\
        try:\n    cur.execute('SELECT pg_sleep(60)')\n    print('finished')\n\
        except psycopg2.errors.QueryCanceled as e:\n    print('canceled: ' + str(e).strip())\n";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(format!(
            "{} password=Alice-pass-123 sslmode=disable",
            server.conninfo("alice@sales", "sales")
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("canceled: canceling statement due to user request"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token's session: its own upstream role; ended upstream when the token expires.
    let token = harness::idp::rogue_id_token(&rogue, "u1", 5, serde_json::json!({}));
    let mut psql = harness::LivePsql::connect(&server, "id_token", "sales", &token);
    assert_eq!(psql.run("SELECT current_user"), "u1@example.com");
    let backends = || {
        pg.sql(
            "sales",
            &["SELECT count(*) FROM pg_stat_activity WHERE usename = 'u1@example.com'"],
        )
    };
    assert_eq!(backends(), "1");
    std::thread::sleep(std::time::Duration::from_secs(7));
    let out = psql.run("SELECT 'still here'");
    assert!(out.contains("the sign-in token expired at"), "{out}");
    let mut gone = backends();
    for _ in 0..50 {
        if gone == "0" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        gone = backends();
    }
    assert_eq!(gone, "0", "the upstream session outlived the token");
}
