//! Crash safety (issue 16, item 2): four clients change the catalog as fast as they can, the
//! server is killed with SIGKILL at a random moment, and started again on the same data
//! directory — twenty times. Every change a client saw acknowledged must be there after each
//! restart (and every acknowledged drop still gone); the store passes SQLite's integrity and
//! foreign-key checks and the catalog it holds breaks none of the model's invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{LivePsql, Server, ADMIN_PASSWORD};
use portcullis_store::{SqliteStore, Store};
use rand::Rng;

const ROUNDS: usize = 20;
const CLIENTS: usize = 4;

/// What the clients were told, over all rounds.
#[derive(Default)]
struct Told {
    users: BTreeSet<String>,
    dropped: BTreeSet<String>,
    groups: BTreeSet<String>,
    /// (group, user)
    members: BTreeSet<(String, String)>,
    /// Groups granted USE on the system database.
    granted: BTreeSet<String>,
    /// Users an unacknowledged statement was about (it may or may not have happened).
    uncertain: BTreeSet<String>,
    acknowledged: usize,
}

/// One catalog change a client makes.
enum Step {
    CreateUser(String),
    DropUser(String),
    CreateGroup(String),
    AddMember { group: String, user: String },
    GrantUse(String),
}

impl Step {
    fn sql(&self) -> String {
        match self {
            Self::CreateUser(u) => format!("CREATE USER {u} PASSWORD = 'Crash-pass-1-{u}'"),
            Self::DropUser(u) => format!("DROP USER {u}"),
            Self::CreateGroup(g) => format!("CREATE GROUP {g}"),
            Self::AddMember { group, user } => format!("ALTER GROUP {group} ADD USER {user}"),
            Self::GrantUse(g) => format!("GRANT USE ON DATABASE system TO GROUP {g}"),
        }
    }

    /// The client saw it acknowledged.
    fn acknowledged(&self, t: &mut Told) {
        match self {
            Self::CreateUser(u) => {
                t.users.insert(u.clone());
            }
            Self::DropUser(u) => {
                t.users.remove(u);
                t.dropped.insert(u.clone());
            }
            Self::CreateGroup(g) => {
                t.groups.insert(g.clone());
            }
            Self::AddMember { group, user } => {
                t.members.insert((group.clone(), user.clone()));
            }
            Self::GrantUse(g) => {
                t.granted.insert(g.clone());
            }
        }
        t.acknowledged += 1;
    }

    /// The server went away during it: it may or may not have happened.
    fn uncertain(&self, t: &mut Told) {
        if let Self::CreateUser(u) | Self::DropUser(u) = self {
            t.uncertain.insert(u.clone());
        }
    }
}

/// One client's burst: users created, every fourth step a group holding the previous user and
/// granted USE, and a user of two steps before dropped, until the server goes away.
fn burst(
    server: &Server,
    round: usize,
    client: usize,
    told: &Mutex<Told>,
    stop: &AtomicBool,
    connected: &std::sync::Barrier,
) {
    let mut psql = LivePsql::connect(server, "admin@system", "system", ADMIN_PASSWORD);
    // The kill comes only once every client is connected (a kill before psql connects tests
    // nothing and fails the connection).
    connected.wait();
    let user = |n: usize| format!("r{round}c{client}u{n}");
    for n in 0usize.. {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let steps = match n % 4 {
            3 => {
                let group = format!("r{round}c{client}g{n}");
                vec![
                    Step::CreateGroup(group.clone()),
                    Step::AddMember {
                        group: group.clone(),
                        user: user(n - 1),
                    },
                    Step::GrantUse(group),
                ]
            }
            2 => vec![Step::CreateUser(user(n)), Step::DropUser(user(n - 2))],
            _ => vec![Step::CreateUser(user(n))],
        };
        for step in steps {
            let sql = step.sql();
            let answer = psql.run(&sql);
            let mut t = told.lock().unwrap();
            if answer.is_empty() {
                step.acknowledged(&mut t);
                continue;
            }
            assert!(
                !answer.contains("ERROR"),
                "{sql}: refused, not cut off: {answer}"
            );
            step.uncertain(&mut t);
            return;
        }
    }
}

/// Every acknowledged fact holds on the running server.
fn check_told(server: &Server, told: &Told) {
    let out = server.admin(&[
        "SELECT 'user ' || name FROM sys.users WHERE database_name = 'system'",
        "SELECT 'group ' || name FROM sys.groups WHERE database_name = 'system'",
        "SELECT 'member ' || g.name || ' ' || u.name FROM sys.group_members m \
         JOIN sys.groups g ON g.id = m.group_id JOIN sys.users u ON u.id = m.user_id",
        "SELECT 'use ' || grantee FROM sys.privileges WHERE privilege = 'USE' \
         AND object_type = 'DATABASE' AND grantee_type = 'GROUP'",
    ]);
    let lines: BTreeSet<&str> = out.lines().collect();
    let sure = |name: &String| !told.uncertain.contains(name);
    for u in told.users.iter().filter(|u| sure(u)) {
        assert!(
            lines.contains(format!("user {u}").as_str()),
            "acknowledged user {u} lost"
        );
    }
    for u in told.dropped.iter().filter(|u| sure(u)) {
        assert!(
            !lines.contains(format!("user {u}").as_str()),
            "dropped user {u} is back"
        );
    }
    for g in &told.groups {
        assert!(
            lines.contains(format!("group {g}").as_str()),
            "acknowledged group {g} lost"
        );
    }
    for (g, u) in &told.members {
        assert!(
            lines.contains(format!("member {g} {u}").as_str()),
            "acknowledged membership of {u} in {g} lost"
        );
    }
    for g in &told.granted {
        let fq = format!("use {g}@system");
        let plain = format!("use {g}");
        assert!(
            lines.contains(fq.as_str()) || lines.contains(plain.as_str()),
            "acknowledged grant to {g} lost"
        );
    }
}

/// The store file after a crash: SQLite's checks, then the model's invariants.
fn check_store(data_dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&data_dir.join("catalog.db")).unwrap();
        let problems = store.integrity_problems().await.unwrap();
        assert!(problems.is_empty(), "store integrity: {problems:?}");
        let snap = store.load().await.unwrap();
        let broken = portcullis_catalog::invariants::violations(&snap);
        assert!(broken.is_empty(), "catalog invariants: {broken:?}");
    });
}

#[test]
fn acknowledged_changes_survive_kill_9_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let told = Arc::new(Mutex::new(Told::default()));
    let mut rng = rand::rng();
    let mut before = 0;
    for round in 0..ROUNDS {
        let server = Arc::new(Server::start_in(data_dir.clone()));
        check_told(&server, &told.lock().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(std::sync::Barrier::new(CLIENTS + 1));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (server, told, stop, connected) = (
                    server.clone(),
                    told.clone(),
                    stop.clone(),
                    connected.clone(),
                );
                std::thread::spawn(move || burst(&server, round, client, &told, &stop, &connected))
            })
            .collect();
        connected.wait();
        std::thread::sleep(Duration::from_millis(rng.random_range(150..700)));
        // kill -9, while the clients are mid-burst.
        server.kill_now();
        stop.store(true, Ordering::Release);
        for c in clients {
            c.join().unwrap();
        }
        drop(server);
        check_store(&data_dir);
        let after = told.lock().unwrap().acknowledged;
        eprintln!(
            "round {round}: {} changes acknowledged before the kill",
            after - before
        );
        before = after;
    }
    let server = Server::start_in(data_dir.clone());
    let t = told.lock().unwrap();
    check_told(&server, &t);
    assert!(
        t.acknowledged >= ROUNDS * CLIENTS,
        "the clients hardly ran: {}",
        t.acknowledged
    );
    drop(server.stop());
    check_store(&data_dir);
}
