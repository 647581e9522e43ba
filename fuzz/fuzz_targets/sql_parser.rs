//! Fuzz target: the administration SQL parser. Any input gets statements or a clear error —
//! never a panic — and an error's position points inside the input (or just past its end).
//! Every statement parsed, written back with its `Display`, parses to itself (the round trip
//! sqlparser-rs checks too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_catalog::sql::parse_statements;

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    match parse_statements(sql) {
        Ok(statements) => {
            for s in &statements {
                let text = s.to_string();
                match parse_statements(&text) {
                    Ok(again) => assert_eq!(again, vec![s.clone()], "{text}"),
                    Err(e) => panic!("{text:?} does not parse back: {}", e.message),
                }
            }
            // Parsing is a function of the text.
            assert_eq!(parse_statements(sql).ok(), Some(statements));
        }
        Err(e) => {
            assert_eq!(e.sqlstate.len(), 5, "SQLSTATE {:?}", e.sqlstate);
            assert!(!e.message.is_empty());
            if let Some(p) = e.position {
                assert!(
                    (1..=sql.chars().count() + 1).contains(&p),
                    "position {p} outside {} characters",
                    sql.chars().count()
                );
            }
        }
    }
});
