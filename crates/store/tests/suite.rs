//! The store contract, written once and run against every backend: SQLite in a temp file, and
//! PostgreSQL in a cluster the test makes (Debian's postgresql-15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/pg_cluster.rs"]
mod pg_cluster;

use portcullis_store::*;

/// Each backend, empty, with what keeps it alive (its directory, its cluster).
async fn backends() -> Vec<(String, Box<dyn Store>, Box<dyn std::any::Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("catalog.db")).unwrap();
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database("catalog");
    let pg = PgStore::open(&url, Some(pg_cluster::PASSWORD))
        .await
        .unwrap();
    vec![
        ("sqlite".into(), Box::new(sqlite), Box::new(dir)),
        ("postgres".into(), Box::new(pg), Box::new(cluster)),
    ]
}

fn db(id: i64, name: &str) -> DatabaseRecord {
    DatabaseRecord {
        id,
        name: name.into(),
        created_at: 1,
    }
}

fn user(id: i64, database_id: i64, name: &str) -> UserRecord {
    UserRecord {
        id,
        database_id,
        name: name.into(),
        first_name: Some("A".into()),
        last_name: None,
        email: Some("a@example.com".into()),
        verifier: "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5".into(),
        password_set_at: 5,
        state: "ACTIVE".into(),
        failed_attempts: 0,
        created_at: 5,
    }
}

fn base() -> Vec<Change> {
    vec![
        Change::PutDatabase(db(1, "system")),
        Change::PutDatabase(db(2, "sales")),
        Change::PutUser(user(10, 2, "alice")),
        Change::PutGroup(GroupRecord {
            id: 20,
            database_id: 2,
            name: "analysts".into(),
            created_at: 1,
        }),
        Change::PutRole(RoleRecord {
            id: 30,
            database_id: 2,
            name: "database_administrator".into(),
            description: "x".into(),
        }),
        Change::AddGroupMember(GroupMemberRecord {
            group_id: 20,
            user_id: 10,
        }),
        Change::AddRoleMember(RoleMemberRecord {
            role_id: 30,
            member: PrincipalRef::User(10),
        }),
        Change::AddGrant(GrantRecord {
            grantee: PrincipalRef::Group(20),
            privilege: "USE".into(),
            object: ObjectRef::Database(2),
            grantor: "admin@system".into(),
            granted_at: 7,
        }),
        Change::PutSetting(SettingRecord {
            scope: ScopeRef::Database(2),
            name: "password_minimum_length".into(),
            value: 10,
        }),
        Change::AddPasswordHistory(PasswordHistoryRecord {
            user_id: 10,
            verifier: "v1".into(),
            set_at: 1,
        }),
    ]
}

#[tokio::test]
async fn apply_then_load_round_trips() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.databases.len(), 2, "{name}");
        assert_eq!(snap.users, vec![user(10, 2, "alice")], "{name}");
        assert_eq!(snap.groups.len(), 1, "{name}");
        assert_eq!(snap.grants.len(), 1, "{name}");
        assert_eq!(snap.group_members.len(), 1, "{name}");
        assert_eq!(snap.role_members.len(), 1, "{name}");
        assert_eq!(snap.settings[0].value, 10, "{name}");
        assert_eq!(snap.password_history.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn a_failed_batch_changes_nothing() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        let before = store.load().await.unwrap();
        // The second database reuses an existing name: the unique constraint fails the batch,
        // and the user added before it in the same batch must not survive.
        let bad = vec![
            Change::PutUser(user(11, 2, "bob")),
            Change::PutDatabase(db(3, "sales")),
        ];
        assert!(store.apply(&bad).await.is_err(), "{name}");
        assert_eq!(store.load().await.unwrap(), before, "{name}");
    }
}

#[tokio::test]
async fn deleting_a_database_removes_everything_in_it() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        store.apply(&[Change::DeleteDatabase(2)]).await.unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.databases, vec![db(1, "system")], "{name}");
        assert!(
            snap.users.is_empty() && snap.groups.is_empty() && snap.roles.is_empty(),
            "{name}"
        );
        assert!(
            snap.grants.is_empty() && snap.group_members.is_empty(),
            "{name}"
        );
        assert!(
            snap.role_members.is_empty() && snap.settings.is_empty(),
            "{name}"
        );
        assert!(snap.password_history.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn deleting_a_user_removes_its_grants_and_memberships() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        store
            .apply(&[Change::AddGrant(GrantRecord {
                grantee: PrincipalRef::User(10),
                privilege: "ALTER".into(),
                object: ObjectRef::Group(20),
                grantor: "admin@system".into(),
                granted_at: 8,
            })])
            .await
            .unwrap();
        store.apply(&[Change::DeleteUser(10)]).await.unwrap();
        let snap = store.load().await.unwrap();
        assert!(snap.users.is_empty(), "{name}");
        assert!(
            snap.group_members.is_empty() && snap.role_members.is_empty(),
            "{name}"
        );
        assert_eq!(snap.grants.len(), 1, "{name}: only the group's grant stays");
    }
}

#[tokio::test]
async fn history_trim_keeps_the_newest() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        let more: Vec<Change> = (2..=5)
            .map(|i| {
                Change::AddPasswordHistory(PasswordHistoryRecord {
                    user_id: 10,
                    verifier: format!("v{i}"),
                    set_at: i,
                })
            })
            .collect();
        store.apply(&more).await.unwrap();
        store
            .apply(&[Change::TrimPasswordHistory {
                user_id: 10,
                keep: 2,
            }])
            .await
            .unwrap();
        let kept: Vec<String> = store
            .load()
            .await
            .unwrap()
            .password_history
            .into_iter()
            .map(|h| h.verifier)
            .collect();
        assert_eq!(kept, vec!["v4", "v5"], "{name}");
    }
}

#[tokio::test]
async fn ids_are_never_reused_after_a_delete() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        let high = store.load().await.unwrap().id_high_water;
        assert!(high >= 10, "{name}: {high}");
        store.apply(&[Change::DeleteUser(10)]).await.unwrap();
        assert_eq!(store.load().await.unwrap().id_high_water, high, "{name}");
        // A lower id put later does not lower the mark.
        store
            .apply(&[Change::PutUser(user(3, 2, "bob"))])
            .await
            .unwrap();
        assert_eq!(store.load().await.unwrap().id_high_water, high, "{name}");
    }
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    SqliteStore::open(&path)
        .unwrap()
        .apply(&base())
        .await
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.apply(&[Change::DeleteUser(10)]).await.unwrap();
    let snap = SqliteStore::open(&path).unwrap().load().await.unwrap();
    assert!(snap.users.is_empty());
    assert!(snap.id_high_water >= 10, "{}", snap.id_high_water);
}

fn integration(id: i64, database_id: i64, name: &str) -> SsoIntegrationRecord {
    SsoIntegrationRecord {
        id,
        database_id,
        name: name.into(),
        protocol: "oidc".into(),
        properties: r#"{"issuer":"https://idp.example"}"#.into(),
        sealed_secret: Some(vec![1, 2, 3]),
        created_at: 1,
        updated_at: 1,
    }
}

#[tokio::test]
async fn integrations_assignments_and_pools_round_trip_and_cascade() {
    for (name, store, _dir) in backends().await {
        store.apply(&base()).await.unwrap();
        let pool = ConnectivityPoolRecord {
            id: 50,
            name: "bi".into(),
            listen: "127.0.0.1:4051".into(),
            advertised: Some("bi.example.com".into()),
            created_at: 1,
        };
        store
            .apply(&[
                Change::PutSsoIntegration(integration(40, 2, "sales_sso")),
                Change::PutSsoIntegration(integration(41, 1, "corp")),
                Change::PutConnectivityPool(pool.clone()),
                Change::AssignSso(SsoAssignmentRecord {
                    target: AssignmentTarget::Database(2),
                    integration_id: 40,
                }),
                Change::AssignSso(SsoAssignmentRecord {
                    target: AssignmentTarget::ConnectivityPool(50),
                    integration_id: 40,
                }),
            ])
            .await
            .unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(
            snap.sso_integrations[0],
            integration(40, 2, "sales_sso"),
            "{name}"
        );
        assert_eq!(snap.connectivity_pools, vec![pool], "{name}");
        assert_eq!(snap.sso_assignments.len(), 2, "{name}");
        // Reassigning replaces; the name is unique within its database only.
        store
            .apply(&[Change::AssignSso(SsoAssignmentRecord {
                target: AssignmentTarget::Database(2),
                integration_id: 41,
            })])
            .await
            .unwrap();
        assert!(store
            .apply(&[Change::PutSsoIntegration(integration(42, 2, "sales_sso"))])
            .await
            .is_err());
        store
            .apply(&[Change::PutSsoIntegration(integration(42, 2, "corp"))])
            .await
            .unwrap();
        store
            .apply(&[Change::DeleteSsoIntegration(42)])
            .await
            .unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.sso_assignments.len(), 2, "{name}");
        // Dropping the database drops its integration and every assignment of it.
        store.apply(&[Change::DeleteDatabase(2)]).await.unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.sso_integrations.len(), 1, "{name}");
        assert!(
            snap.sso_assignments.is_empty(),
            "{name}: {:?}",
            snap.sso_assignments
        );
        store
            .apply(&[
                Change::DeleteConnectivityPool(50),
                Change::DeleteSsoIntegration(41),
            ])
            .await
            .unwrap();
        let snap = store.load().await.unwrap();
        assert!(snap.connectivity_pools.is_empty() && snap.sso_integrations.is_empty());
    }
}

/// The PostgreSQL store reconnects by itself after its server restarts (a change while it is
/// down fails with a clear error and changes nothing), and refuses a schema newer than it knows.
#[tokio::test]
async fn postgres_reconnects_and_refuses_a_newer_schema() {
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database("catalog");
    let store = PgStore::open(&url, Some(pg_cluster::PASSWORD))
        .await
        .unwrap();
    store.apply(&base()).await.unwrap();
    let before = store.load().await.unwrap();
    cluster.stop();
    let err = store
        .apply(&[Change::PutDatabase(db(90, "later"))])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("catalog store"), "{text}");
    assert!(!text.contains(pg_cluster::PASSWORD), "{text}");
    cluster.start_again();
    assert_eq!(
        store.load().await.unwrap(),
        before,
        "nothing changed while it was down"
    );
    store
        .apply(&[Change::PutDatabase(db(90, "later"))])
        .await
        .unwrap();
    assert_eq!(
        store.load().await.unwrap().databases.len(),
        before.databases.len() + 1
    );
    // Another node opens it too, with a number of its own, and each sees the other's
    // commits; a commit based on a version another node has moved past changes nothing.
    let other = PgStore::open(&url, Some(pg_cluster::PASSWORD))
        .await
        .unwrap();
    assert_ne!(other.node(), store.node());
    let (_, v0) = store.load_versioned().await.unwrap();
    let mut announced = other.watch().await.expect("LISTEN");
    let v1 = store
        .apply_at(&[Change::PutDatabase(db(91, "first"))], v0)
        .await
        .unwrap();
    assert_eq!(v1, v0 + 1);
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), announced.recv())
        .await
        .unwrap();
    assert_eq!(heard, Some(v1), "the commit is announced to the other node");
    let err = other
        .apply_at(&[Change::PutDatabase(db(92, "stale"))], v0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let (snap, v) = other.load_versioned().await.unwrap();
    assert_eq!(v, v1);
    assert!(snap.databases.iter().any(|d| d.name == "first"));
    assert!(!snap.databases.iter().any(|d| d.name == "stale"));
    other.close().await;
    store.close().await;
    // A store migrated by a newer build: refused with a sentence saying so.
    let out = std::process::Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname=catalog sslmode=disable",
            cluster.port
        ))
        .args([
            "-X",
            "-q",
            "-c",
            "UPDATE portcullis_schema SET version = 99",
        ])
        .env("PGPASSWORD", pg_cluster::PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = PgStore::open(&url, Some(pg_cluster::PASSWORD))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("schema version 99 is newer"), "{err}");
    // Plain TCP only to loopback.
    let err = PgStore::open(
        "postgresql://u@db.example.com/catalog?sslmode=disable",
        None,
    )
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("only for a loopback host"), "{err}");
}

/// The change log: a node behind gets each missed version's changes in order; a log that
/// cannot cover the gap (an entry unreadable, or missing) says so (`None`, so the node loads
/// the catalog), and changes nothing.
#[tokio::test]
async fn postgres_change_log_covers_a_gap_or_says_it_cannot() {
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database("catalog");
    let store = PgStore::open(&url, Some(pg_cluster::PASSWORD))
        .await
        .unwrap();
    store.apply(&base()).await.unwrap();
    let v0 = store.version().await.unwrap();
    let a = vec![Change::PutDatabase(db(91, "a"))];
    let b = vec![Change::PutDatabase(db(92, "b")), Change::DeleteDatabase(91)];
    store.apply(&a).await.unwrap();
    store.apply(&b).await.unwrap();
    let v2 = store.version().await.unwrap();
    assert_eq!(v2, v0 + 2);
    assert_eq!(
        store.changes_since(v0).await.unwrap(),
        Some((v2, vec![a, b.clone()]))
    );
    assert_eq!(store.changes_since(v2).await.unwrap(), Some((v2, vec![])));
    let sql = |statement: &str| {
        let out = std::process::Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname=catalog sslmode=disable",
                cluster.port
            ))
            .args(["-X", "-q", "-c", statement])
            .env("PGPASSWORD", pg_cluster::PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let before = store.load().await.unwrap();
    // An entry written by a build that knows other changes: unreadable here.
    sql(&format!(
        "UPDATE portcullis_changes SET changes = '[{{\"NotAChange\": 1}}]' WHERE version = {}",
        v0 + 1
    ));
    assert_eq!(store.changes_since(v0).await.unwrap(), None);
    assert_eq!(
        store.changes_since(v0 + 1).await.unwrap(),
        Some((v2, vec![b]))
    );
    // A gap (entries pruned): the log cannot tell.
    sql(&format!(
        "DELETE FROM portcullis_changes WHERE version = {v2}"
    ));
    assert_eq!(store.changes_since(v0 + 1).await.unwrap(), None);
    assert_eq!(
        store.load().await.unwrap(),
        before,
        "the catalog is untouched"
    );
    store.close().await;
}
