//! One meaning of a catalog change: the live model (`CatalogState::apply`) and each store
//! (SQLite, and PostgreSQL in a cluster the test makes: `apply`, then `load`) must end in the
//! same catalog after every batch of a script that uses every `Change` variant, cascades
//! included; and so must a second model that follows PostgreSQL's change log (what another
//! node does). A new variant fails to compile here until the script uses it (`variant` has no
//! wildcard). The query copy's projection is checked against the model in
//! `src/query/copy/tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../store/tests/common/pg_cluster.rs"]
mod pg_cluster;

#[path = "common/changes.rs"]
mod changes;
use changes::*;

use portcullis_catalog::model::CatalogState;
use portcullis_store::*;

fn variant(c: &Change) -> &'static str {
    match c {
        Change::PutDatabase(_) => "PutDatabase",
        Change::DeleteDatabase(_) => "DeleteDatabase",
        Change::PutUser(_) => "PutUser",
        Change::DeleteUser(_) => "DeleteUser",
        Change::PutGroup(_) => "PutGroup",
        Change::DeleteGroup(_) => "DeleteGroup",
        Change::PutRole(_) => "PutRole",
        Change::AddGrant(_) => "AddGrant",
        Change::RemoveGrant { .. } => "RemoveGrant",
        Change::AddGroupMember(_) => "AddGroupMember",
        Change::RemoveGroupMember(_) => "RemoveGroupMember",
        Change::AddRoleMember(_) => "AddRoleMember",
        Change::RemoveRoleMember(_) => "RemoveRoleMember",
        Change::PutSetting(_) => "PutSetting",
        Change::RemoveSetting { .. } => "RemoveSetting",
        Change::AddPasswordHistory(_) => "AddPasswordHistory",
        Change::TrimPasswordHistory { .. } => "TrimPasswordHistory",
        Change::PutSsoIntegration(_) => "PutSsoIntegration",
        Change::DeleteSsoIntegration(_) => "DeleteSsoIntegration",
        Change::AssignSso(_) => "AssignSso",
        Change::UnassignSso(_) => "UnassignSso",
        Change::PutConnectivityPool(_) => "PutConnectivityPool",
        Change::DeleteConnectivityPool(_) => "DeleteConnectivityPool",
        Change::PutUpstream(_) => "PutUpstream",
        Change::RemoveUpstream(_) => "RemoveUpstream",
    }
}
const VARIANTS: usize = 25;

fn script() -> Vec<Vec<Change>> {
    use ObjectRef as O;
    use PrincipalRef as P;
    vec![
        vec![
            db(1, "system"),
            db(2, "sales"),
            db(3, "hr"),
            user(10, 2, "alice"),
            user(11, 2, "bob"),
            user(12, 3, "carol"),
            group(20, 2, "analysts"),
            group(21, 3, "staff"),
            role(30, 2, "database_administrator"),
            role(31, 3, "database_administrator"),
        ],
        vec![
            Change::AddGroupMember(GroupMemberRecord {
                group_id: 20,
                user_id: 10,
            }),
            Change::AddGroupMember(GroupMemberRecord {
                group_id: 20,
                user_id: 11,
            }),
            Change::AddGroupMember(GroupMemberRecord {
                group_id: 21,
                user_id: 12,
            }),
            Change::AddRoleMember(RoleMemberRecord {
                role_id: 30,
                member: P::User(10),
            }),
            Change::AddRoleMember(RoleMemberRecord {
                role_id: 30,
                member: P::Group(20),
            }),
            Change::AddRoleMember(RoleMemberRecord {
                role_id: 31,
                member: P::User(12),
            }),
            Change::AddGrant(grant(P::Group(20), "USE", O::Database(2))),
            Change::AddGrant(grant(P::User(11), "VIEW", O::User(10))),
            Change::AddGrant(grant(P::Role(30), "ALL", O::Database(2))),
            Change::AddGrant(grant(P::User(12), "USE", O::Database(3))),
            Change::AddGrant(grant(P::User(10), "ALTER", O::Group(20))),
            Change::PutSetting(SettingRecord {
                scope: ScopeRef::Database(2),
                name: "password_minimum_length".into(),
                value: 10,
            }),
            Change::PutSetting(SettingRecord {
                scope: ScopeRef::Group(20),
                name: "session_idle_timeout_seconds".into(),
                value: 60,
            }),
            Change::PutSetting(SettingRecord {
                scope: ScopeRef::System,
                name: "password_lifetime_days".into(),
                value: 90,
            }),
            history(10, 1),
            history(10, 2),
            history(10, 3),
            history(11, 1),
        ],
        vec![
            integration(40, 2, "sales_sso"),
            integration(41, 3, "hr_sso"),
            Change::PutConnectivityPool(ConnectivityPoolRecord {
                id: 50,
                name: "edge".into(),
                listen: "127.0.0.1:6000".into(),
                advertised: None,
                created_at: 6,
            }),
            Change::AssignSso(SsoAssignmentRecord {
                target: AssignmentTarget::Database(2),
                integration_id: 40,
            }),
            Change::AssignSso(SsoAssignmentRecord {
                target: AssignmentTarget::ConnectivityPool(50),
                integration_id: 41,
            }),
            Change::PutUpstream(UpstreamRecord {
                database_id: 2,
                url: "postgresql://a@h:5432/sales?sslmode=verify-full".into(),
                sealed_password: vec![9, 9],
                updated_at: 7,
            }),
            Change::PutUpstream(UpstreamRecord {
                database_id: 3,
                url: "postgresql://a@h:5432/hr?sslmode=verify-full".into(),
                sealed_password: vec![8],
                updated_at: 7,
            }),
        ],
        // Replacing in place, and removing one of each.
        vec![
            user(10, 2, "alice2"),
            Change::PutSetting(SettingRecord {
                scope: ScopeRef::Database(2),
                name: "password_minimum_length".into(),
                value: 12,
            }),
            Change::AssignSso(SsoAssignmentRecord {
                target: AssignmentTarget::Database(2),
                integration_id: 40,
            }),
            Change::PutUpstream(UpstreamRecord {
                database_id: 2,
                url: "postgresql://b@h:5432/sales?sslmode=verify-full".into(),
                sealed_password: vec![7],
                updated_at: 8,
            }),
            Change::RemoveGrant {
                grantee: P::User(11),
                privilege: "VIEW".into(),
                object: O::User(10),
            },
            Change::RemoveGroupMember(GroupMemberRecord {
                group_id: 20,
                user_id: 11,
            }),
            Change::RemoveRoleMember(RoleMemberRecord {
                role_id: 30,
                member: P::Group(20),
            }),
            Change::RemoveSetting {
                scope: ScopeRef::System,
                name: "password_lifetime_days".into(),
            },
            Change::TrimPasswordHistory {
                user_id: 10,
                keep: 2,
            },
            Change::UnassignSso(AssignmentTarget::ConnectivityPool(50)),
        ],
        // Cascades.
        vec![Change::DeleteUser(11)],
        vec![Change::DeleteGroup(20)],
        vec![Change::DeleteSsoIntegration(40), Change::RemoveUpstream(3)],
        vec![Change::DeleteConnectivityPool(50)],
        vec![Change::DeleteDatabase(2)],
        vec![Change::DeleteDatabase(3)],
    ]
}

/// The snapshot with every list in one order (the store loads by key, the model keeps
/// insertion order).
fn normal(mut s: Snapshot) -> Snapshot {
    fn sort<T: std::fmt::Debug>(v: &mut [T]) {
        v.sort_by_key(|x| format!("{x:?}"));
    }
    sort(&mut s.databases);
    sort(&mut s.users);
    sort(&mut s.groups);
    sort(&mut s.roles);
    sort(&mut s.grants);
    sort(&mut s.group_members);
    sort(&mut s.role_members);
    sort(&mut s.settings);
    sort(&mut s.password_history);
    sort(&mut s.sso_integrations);
    sort(&mut s.sso_assignments);
    sort(&mut s.connectivity_pools);
    sort(&mut s.upstreams);
    s
}

#[tokio::test]
async fn the_model_and_the_store_agree_on_every_change() {
    let used: std::collections::HashSet<&str> = script().iter().flatten().map(variant).collect();
    assert_eq!(
        used.len(),
        VARIANTS,
        "the script must use every Change variant: {used:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("catalog.db")).unwrap();
    let cluster = pg_cluster::Cluster::start();
    let postgres = PgStore::open(&cluster.database("catalog"), Some(pg_cluster::PASSWORD))
        .await
        .unwrap();
    let stores: [(&str, &dyn Store); 2] = [("sqlite", &sqlite), ("postgres", &postgres)];
    let mut model = CatalogState::new(sqlite.load().await.unwrap());
    for (i, batch) in script().into_iter().enumerate() {
        model.apply(&batch);
        let live = normal(model.snap.clone());
        for (name, store) in stores {
            store.apply(&batch).await.unwrap();
            let stored = normal(store.load().await.unwrap());
            assert_eq!(live, stored, "{name}, batch {i}: {batch:?}");
        }
    }
    // Everything that hung off the deleted databases is gone on both sides.
    let end = normal(model.snap.clone());
    assert_eq!(end.databases.len(), 1);
    assert!(end.users.is_empty() && end.groups.is_empty() && end.upstreams.is_empty());
    assert!(end.sso_integrations.is_empty() && end.sso_assignments.is_empty());
}

/// Random scripts (valid by construction, in batches of one to four changes) leave the model,
/// SQLite and PostgreSQL with the same catalog after every batch. Each case gets empty stores.
#[test]
fn random_scripts_agree_in_the_model_and_both_stores() {
    use proptest::prelude::*;
    let cluster = pg_cluster::Cluster::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let case = std::sync::atomic::AtomicUsize::new(0);
    let ops = proptest::collection::vec(
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..=4).prop_map(|(k, a, b, n)| (Op(k, a, b), n)),
        20..120,
    );
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::test_runner::TestRunner::new(config)
        .run(&ops, |ops| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let sqlite = SqliteStore::open(&dir.path().join("catalog.db")).unwrap();
                let url = cluster.database(&format!("case{n}"));
                let postgres = PgStore::open(&url, Some(pg_cluster::PASSWORD))
                    .await
                    .unwrap();
                let mut model = CatalogState::new(sqlite.load().await.unwrap());
                // A small catalog to start from, so the random steps have things to refer to.
                // A follower: another node's model, kept up by PostgreSQL's change log only.
                let (mut followed_at, none) = postgres.changes_since(0).await.unwrap().unwrap();
                assert!(none.is_empty());
                let mut follower = model.clone();
                let base = base();
                model.apply(&base);
                for store in [&sqlite as &dyn Store, &postgres] {
                    store.apply(&base).await.unwrap();
                }
                let mut next = 100;
                let mut batch = Vec::new();
                for (i, (op, size)) in ops.iter().enumerate() {
                    // Each change is made against the catalog as it would stand with the batch
                    // so far applied (a batch is applied as a whole).
                    let mut view = model.clone();
                    view.apply(&batch);
                    if let Some(change) = to_change(op, &view.snap, &mut next) {
                        batch.push(change);
                    }
                    if batch.len() >= usize::from(*size) || i + 1 == ops.len() {
                        model.apply(&batch);
                        let live = normal(model.snap.clone());
                        for (name, store) in
                            [("sqlite", &sqlite as &dyn Store), ("postgres", &postgres)]
                        {
                            store
                                .apply(&batch)
                                .await
                                .unwrap_or_else(|e| panic!("{name}: {e}: {batch:?}"));
                            let stored = normal(store.load().await.unwrap());
                            prop_assert_eq!(&live, &stored, "{} after {:?}", name, batch);
                        }
                        let (at, batches) = postgres
                            .changes_since(followed_at)
                            .await
                            .unwrap()
                            .expect("the log holds every version since the follower's");
                        for changes in &batches {
                            follower.apply(changes);
                        }
                        followed_at = at;
                        prop_assert_eq!(
                            &live,
                            &normal(follower.snap.clone()),
                            "the change log's follower after {:?}",
                            batch
                        );
                        batch.clear();
                    }
                }
                store_close(&postgres).await;
                Ok(())
            })
        })
        .unwrap();
}

async fn store_close(store: &PgStore) {
    store.close().await;
}
