//! Graceful shutdown (issue 16, item 4): on SIGTERM the server stops accepting, lets a
//! statement in flight finish (here a relayed `pg_sleep`), then ends every open session with
//! PostgreSQL's `57P01`, closes their upstream sessions, and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::postgres::{bound, upstream};

#[test]
fn sigterm_finishes_statements_in_flight_tells_sessions_and_exits_zero() {
    let pg = upstream();
    let mut server = bound(&pg);
    // An idle admin session, and alice with a statement in flight upstream when SIGTERM comes.
    let mut idle =
        harness::LivePsql::connect(&server, "admin@system", "system", harness::ADMIN_PASSWORD);
    let script = "import psycopg2, sys\n\
        conn = psycopg2.connect(sys.argv[1])\n\
        cur = conn.cursor()\n\
        print('started', flush=True)\n\
        cur.execute(\"SELECT 'finished', pg_sleep(2)\")\n\
        print(cur.fetchone()[0], flush=True)\n\
        try:\n    cur.execute('SELECT 1')\n    print('still open')\n\
        except psycopg2.Error as e:\n    print('ended:', ' | '.join(str(e).strip().splitlines()))\n";
    let alice = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(format!(
            "{} password=Alice-pass-123 sslmode=disable",
            server.conninfo("alice@sales", "sales")
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until alice's statement runs upstream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.sql(
        "sales",
        &[
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice@sales' \
           AND query LIKE '%pg_sleep%' AND state = 'active'",
        ],
    ) != "1"
    {
        assert!(Instant::now() < deadline, "alice's statement never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A client half-way through signing in (asked for its password).
    let mut signing_in = std::net::TcpStream::connect(("127.0.0.1", server.sql_port)).unwrap();
    std::io::Write::write_all(
        &mut signing_in,
        &harness::wire::startup_packet("admin@system", "system"),
    )
    .unwrap();
    let (tag, _) = harness::wire::read_message(&mut signing_in);
    assert_eq!(tag, b'R', "asked to authenticate");
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    // Alice's statement finished and she got its result; then her session ended. (Whether
    // libpq shows the FATAL's text or only "server closed the connection" is a race in libpq:
    // the FATAL is read only if the client reads before its next query meets the closed
    // socket. The raw client below reads it exactly.)
    let out = alice.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("started\nfinished\nended: "),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = harness::wire::read_all(&mut signing_in);
    let fatal = said
        .iter()
        .find(|(tag, _)| *tag == b'E')
        .expect("an ErrorResponse");
    let fields = String::from_utf8_lossy(&fatal.1);
    assert!(
        fields.contains("SFATAL") && fields.contains("C57P01"),
        "{fields}"
    );
    let told = idle.run("SELECT 1");
    assert!(
        told.contains("FATAL:  terminating connection due to administrator command"),
        "{told}"
    );
    // Nothing listens any more; nothing is left upstream.
    let (ok, _, err) = server.psql(
        "admin@system",
        "system",
        harness::ADMIN_PASSWORD,
        &["SELECT 1"],
    );
    assert!(!ok && err.contains("Connection refused"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.sql(
        "sales",
        &["SELECT count(*) FROM pg_stat_activity WHERE usename = 'alice@sales'"],
    ) != "0"
    {
        assert!(
            Instant::now() < deadline,
            "alice's upstream session outlived the server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP request in flight when SIGTERM comes (a catalog query that takes about a second) is
/// answered in full before the server exits 0; a new connection after that is refused.
#[test]
fn sigterm_answers_http_requests_in_flight() {
    use harness::web::Web;
    let mut server = harness::Server::start();
    let web = Web::new();
    let login = web.post_json(
        &server.http("/v1/login"),
        &serde_json::json!({"username": "admin@system", "password": harness::ADMIN_PASSWORD}),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let v: serde_json::Value = serde_json::from_str(&login.body).unwrap();
    let token = v["access_token"].as_str().unwrap().to_owned();
    let url = server.http("/v1/execute/system");
    let slow = std::thread::spawn(move || {
        Web::new().post_json_with(
            &url,
            &serde_json::json!({"statement": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL \
                SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) AS n FROM c"}),
            &[&format!("Authorization: Bearer {token}")],
        )
    });
    // Let the query start, then stop the server under it.
    std::thread::sleep(Duration::from_millis(300));
    let began = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let answer = slow.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("3000000"), "{}", answer.body);
    println!(
        "stopped in {:?} after answering the request in flight",
        began.elapsed()
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.http_port)).is_err());
}
