//! The copy follows the model: after any sequence of valid changes, each table holds exactly
//! the model's projection, and a change to one row rewrites one row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/common/changes.rs"]
mod changes;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use portcullis_store::{Change, Snapshot};

use super::super::project::{self, CATALOG_TABLES};
use super::{Cell, Row, Written};
use crate::model::CatalogState;
use crate::query::QueryEngine;

/// Every catalog table's rows as the engine's SQLite holds them, each table sorted.
fn held(engine: &QueryEngine) -> Vec<Vec<Row>> {
    engine.loading.store(true, Ordering::Release);
    let tables = CATALOG_TABLES
        .iter()
        .map(|t| {
            let mut st = engine
                .conn
                .prepare(&format!("SELECT * FROM sys.{t}_all"))
                .unwrap();
            let width = st.column_count();
            let mut rows: Vec<Row> = st
                .query_map([], |r| {
                    (0..width)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                rusqlite::types::ValueRef::Null => Cell::Null,
                                rusqlite::types::ValueRef::Integer(n) => Cell::Int(n),
                                v => Cell::Text(v.as_str()?.to_owned()),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            rows
        })
        .collect();
    engine.loading.store(false, Ordering::Release);
    tables
}

fn projected(state: &CatalogState) -> Vec<Vec<Row>> {
    project::catalog(state)
        .into_iter()
        .map(|mut rows| {
            rows.sort();
            rows
        })
        .collect()
}

fn follow(engine: &mut QueryEngine, state: &CatalogState) -> Written {
    engine.loading.store(true, Ordering::Release);
    let written = engine
        .tables
        .sync_catalog(&engine.conn, &Arc::new(state.clone()))
        .unwrap();
    engine.loading.store(false, Ordering::Release);
    written
}

#[test]
fn random_changes_leave_the_copy_equal_to_the_models_projection() {
    use proptest::prelude::*;
    let ops = proptest::collection::vec(
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..=4)
            .prop_map(|(k, a, b, n)| (changes::Op(k, a, b), n)),
        20..150,
    );
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::test_runner::TestRunner::new(config)
        .run(&ops, |ops| {
            let mut model = CatalogState::new(Snapshot::default());
            model.apply(&changes::base());
            let mut engine = QueryEngine::new().unwrap();
            follow(&mut engine, &model);
            let mut next = 100;
            let mut batch: Vec<Change> = Vec::new();
            for (i, (op, size)) in ops.iter().enumerate() {
                let mut view = model.clone();
                view.apply(&batch);
                if let Some(change) = changes::to_change(op, &view.snap, &mut next) {
                    batch.push(change);
                }
                if batch.len() >= usize::from(*size) || i + 1 == ops.len() {
                    model.apply(&batch);
                    follow(&mut engine, &model);
                    prop_assert_eq!(held(&engine), projected(&model), "after {:?}", batch);
                    batch.clear();
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_change_to_one_user_rewrites_one_row() {
    let mut model = CatalogState::new(Snapshot::default());
    let mut base = vec![changes::db(1, "system"), changes::db(2, "sales")];
    base.extend((10..1010).map(|u| changes::user(u, 2, &format!("u{u}"))));
    model.apply(&base);
    let mut engine = QueryEngine::new().unwrap();
    let first = follow(&mut engine, &model);
    assert_eq!(first.inserted, 1002);
    // A wrong password: the user's failed_attempts goes up.
    let mut alice = model.snap.users[500].clone();
    alice.failed_attempts += 1;
    model.apply(&[Change::PutUser(alice)]);
    assert_eq!(
        follow(&mut engine, &model),
        Written {
            deleted: 1,
            inserted: 1
        }
    );
    // Renaming the database renames it in every user's row (fqun, database_name).
    model.apply(&[changes::db(2, "sales2")]);
    assert_eq!(
        follow(&mut engine, &model),
        Written {
            deleted: 1001,
            inserted: 1001
        }
    );
    // Nothing changed: nothing written.
    assert_eq!(follow(&mut engine, &model), Written::default());
    assert_eq!(held(&engine), projected(&model));
}

#[test]
fn a_table_holding_a_row_twice_keeps_the_count() {
    let engine = QueryEngine::new().unwrap();
    let mut table = super::TableCopy::new("roles");
    let row = |n: i64| -> Row {
        vec![
            Cell::Int(n),
            Cell::Text("r".into()),
            Cell::Int(1),
            Cell::Null,
            Cell::Text(String::new()),
        ]
    };
    engine.loading.store(true, Ordering::Release);
    let count = |engine: &QueryEngine| -> i64 {
        engine
            .conn
            .query_row("SELECT count(*) FROM sys.roles_all", [], |r| r.get(0))
            .unwrap()
    };
    table
        .sync(&engine.conn, vec![row(1), row(1), row(2)])
        .unwrap();
    assert_eq!(count(&engine), 3);
    let w = table
        .sync(&engine.conn, vec![row(1), row(2), row(2)])
        .unwrap();
    assert_eq!((w.deleted, w.inserted), (1, 1));
    assert_eq!(count(&engine), 3);
    table.sync(&engine.conn, vec![]).unwrap();
    assert_eq!(count(&engine), 0);
}

/// Not a check, a measurement (`cargo test --release -p portcullis-catalog --lib
/// copy_timing -- --ignored --nocapture`): bringing the copy of a 10,000-user catalog up to
/// date after one wrong password, and loading a fresh copy of it.
#[test]
#[ignore]
fn copy_timing() {
    let mut model = CatalogState::new(Snapshot::default());
    let mut base = vec![changes::db(1, "system"), changes::db(2, "sales")];
    base.extend((10..10010).map(|u| changes::user(u, 2, &format!("u{u}"))));
    model.apply(&base);
    let mut engine = QueryEngine::new().unwrap();
    follow(&mut engine, &model);
    for _ in 0..5 {
        let mut alice = model.snap.users[500].clone();
        alice.failed_attempts += 1;
        model.apply(&[Change::PutUser(alice)]);
        let t = std::time::Instant::now();
        let written = follow(&mut engine, &model);
        let incremental = t.elapsed();
        let t = std::time::Instant::now();
        follow(&mut QueryEngine::new().unwrap(), &model);
        eprintln!(
            "one wrong password: followed in {incremental:?} ({written:?}); a fresh copy: {:?}",
            t.elapsed()
        );
    }
}
