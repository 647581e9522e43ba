//! The creator group (issue 12, item 4; seed 003): what an SSO user creates in PostgreSQL is
//! owned by one of their groups — groups with CREATE on the target schema win over groups with
//! CREATE on the database, ties go alphabetically — through the simple and the extended
//! protocol, with the client seeing exactly PostgreSQL's answers to what it sent. Password users
//! own what they create. Against a real PostgreSQL 15.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::process::Command;

use harness::postgres::{bound, upstream};

fn owner(pg: &harness::postgres::Postgres, kind: &str, name: &str) -> String {
    let sql = match kind {
        "schema" => {
            format!("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '{name}'")
        }
        _ => format!("SELECT relowner::regrole::text FROM pg_class WHERE oid = '{name}'::regclass"),
    };
    pg.sql("sales", &[&sql])
}

#[test]
fn an_sso_users_objects_are_owned_by_the_group_the_seed_picks() {
    let pg = upstream();
    let rogue = harness::idp::NodeServer::rogue(&[]);
    let server = bound(&pg);
    server.admin(&[
        "CREATE GROUP sso_users@sales",
        "GRANT USE ON DATABASE sales TO GROUP sso_users@sales",
        "CREATE GROUP analytics_team@sales",
        "GRANT USE ON DATABASE sales TO GROUP analytics_team@sales",
        "CREATE GROUP finance_schema_admins@sales",
        "CREATE GROUP a_team@sales",
        "CREATE GROUP b_team@sales",
    ]);
    let (ok, _, err) = server.psql(
        "admin@system",
        "sales",
        harness::ADMIN_PASSWORD,
        &[&format!(
            "ALTER DATABASE sales SET SSO INTEGRATION oidc issuer = \"{}\", client_id = app, \
             default_group = sso_users, enable_id_token_authentication = true, \
             groups_claim_ids = [groups], groups_claim_mappings = {{ analytics = analytics_team, \
             \"finance admins\" = finance_schema_admins, a = a_team, b = b_team }}",
            rogue.url
        )],
    );
    assert!(ok, "{err}");
    // The groups exist upstream (mirrored); the upstream's owner gives them their privileges.
    pg.sql(
        "sales",
        &[
            "CREATE SCHEMA finance",
            "GRANT USAGE, CREATE ON SCHEMA finance TO \"finance_schema_admins@sales\"",
            "GRANT CREATE ON DATABASE sales TO \"analytics_team@sales\"",
            "GRANT USAGE, CREATE ON SCHEMA public TO \"b_team@sales\", \"a_team@sales\"",
            "CREATE SCHEMA alices",
            "GRANT USAGE, CREATE ON SCHEMA alices TO \"analysts@sales\"",
        ],
    );
    let token = harness::idp::rogue_id_token(
        &rogue,
        "u1",
        600,
        serde_json::json!({"groups": ["analytics", "finance admins", "b", "a"]}),
    );
    // The simple protocol (libpq's PQexec, through psycopg2).
    let script = r#"
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
def run(sql):
    try:
        cur.execute(sql)
        print(cur.statusmessage, cur.fetchall() if cur.description else '')
    except psycopg2.Error as e:
        print('error', e.pgcode, e.diag.statement_position or '', e.diag.message_primary)
run("CREATE TABLE finance.ledger (id int)")
run("CREATE TABLE plain (id int)")
run("CREATE SCHEMA reports")
run("SELECT current_user, current_setting('search_path')")
run("CREATE TABLE finance.ledger (id int)")
run("CREATE TABLE oops (")
run("SELECT current_user")
conn.autocommit = False
run("CREATE TABLE finance.undone (id int)")
conn.rollback()
run("SELECT current_user")
conn.rollback()
conn.autocommit = True
run('SET ROLE "b_team@sales"')
run("CREATE TABLE mine (id int)")
run("RESET ROLE")
run("CREATE TABLE finance.two (id int); SET portcullis.role_before = 'portcullis_admin'")
run("SELECT current_user")
run("CREATE TABLE alices.nope (id int)")
"#;
    let signed_in = ("id_token", "sales", token.as_str());
    let (text, err) = harness::python_client(
        std::path::Path::new("/usr/bin/python3"),
        &server,
        signed_in,
        script,
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "CREATE TABLE ",
            "CREATE TABLE ",
            "CREATE SCHEMA ",
            "SELECT 1 [('u1@example.com', '\"$user\", public')]",
            "error 42P07  relation \"ledger\" already exists",
            "error 42601 20 syntax error at end of input",
            "SELECT 1 [('u1@example.com',)]",
            "CREATE TABLE ",
            "SELECT 1 [('u1@example.com',)]",
            "SET ",
            "CREATE TABLE ",
            "RESET ",
            "SET ",
            // The client's own `portcullis.role_before` cannot take the session anywhere
            // PostgreSQL would not let the person go: the way back is refused, and the
            // session stays as the group it was.
            "SELECT 1 [('finance_schema_admins@sales',)]",
            // No group of the person may create in `alices` (and neither may they).
            "error 42501 14 permission denied for schema alices",
        ],
        "{err}"
    );
    // Schema-level CREATE beats database-level; at one level the alphabet decides; a schema is
    // decided by database-level CREATE; a role the client set itself is left alone.
    assert_eq!(
        owner(&pg, "table", "finance.ledger"),
        "\"finance_schema_admins@sales\""
    );
    assert_eq!(owner(&pg, "table", "public.plain"), "\"a_team@sales\"");
    assert_eq!(owner(&pg, "schema", "reports"), "\"analytics_team@sales\"");
    assert_eq!(owner(&pg, "table", "public.mine"), "\"b_team@sales\"");
    assert_eq!(
        pg.sql(
            "sales",
            &["SELECT count(*) FROM pg_class WHERE relname = 'undone'"]
        ),
        "0"
    );
    // The extended protocol (psycopg 3): the same owner, and the person again after it.
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.cursor()
    cur.execute("CREATE TABLE finance.extended (id int)")
    print(cur.statusmessage)
    print(cur.execute("SELECT current_user, %s::int", (7,)).fetchone())
    with conn.pipeline():
        conn.execute("CREATE TABLE finance.piped (id int)")
        conn.execute("INSERT INTO finance.piped VALUES (%s)", (1,))
    print(cur.execute("SELECT current_user").fetchone())
"#;
    let (out, err) = harness::python_client(&harness::python(), &server, signed_in, script);
    assert_eq!(
        out, "CREATE TABLE\n('u1@example.com', 7)\n('u1@example.com',)\n",
        "{err}"
    );
    assert_eq!(
        owner(&pg, "table", "finance.extended"),
        "\"finance_schema_admins@sales\""
    );
    assert_eq!(
        owner(&pg, "table", "finance.piped"),
        "\"finance_schema_admins@sales\""
    );
    // pgjdbc: the extended protocol everywhere.
    let out = Command::new("java")
        .args(["-cp", "/usr/share/java/postgresql.jar"])
        .arg(harness::idp::idp_dir().join("../jdbc/JdbcClient.java"))
        .args([
            &format!("jdbc:postgresql://127.0.0.1:{}/sales", server.sql_port),
            "id_token",
            &token,
            "CREATE TABLE finance.jdbc (id int)",
        ])
        .output()
        .expect("java (the JDK) must be installed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "updated 0",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        owner(&pg, "table", "finance.jdbc"),
        "\"finance_schema_admins@sales\""
    );
    // A password user owns what they create.
    let (ok, _, err) = server.psql(
        "alice@sales",
        "sales",
        "Alice-pass-123",
        &["CREATE TABLE alices.notes (id int)"],
    );
    assert!(ok, "{err}");
    assert_eq!(owner(&pg, "table", "alices.notes"), "\"alice@sales\"");
}
