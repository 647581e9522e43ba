//! The gateway's pitch, as one story (issue 12): an administrator binds `sales` to a real
//! PostgreSQL 15 and maps the provider's groups; Alice signs in from an unmodified psql with the
//! device grant (the real provider, npm oidc-provider), creates a table — owned by her
//! creator group — grants it to the analysts and loads 100 MB through COPY; Mallory, an analyst,
//! signs in with a token and reads all of it back; Bob, outside the group, gets PostgreSQL's
//! 42501; a cancel stops only its own query; and when Mallory's token expires her session ends,
//! here and upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::idp::{tokens, NodeServer};
use harness::postgres::{upstream, ADMIN_PASS};
use harness::process::Watched;
use harness::{Server, ADMIN_PASSWORD};

/// How long the provider's tokens live.
const TOKEN_SECONDS: u64 = 40;

/// psql on `sales` as `user` (a token as the password, or none: an interactive sign-in).
fn psql(server: &Server, user: &str, token: Option<&str>, commands: &[&str]) -> Command {
    let mut cmd = Command::new("psql");
    cmd.arg(format!(
        "host=127.0.0.1 port={} user={user} dbname=sales connect_timeout=60",
        server.sql_port
    ))
    .args([
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-v",
        "VERBOSITY=verbose",
    ])
    .env("PGSSLMODE", "disable")
    .env_remove("PGPASSWORD");
    for c in commands {
        cmd.args(["-c", c]);
    }
    if let Some(t) = token {
        cmd.env("PGPASSWORD", t);
    }
    cmd
}

fn id_token(idp: &NodeServer, who: &str) -> String {
    tokens(&idp.url, "rs256-client", "code", who)["id_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn sales_behind_single_sign_on() {
    let pg = upstream();
    let server = Server::start();
    let keys = tempfile::tempdir().unwrap();
    let redirect = format!("http://127.0.0.1:{}/v1/callback", server.http_port);
    let idp = NodeServer::provider_with(
        0,
        &keys.path().join("keys.json"),
        &[
            "--redirect-uri",
            &redirect,
            "--token-ttl",
            &TOKEN_SECONDS.to_string(),
        ],
    );
    // The administrator binds sales and maps the provider's groups.
    server.admin(&[
        &format!(
            "CREATE DATABASE sales UPSTREAM '{}'",
            pg.url("portcullis_admin", ADMIN_PASS, "sales")
        ),
        "CREATE GROUP analysts@sales",
        "CREATE GROUP engineers@sales",
        "CREATE GROUP contractors@sales",
        "CREATE GROUP sso_users@sales",
        "GRANT USE ON DATABASE sales TO GROUP analysts@sales",
        "GRANT USE ON DATABASE sales TO GROUP engineers@sales",
        "GRANT USE ON DATABASE sales TO GROUP contractors@sales",
    ]);
    let (ok, _, err) = server.psql(
        "admin@system",
        "sales",
        ADMIN_PASSWORD,
        &[&format!(
            "ALTER DATABASE sales SET SSO INTEGRATION oidc issuer = \"{}\", \
             client_id = \"rs256-client\", client_secret = \"rs256-client-secret\", \
             enable_id_token_authentication = true, default_group = sso_users, additional_scopes = [email, groups], \
             groups_claim_ids = [groups], groups_claim_mappings = {{ analysts = analysts, \
             \"Example Provider Group\" = engineers, contractors = contractors }}",
            idp.url
        )],
    );
    assert!(ok, "{err}");
    // The data's owner lets the engineers create tables (the provider's groups arrive upstream
    // as roles: "engineers@sales").
    pg.sql(
        "sales",
        &["GRANT USAGE, CREATE ON SCHEMA public TO \"engineers@sales\""],
    );

    // 100 MB of orders to load.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("orders.tsv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&data).unwrap());
        let pad = "x".repeat(90);
        for i in 0..1_000_000 {
            writeln!(f, "{i}\titem {pad}").unwrap();
        }
    }
    let size = std::fs::metadata(&data).unwrap().len();
    assert!(size > 100_000_000, "{size}");

    // Alice: psql with the device grant, approved at the provider; she creates the table,
    // grants it to the analysts, and loads it.
    let mut alice = Watched::spawn(psql(
        &server,
        "@sales",
        None,
        &[
            "CREATE TABLE orders (id int, item text)",
            "GRANT SELECT ON TABLE orders TO GROUP analysts",
            &format!("\\copy orders FROM '{}'", data.display()),
            "SELECT current_user, count(*) FROM orders",
        ],
    ));
    let line = alice.line_with("enter the code");
    let code = line.rsplit(' ').next().unwrap().trim().to_owned();
    harness::idp::approve_device(&idp, &code, false);
    let (status, out, err) = alice.finish();
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out,
        "CREATE TABLE\nGRANT\nCOPY 1000000\nalice@example.com|1000000"
    );
    // Owned by her creator group, not by her.
    assert_eq!(
        pg.sql(
            "sales",
            &["SELECT tableowner FROM pg_tables WHERE tablename = 'orders'"]
        ),
        "engineers@sales"
    );

    // Mallory's token for the end of the story, taken now so its lifetime runs meanwhile (the
    // slow load above is done).
    let expiring = id_token(&idp, "mallory");
    let expiring_issued = Instant::now();

    // Mallory, an analyst, with a token: reads every byte back.
    let back = dir.path().join("back.tsv");
    let out = psql(
        &server,
        "id_token",
        Some(&id_token(&idp, "mallory")),
        &[
            "SELECT current_user",
            &format!(
                "\\copy (SELECT * FROM orders ORDER BY id) TO '{}'",
                back.display()
            ),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mallory@example.com\nCOPY 1000000"
    );
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&data).unwrap(),
        "the orders came back changed"
    );

    // Bob is a contractor: PostgreSQL itself refuses him.
    let out = psql(
        &server,
        "id_token",
        Some(&id_token(&idp, "bob")),
        &["SELECT count(*) FROM orders"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("ERROR:  42501: permission denied for table orders"),
        "{err}"
    );

    // A cancel stops Mallory's query, and only hers.
    let script = "import psycopg2, sys, threading, time\n\
        conn = psycopg2.connect(sys.argv[1])\n\
        cur = conn.cursor()\n\
        threading.Thread(target=lambda: (time.sleep(1), conn.cancel())).start()\n\
        try:\n    cur.execute('SELECT count(*) FROM orders, pg_sleep(60)')\n    print('finished')\n\
        except psycopg2.errors.QueryCanceled as e:\n    print('canceled: ' + str(e).strip())\n\
        conn.rollback()\n\
        cur.execute('SELECT count(*) FROM orders')\n\
        print(cur.fetchone()[0])\n";
    let (out, err) = harness::python_client(
        std::path::Path::new("/usr/bin/python3"),
        &server,
        ("id_token", "sales", &id_token(&idp, "mallory")),
        script,
    );
    assert_eq!(
        out, "canceled: canceling statement due to user request\n1000000\n",
        "{err}"
    );

    // Mallory's first token expires: her open session ends, here and upstream.
    let mut session = harness::LivePsql::connect(&server, "id_token", "sales", &expiring);
    assert_eq!(session.run("SELECT count(*) FROM orders"), "1000000");
    let pid = session.run("SELECT pg_backend_pid()");
    let backend = || {
        pg.sql(
            "sales",
            &[&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} \
                 AND usename = 'mallory@example.com'"
            )],
        )
    };
    assert_eq!(backend(), "1");
    let left = Duration::from_secs(TOKEN_SECONDS + 2).saturating_sub(expiring_issued.elapsed());
    std::thread::sleep(left);
    let out = session.run("SELECT 'still here'");
    assert!(out.contains("the sign-in token expired at"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend() != "0" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(backend(), "0", "the upstream session outlived the token");
}
