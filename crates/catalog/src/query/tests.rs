//! Tests of catalog queries: the limits (refused functions, oversized values and patterns,
//! runaway queries), a catalog of 100,000 users across restarts, and the row visibility of
//! every `sys` table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_store::{
    Change, DatabaseRecord, ObjectRef, PrincipalRef, Snapshot, SqliteStore, Store, UserRecord,
};

use super::limits::{ResultBudget, MAX_SQL_BYTES};
use super::*;
use crate::catalog::{Catalog, CatalogOptions};
use crate::privileges::{holds, session_principals, Action, Privilege};
use crate::sealing::Sealer;
use crate::sessions::{AuthMethod, Protocol, SessionRegistry};

#[test]
fn placeholders_are_rewritten_outside_quotes() {
    assert_eq!(
        rewrite_placeholders("SELECT $1, '$2', \"$3\", $10"),
        "SELECT ?1, '$2', \"$3\", ?10"
    );
}

// ---- limits, on one engine ----

fn user(id: i64, database_id: i64, name: &str) -> UserRecord {
    UserRecord {
        id,
        database_id,
        name: name.into(),
        first_name: None,
        last_name: None,
        email: Some(format!("{name}@mail.example")),
        verifier: String::new(),
        password_set_at: 0,
        state: "ACTIVE".into(),
        failed_attempts: 0,
        created_at: 0,
    }
}

/// A catalog of one database, `users` users and an ALL grant on the system for user 2.
fn big_state(users: i64) -> Arc<CatalogState> {
    let mut snap = Snapshot {
        databases: vec![DatabaseRecord {
            id: 1,
            name: "system".into(),
            created_at: 0,
        }],
        users: (0..users)
            .map(|i| user(i + 2, 1, &format!("u{i}")))
            .collect(),
        ..Snapshot::default()
    };
    snap.grants.push(portcullis_store::GrantRecord {
        grantee: PrincipalRef::User(2),
        privilege: "ALL".into(),
        object: ObjectRef::System,
        grantor: "system".into(),
        granted_at: 0,
    });
    Arc::new(CatalogState::new(snap))
}

fn session_of(user_id: i64, fqun: &str, database: &str, database_id: i64) -> Session {
    Session {
        id: SessionRegistry::new_id(),
        user_id,
        user: fqun.into(),
        database: database.into(),
        database_id,
        method: AuthMethod::Scram,
        protocol: Protocol::Postgres,
        peer: "127.0.0.1:5".into(),
        started_at: 0,
        expires_at: None,
        sso: None,
        credential_stamp: None,
        via: Default::default(),
        application: None,
        token_id: None,
    }
}

fn job(sql: &str, state: &Arc<CatalogState>, generation: u64) -> QueryJob {
    QueryJob {
        sql: sql.into(),
        params: Vec::new(),
        session: session_of(2, "u0@system", "system", 1),
        state: state.clone(),
        catalog_generation: generation,
        sessions: Default::default(),
        events: None,
    }
}

fn engine(time_limit: Duration) -> QueryEngine {
    QueryEngine::with_time_limit(time_limit).unwrap()
}

/// Runs `sql` on a small catalog; answers the error and how long it took.
fn fails(engine: &mut QueryEngine, sql: &str) -> (CatalogError, Duration) {
    let state = big_state(3);
    let started = Instant::now();
    let err = engine.run(&job(sql, &state, 1)).unwrap_err();
    (err, started.elapsed())
}

fn one_value(engine: &mut QueryEngine, sql: &str) -> Value {
    let state = big_state(3);
    let r = engine.run(&job(sql, &state, 1)).unwrap();
    r.rows[0][0].clone()
}

/// A query loads only the parts of the copy it reads: `SELECT 1` touches neither the catalog
/// nor the sessions; `sys.sessions` follows the registry, and leaves out a session past its
/// end that the sweeper has not ended yet.
#[test]
fn the_copy_is_loaded_by_what_a_query_reads() {
    let state = big_state(3);
    let registry = SessionRegistry::default();
    let me = registry.insert(session_of(2, "u0@system", "system", 1));
    let mut e = engine(Duration::from_secs(5));
    let mut job = job("SELECT 1", &state, 1);
    job.session = (*me).clone();
    job.sessions = registry.view();
    e.run(&job).unwrap();
    assert_eq!(e.copy.catalog, u64::MAX, "SELECT 1 loaded the catalog");
    assert_eq!(e.copy.sessions, u64::MAX, "SELECT 1 listed the sessions");
    assert_eq!(e.copy.owners, 1, "visibility needs the owners every time");

    let count = |e: &mut QueryEngine, job: &mut QueryJob, sql: &str| {
        job.sql = sql.into();
        e.run(job).unwrap().rows[0][0].clone()
    };
    let sessions = "SELECT count(*) FROM sys.sessions";
    assert_eq!(count(&mut e, &mut job, sessions), Value::Text("1".into()));
    assert_eq!(
        e.copy.catalog,
        u64::MAX,
        "sys.sessions alone needs no catalog tables"
    );
    let mut late = session_of(2, "u0@system", "system", 1);
    late.started_at = crate::catalog::now();
    registry.insert(late);
    assert_eq!(count(&mut e, &mut job, sessions), Value::Text("2".into()));
    let mut lapsed = session_of(2, "u0@system", "system", 1);
    lapsed.expires_at = Some(crate::catalog::now() - 1);
    registry.insert(lapsed);
    assert_eq!(
        count(&mut e, &mut job, sessions),
        Value::Text("2".into()),
        "a lapsed session is listed"
    );
    // Through a view that joins the catalog: both parts are loaded.
    let joined = "SELECT count(*) FROM sys.sessions s JOIN sys.users u ON u.id = s.user_id";
    assert_eq!(count(&mut e, &mut job, joined), Value::Text("2".into()));
    assert_eq!(e.copy.catalog, 1);
}

/// A statement run again comes from SQLite's statement cache, without the authorizer: what it
/// reads is remembered, so its copy is still brought up to date; forgotten, it loads every
/// part (never a stale copy); a refused statement is never cached.
#[test]
fn a_cached_statement_still_loads_what_it_reads() {
    let mut e = engine(Duration::from_secs(5));
    let users = "SELECT count(*) FROM sys.users";
    let count = |e: &mut QueryEngine, state: &Arc<CatalogState>, generation: u64| {
        e.run(&job(users, state, generation)).unwrap().rows[0][0].clone()
    };
    let three = count(&mut e, &big_state(3), 1);
    assert!(e.reads.lock().asked && e.known_reads.contains_key(users));
    // Cached now: the next run asks the authorizer nothing, yet sees the catalog change.
    let four = count(&mut e, &big_state(4), 2);
    assert!(!e.reads.lock().asked, "the statement was prepared again");
    assert_ne!(three, four, "a cached statement read a stale copy");
    assert_eq!(e.copy.catalog, 2);
    // Its reads forgotten (many other statements since), it is prepared again, asked.
    e.known_reads.clear();
    let five = count(&mut e, &big_state(5), 3);
    assert!(
        e.reads.lock().asked,
        "a statement of unknown reads was used from the cache"
    );
    assert_ne!(four, five);
    assert_eq!(e.copy.catalog, 3);
    // The engine's own statements (cached while it writes its copy, the authorizer off) are
    // not a query's to take: its writes fail the read-only check, and a read of its own
    // (here, straight from a hidden table) is prepared again for the query, and refused.
    count(&mut e, &big_state(2), 4);
    let refused = e
        .run(&job(
            "DELETE FROM sys.users_all WHERE rowid = ?1",
            &big_state(2),
            4,
        ))
        .unwrap_err();
    assert_eq!(
        refused.sqlstate,
        crate::error::sqlstate::INSUFFICIENT_PRIVILEGE,
        "{refused:?}"
    );
    let own = "SELECT count(*) FROM sys.users_all";
    e.loading.store(true, std::sync::atomic::Ordering::Release);
    drop(e.conn.prepare_cached(own).unwrap());
    e.loading.store(false, std::sync::atomic::Ordering::Release);
    let refused = e.run(&job(own, &big_state(2), 4)).unwrap_err();
    assert_eq!(
        refused.sqlstate,
        crate::error::sqlstate::INSUFFICIENT_PRIVILEGE,
        "{refused:?}"
    );
    // A refused statement fails every time.
    for _ in 0..2 {
        let refused = e
            .run(&job("SELECT * FROM sqlite_master", &big_state(5), 3))
            .unwrap_err();
        assert_eq!(
            refused.sqlstate,
            crate::error::sqlstate::INSUFFICIENT_PRIVILEGE,
            "{refused:?}"
        );
    }
}

/// The async side answers only small queries: no sys table, done within the budget. A big one
/// is declined (and runs in full elsewhere), a wrong one fails at once.
#[test]
fn only_small_queries_run_on_the_spot() {
    let state = big_state(3);
    let mut e = engine(Duration::from_secs(5));
    let budget = Duration::from_micros(200);
    // The row owners are worked out off the async workers first.
    assert!(e.run_small(&job("SELECT 1", &state, 1), budget).is_none());
    e.run(&job("SELECT 1", &state, 1)).unwrap();
    let one = e
        .run_small(&job("SELECT 1", &state, 1), budget)
        .unwrap()
        .unwrap();
    assert_eq!(one.rows, vec![vec![Value::Text("1".into())]]);
    assert!(e
        .run_small(&job("SELECT count(*) FROM sys.users", &state, 1), budget)
        .is_none());
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let started = Instant::now();
    assert!(e.run_small(&job(endless, &state, 1), budget).is_none());
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    let bad = e
        .run_small(&job("SELEC 1", &state, 1), budget)
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.sqlstate, crate::error::sqlstate::SYNTAX_ERROR);
    // A newer catalog: declined until the owners are worked out again.
    assert!(e.run_small(&job("SELECT 1", &state, 2), budget).is_none());
}

#[test]
fn functions_that_manufacture_large_values_are_refused() {
    let mut e = engine(Duration::from_secs(5));
    for (sql, name) in [
        ("SELECT zeroblob(10)", "zeroblob"),
        ("SELECT length(ZEROBLOB(1000000000))", "zeroblob"),
        ("SELECT randomblob(1000000)", "randomblob"),
        ("SELECT printf('%.*c', 1000000000, 'x')", "printf"),
        ("SELECT format('%1000000d', 1)", "format"),
        ("SELECT replace('aaaa', 'a', 'bbbb')", "replace"),
        ("SELECT json_patch('{}', '{}')", "json_patch"),
        ("SELECT load_extension('x')", "load_extension"),
        (
            "WITH RECURSIVE c(n, b) AS (SELECT 1, zeroblob(1000000) UNION ALL \
             SELECT n + 1, b FROM c WHERE n < 10000) SELECT count(*) FROM c",
            "zeroblob",
        ),
    ] {
        let (err, took) = fails(&mut e, sql);
        assert_eq!(err.sqlstate, "42501", "{sql}: {err:?}");
        assert!(
            err.message.contains(&format!("function {name}()")),
            "{sql}: {err:?}"
        );
        assert!(took < Duration::from_secs(5), "{sql}: {took:?}");
    }
    // Other functions still work.
    assert_eq!(
        one_value(&mut e, "SELECT upper(substr('catalog', 1, 3))"),
        Value::Text("CAT".into())
    );
}

#[test]
fn a_huge_glob_pattern_and_a_huge_string_are_refused_at_once() {
    let mut e = engine(Duration::from_secs(5));
    let pattern = format!("*{}", "a*".repeat(24_500));
    let (err, took) = fails(&mut e, &format!("SELECT 'aaaa' GLOB '{pattern}'"));
    assert_eq!(err.sqlstate, "54000", "{err:?}");
    assert!(err.message.contains("GLOB pattern"), "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The 16 MB string of the finding: stopped at 1 MiB.
    let (err, took) = fails(
        &mut e,
        "WITH RECURSIVE d(s, n) AS (SELECT 'ab', 0 UNION ALL SELECT s || s, n + 1 FROM d \
         WHERE n < 24) SELECT length(s) FROM d WHERE n = 23",
    );
    assert_eq!(err.sqlstate, "54000", "{err:?}");
    assert!(err.message.contains("1048576 bytes"), "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A 256-byte pattern is fine.
    let ok = format!("SELECT 'ab' LIKE '{}'", "%".repeat(256));
    assert_eq!(one_value(&mut e, &ok), Value::Text("1".into()));
    let (err, _) = fails(&mut e, &format!("SELECT 'ab' LIKE '{}'", "%".repeat(257)));
    assert_eq!(err.sqlstate, "54000", "{err:?}");
    // A query text over the limit is refused before SQLite reads it.
    let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
    let (err, _) = fails(&mut e, &long);
    assert_eq!(err.sqlstate, "54000", "{err:?}");
}

#[test]
fn a_runaway_recursive_query_is_stopped_by_the_deadline_or_a_cap() {
    let limit = Duration::from_millis(300);
    let mut e = engine(limit);
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c)";
    let (err, took) = fails(&mut e, &format!("{forever} SELECT count(*) FROM c"));
    assert_eq!(err.sqlstate, "57014", "{err:?}");
    assert!(took < limit + Duration::from_secs(1), "{took:?}");
    let (err, _) = fails(&mut e, &format!("{forever} SELECT x FROM c"));
    assert_eq!(err.sqlstate, "54000", "{err:?}");
    assert!(err.message.contains("rows"), "{err:?}");
    // 40,000 rows of 1,000 bytes: over the byte cap long before the row cap.
    let wide = format!(
        "WITH RECURSIVE c(x, s) AS (SELECT 1, '{}' UNION ALL SELECT x + 1, s FROM c \
         WHERE x < 40000) SELECT s FROM c",
        "y".repeat(1000)
    );
    let (err, _) = fails(&mut e, &wide);
    assert_eq!(err.sqlstate, "54000", "{err:?}");
    assert!(err.message.contains("MiB"), "{err:?}");
    // The engine is fine afterwards.
    assert_eq!(one_value(&mut e, "SELECT 41"), Value::Text("41".into()));
}

#[test]
fn the_deadline_is_checked_while_rows_are_collected() {
    let mut budget = ResultBudget::new(Instant::now() - Duration::from_millis(1));
    assert_eq!(budget.row().unwrap_err().sqlstate, "57014");
    let mut budget = ResultBudget::new(Instant::now() + Duration::from_secs(60));
    budget.row().unwrap();
    budget.value(&Value::Text("x".repeat(1 << 20))).unwrap();
    let big = Value::Text("x".repeat(16 << 20));
    assert_eq!(budget.value(&big).unwrap_err().sqlstate, "54000");
}

#[test]
fn instr_and_trim_answer_like_sqlite_in_linear_time() {
    let mut e = engine(Duration::from_secs(5));
    for (sql, want) in [
        ("SELECT instr('hello', 'll')", Value::Text("3".into())),
        ("SELECT instr('héllo', 'l')", Value::Text("3".into())),
        ("SELECT instr('hello', 'z')", Value::Text("0".into())),
        ("SELECT instr('hello', '')", Value::Text("1".into())),
        ("SELECT instr(x'00ff01', x'01')", Value::Text("3".into())),
        ("SELECT instr(12345, 34)", Value::Text("3".into())),
        ("SELECT instr(NULL, 'a')", Value::Null),
        ("SELECT trim('xxhixx', 'x')", Value::Text("hi".into())),
        ("SELECT ltrim('xyhixy', 'yx')", Value::Text("hixy".into())),
        ("SELECT rtrim('xyhixy', 'yx')", Value::Text("xyhi".into())),
        ("SELECT trim('  hi  ')", Value::Text("hi".into())),
        ("SELECT trim('ab', NULL)", Value::Null),
    ] {
        assert_eq!(one_value(&mut e, sql), want, "{sql}");
    }
    // 512 KiB of 'a' against 256 KiB of 'a' then 'b' (instr), and against 256 KiB of 'b' then
    // 'a' (trim): SQLite's own versions compare each position with the whole needle or list
    // and take many seconds inside one step.
    let started = Instant::now();
    let sql = "WITH RECURSIVE d(s, n) AS (SELECT 'a', 0 UNION ALL \
               SELECT s || s, n + 1 FROM d WHERE n < 19), \
               e(s, n) AS (SELECT 'b', 0 UNION ALL SELECT s || s, n + 1 FROM e WHERE n < 18) \
               SELECT instr(d.s, substr(d.s, 1, 262144) || 'b') + length(trim(d.s, e.s || 'a')) \
               FROM d, e WHERE d.n = 19 AND e.n = 18";
    assert_eq!(one_value(&mut e, sql), Value::Text("0".into()));
    // Generous for a loaded machine; the quadratic versions took many seconds here.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn describe_needs_no_copy_and_keeps_column_types() {
    let e = engine(Duration::from_secs(5));
    let (columns, params) = e
        .describe("SELECT id, name FROM sys.users WHERE id = $1")
        .unwrap();
    assert_eq!(params, 1);
    assert_eq!(columns[0].kind, ColumnType::Int);
    assert_eq!(columns[1].kind, ColumnType::Text);
    assert_eq!(
        e.describe("SELECT zeroblob(1)").unwrap_err().sqlstate,
        "42501"
    );
}

/// The stale-deadline bug: loading a large copy ran under the previous query's deadline and
/// failed every query after. A load takes as long as it takes; only the query is timed.
#[test]
fn a_large_reload_is_not_timed_by_a_query_deadline() {
    let mut e = engine(Duration::from_millis(50));
    let r = e.run(&job("SELECT 1", &big_state(30_000), 1)).unwrap();
    assert_eq!(r.rows[0][0], Value::Text("1".into()));
    std::thread::sleep(Duration::from_millis(100));
    let r = e.run(&job("SELECT 2", &big_state(40_000), 2)).unwrap();
    assert_eq!(r.rows[0][0], Value::Text("2".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_queries_leave_engines_for_a_quick_one() {
    let pool = Arc::new(QueryPool::new(3, Duration::from_secs(2)));
    let state = big_state(3);
    let forever = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (pool, job) = (pool.clone(), job(forever, &state, 1));
            tokio::spawn(async move { pool.run(job).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let quick = pool.run(job("SELECT 1", &state, 1)).await.unwrap();
    assert_eq!(quick.rows[0][0], Value::Text("1".into()));
    // Not behind the slow ones (which run for 5 s); generous for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        slow.iter().all(|h| !h.is_finished()),
        "the slow ones still run"
    );
    for h in slow {
        assert_eq!(h.await.unwrap().unwrap_err().sqlstate, "57014");
    }
}

// ---- a catalog of 100,000 users, across restarts ----

async fn open(store: &Arc<SqliteStore>) -> Catalog {
    let store: Arc<dyn Store> = store.clone();
    Catalog::open(
        store,
        CatalogOptions::default(),
        Sealer::new(&Sealer::generate_key()).unwrap(),
    )
    .await
    .unwrap()
}

fn admin_session(catalog: &Catalog) -> Session {
    let state = catalog.state();
    let admin = state.user(1, "admin").unwrap();
    // Registered: every statement checks that its session is still live.
    (*catalog
        .sessions
        .insert(session_of(admin.id, "admin@system", "system", 1)))
    .clone()
}

async fn count(catalog: &Catalog, session: &Session, sql: &str) -> String {
    let r = catalog.query(session, sql, &[]).await.unwrap();
    r.rows[0][0].to_text().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_of_100000_users_loads_and_survives_restarts_and_bulk_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("catalog.db")).unwrap());
    let catalog = open(&store).await;
    catalog.bootstrap("Admin-pass-1").await.unwrap();
    let admin = admin_session(&catalog);
    catalog
        .execute(&admin, "CREATE DATABASE big", &[])
        .await
        .unwrap();
    let big = catalog.state().database("big").unwrap().id;
    let first = catalog.state().next_id();
    let users: Vec<Change> = (0..100_000)
        .map(|i| Change::PutUser(user(first + i, big, &format!("user{i}"))))
        .collect();
    store.apply(&users).await.unwrap();
    drop(catalog);

    // A restart with 100,000 users: every query works, even the first.
    let catalog = open(&store).await;
    let started = Instant::now();
    assert_eq!(count(&catalog, &admin, "SELECT 1").await, "1");
    let load = started.elapsed();
    assert_eq!(
        count(&catalog, &admin, "SELECT count(*) FROM sys.users").await,
        "100001"
    );
    eprintln!("loading 100,001 users took {load:?}");
    // A user of the big database sees only itself.
    let one = session_of(first, "user0@big", "big", big);
    assert_eq!(
        count(&catalog, &one, "SELECT count(*) FROM sys.users").await,
        "1"
    );

    // 2,000 rows change between two queries (20 batches of 100): still fine.
    let more = first + 100_000;
    for batch in 0..20 {
        let changes: Vec<Change> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                Change::PutUser(user(more + n, big, &format!("extra{n}")))
            })
            .collect();
        catalog.commit(&changes).await.unwrap();
    }
    assert_eq!(count(&catalog, &admin, "SELECT 1").await, "1");
    assert_eq!(
        count(&catalog, &admin, "SELECT count(*) FROM sys.users").await,
        "102001"
    );
    drop(catalog);

    let catalog = open(&store).await;
    assert_eq!(
        count(
            &catalog,
            &admin,
            "SELECT count(*) FROM sys.users WHERE name LIKE 'extra%'"
        )
        .await,
        "2000"
    );
}

// ---- row visibility ----

struct World {
    catalog: Catalog,
    admin: Arc<Session>,
    alice: Arc<Session>,
    bob: Arc<Session>,
    carol: Arc<Session>,
}

/// `db_a` with alice (in group `ga`) and carol (who holds VIEW on `db_a`), `db_b` with bob (in
/// group `gb`), settings and grants on both, and a session for each.
async fn world() -> World {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let catalog = open(&store).await;
    catalog.bootstrap("Admin-pass-1").await.unwrap();
    let admin = admin_session(&catalog);
    let setup = [
        "CREATE DATABASE db_a",
        "CREATE DATABASE db_b",
        "CREATE USER alice@db_a PASSWORD = 'Alice-pass-1', EMAIL = 'alice@a.example'",
        "CREATE USER carol@db_a PASSWORD = 'Carol-pass-1'",
        "CREATE USER bob@db_b PASSWORD = 'Bobby-pass-1', EMAIL = 'bob@b.example'",
        "CREATE GROUP ga@db_a",
        "ALTER GROUP ga@db_a ADD USER alice",
        "CREATE GROUP gb@db_b",
        "ALTER GROUP gb@db_b ADD USER bob",
        "GRANT USE ON DATABASE db_a TO GROUP ga@db_a",
        "GRANT USE ON DATABASE db_b TO GROUP gb@db_b",
        "GRANT VIEW ON DATABASE db_a TO USER carol@db_a",
        "GRANT ROLE database_administrator@db_b TO USER bob@db_b",
        "ALTER DATABASE db_b SET password_minimum_length = 12",
        "ALTER GROUP gb@db_b SET password_no_repeat_count = 3",
        "ALTER GROUP ga@db_a SET password_no_repeat_count = 2",
    ];
    for sql in setup {
        catalog.execute(&admin, sql, &[]).await.unwrap();
    }
    let state = catalog.state();
    let login = |name: &str, db: &str| {
        let d = state.database(db).unwrap().id;
        let u = state.user(d, name).unwrap().id;
        catalog
            .sessions
            .insert(session_of(u, &format!("{name}@{db}"), db, d))
    };
    let admin = login("admin", "system");
    let alice = login("alice", "db_a");
    let bob = login("bob", "db_b");
    let carol = login("carol", "db_a");
    World {
        catalog,
        admin,
        alice,
        bob,
        carol,
    }
}

const SYS_TABLES: &[&str] = &[
    "databases",
    "users",
    "groups",
    "group_members",
    "roles",
    "role_members",
    "privileges",
    "password_settings",
    "sessions",
    "oidc_integrations",
    "connectivity_pools",
];

/// Every row of a table as `a|b|c` text.
async fn rows(catalog: &Catalog, session: &Session, sql: &str) -> Vec<String> {
    let r = catalog.query(session, sql, &[]).await.unwrap();
    r.rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.to_text().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

#[tokio::test]
async fn a_user_of_one_database_sees_no_row_of_another() {
    let w = world().await;
    let c = &w.catalog;
    let b_id = c.state().database("db_b").unwrap().id.to_string();
    for table in SYS_TABLES {
        for row in rows(c, &w.alice, &format!("SELECT * FROM sys.{table}")).await {
            assert!(
                !row.contains("db_b") && !row.contains("bob") && !row.contains("gb"),
                "alice sees {row} in sys.{table}"
            );
            assert!(
                !row.split('|').any(|cell| cell == b_id),
                "sys.{table}: {row}"
            );
        }
    }
    let a = |sql: &'static str| {
        let (c, s) = (&w.catalog, w.alice.clone());
        async move { rows(c, &s, sql).await }
    };
    // Her own row, her database, her group and membership, her session, her group's setting.
    assert_eq!(
        a("SELECT fqun, email FROM sys.users").await,
        ["alice@db_a|alice@a.example"]
    );
    assert_eq!(a("SELECT name FROM sys.databases").await, ["db_a"]);
    assert_eq!(a("SELECT fqgn FROM sys.groups").await, ["ga@db_a"]);
    assert_eq!(
        a("SELECT group_name, user_name FROM sys.group_members").await,
        ["ga|alice@db_a"]
    );
    assert_eq!(a("SELECT user FROM sys.sessions").await, ["alice@db_a"]);
    assert_eq!(
        a("SELECT scope, scope_name, name FROM sys.password_settings").await,
        ["GROUP|ga@db_a|password_no_repeat_count"]
    );
    assert_eq!(
        a("SELECT name, database_name FROM sys.roles").await,
        ["public_role|db_a"]
    );
    assert!(a("SELECT * FROM sys.privileges").await.is_empty());
    // Hidden rows never reach the caller's expressions: an error raised on one would leak it.
    assert_eq!(
        a(
            "SELECT count(*) FROM sys.users u, sys.sessions s WHERE CASE WHEN u.name = 'bob' \
           OR s.user = 'bob@db_b' THEN abs(-9223372036854775807 - 1) ELSE 1 END"
        )
        .await,
        ["1"]
    );
}

#[tokio::test]
async fn view_on_a_database_shows_its_rows_and_the_system_shows_everything() {
    let w = world().await;
    let c = &w.catalog;
    // carol holds VIEW on db_a: its users, groups, members, sessions and grants; not db_b's.
    assert_eq!(
        rows(c, &w.carol, "SELECT fqun FROM sys.users ORDER BY fqun").await,
        ["alice@db_a", "carol@db_a"]
    );
    assert_eq!(
        rows(c, &w.carol, "SELECT user FROM sys.sessions ORDER BY user").await,
        ["alice@db_a", "carol@db_a"]
    );
    let grants = rows(
        c,
        &w.carol,
        "SELECT privilege, object_name, grantee FROM sys.privileges",
    )
    .await;
    assert!(
        grants.contains(&"USE|db_a|ga@db_a".to_owned()),
        "{grants:?}"
    );
    assert!(grants.iter().all(|g| !g.contains("db_b")), "{grants:?}");
    assert_eq!(
        rows(
            c,
            &w.carol,
            "SELECT count(*) FROM sys.roles WHERE database_name = 'db_a'"
        )
        .await,
        ["3"]
    );
    // bob administers db_b (ALL through database_administrator): db_b only.
    assert_eq!(
        rows(c, &w.bob, "SELECT fqun FROM sys.users").await,
        ["bob@db_b"]
    );
    // admin@system (ALL on the system) sees every row of every table.
    let all = |t: &str| format!("SELECT count(*) FROM sys.{t}");
    for (table, n) in [
        ("users", "4"),
        ("databases", "3"),
        ("sessions", "5"), // the four users' and the administrator's own
        ("groups", "2"),
    ] {
        assert_eq!(rows(c, &w.admin, &all(table)).await, [n], "{table}");
    }
    assert_eq!(
        rows(c, &w.admin, "SELECT count(*) FROM sys.password_settings").await,
        ["3"]
    );
}

#[tokio::test]
async fn the_unfiltered_tables_cannot_be_read_around_their_views() {
    let w = world().await;
    for (sql, state) in [
        ("SELECT * FROM sys.users_all", "42501"),
        ("SELECT count(*) FROM sys.sessions_all", "42501"),
        (
            "SELECT * FROM (SELECT * FROM sys.users_all) AS users",
            "42501",
        ),
        (
            "WITH users AS (SELECT * FROM sys.users_all) SELECT * FROM users",
            "42939",
        ),
        (
            "WITH oidc_integrations AS (SELECT * FROM sys.oidc_integrations_all) \
             SELECT * FROM oidc_integrations",
            "42939",
        ),
        ("SELECT * FROM sqlite_master", "42501"),
    ] {
        let err = w.catalog.query(&w.alice, sql, &[]).await.unwrap_err();
        assert_eq!(err.sqlstate, state, "{sql}: {err:?}");
    }
}

/// The per-query visibility agrees with `holds(VIEW)` on every object, plus what a caller
/// always sees (itself, its groups and roles).
#[tokio::test]
async fn visibility_agrees_with_the_privilege_rules() {
    let w = world().await;
    let state = w.catalog.state();
    let owners = Arc::new(Owners::of(&state));
    let view = Privilege::new(Action::View);
    for session in [&w.admin, &w.alice, &w.bob, &w.carol] {
        let principals = session_principals(&state, session);
        let v = Visibility::of(&state, session, &principals, owners.clone());
        for d in &state.snap.databases {
            let want = holds(&state, &principals, view, ObjectRef::Database(d.id));
            assert_eq!(v.database(d.id), want, "{} on {}", session.user, d.name);
        }
        for u in &state.snap.users {
            let want =
                holds(&state, &principals, view, ObjectRef::User(u.id)) || u.id == session.user_id;
            assert_eq!(v.user(u.id), want, "{} on {}", session.user, u.name);
        }
        for g in &state.snap.groups {
            let want = holds(&state, &principals, view, ObjectRef::Group(g.id))
                || principals.contains(&PrincipalRef::Group(g.id));
            assert_eq!(v.group(g.id), want, "{} on {}", session.user, g.name);
        }
    }
}
