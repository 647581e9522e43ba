//! Parser tests: every statement form, the reference's own examples, and syntax errors with
//! their positions.

use super::*;

fn one(sql: &str) -> Statement {
    let mut v = parse_statements(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    assert_eq!(v.len(), 1, "{sql}");
    v.remove(0)
}

fn q(name: &str, db: Option<&str>) -> QualifiedName {
    QualifiedName {
        name: name.into(),
        database: db.map(Into::into),
    }
}

#[test]
fn reference_examples_parse() {
    assert_eq!(
        one("CREATE USER \"jmack@test-database\" PASSWORD = 'pass1234', FIRST_NAME = 'Johnny', LAST_NAME = 'Mack'"),
        Statement::CreateUser {
            name: q("jmack", Some("test-database")),
            if_not_exists: false,
            attributes: vec![
                UserAttribute::Password("pass1234".into()),
                UserAttribute::FirstName("Johnny".into()),
                UserAttribute::LastName("Mack".into()),
            ],
        }
    );
    assert!(matches!(
        one("CREATE USER test_user PASSWORD='x';"),
        Statement::CreateUser { .. }
    ));
    assert_eq!(
        one("CREATE GROUP \"view_analyst\";"),
        Statement::CreateGroup {
            name: q("view_analyst", None),
            if_not_exists: false
        }
    );
    assert_eq!(
        one("ALTER GROUP \"view_analyst\" ADD USER test_user;"),
        Statement::AlterGroupMembers {
            group: q("view_analyst", None),
            add: true,
            users: vec![q("test_user", None)]
        }
    );
    assert_eq!(
        one("CREATE DATABASE IF NOT EXISTS example_database"),
        Statement::CreateDatabase {
            name: "example_database".into(),
            if_not_exists: true
        }
    );
    assert_eq!(
        one("DROP DATABASE IF EXISTS a, b"),
        Statement::DropDatabase {
            names: vec!["a".into(), "b".into()],
            if_exists: true
        }
    );
}

#[test]
fn unquoted_names_fold_and_fquns_split() {
    assert_eq!(
        one("drop user Alice@Example_Database, \"Bob@sales\""),
        Statement::DropUser {
            names: vec![
                q("alice", Some("example_database")),
                q("Bob", Some("sales"))
            ],
            if_exists: false
        }
    );
}

#[test]
fn grants() {
    assert_eq!(
        one("GRANT USE ON DATABASE example_database TO GROUP analysts"),
        Statement::Grant {
            privileges: vec![Privilege::new(Action::Use)],
            target: GrantTarget::Database("example_database".into()),
            grantee: Grantee::Group(q("analysts", None)),
        }
    );
    assert_eq!(
        one("grant create user, drop group, sysauth on database d to user bob@d"),
        Statement::Grant {
            privileges: vec![
                Privilege::on_kind(Action::Create, ObjectKind::User),
                Privilege::on_kind(Action::Drop, ObjectKind::Group),
                Privilege::new(Action::Sysauth),
            ],
            target: GrantTarget::Database("d".into()),
            grantee: Grantee::User(q("bob", Some("d"))),
        }
    );
    assert!(matches!(
        one("REVOKE ALL PRIVILEGES ON SYSTEM FROM USER x"),
        Statement::Revoke { .. }
    ));
    assert!(matches!(
        one("GRANT VIEW ON USER alice TO GROUP g"),
        Statement::Grant {
            target: GrantTarget::User(_),
            ..
        }
    ));
    assert_eq!(
        one("GRANT ROLE database_administrator@sales TO USER alice"),
        Statement::GrantRole {
            role: q("database_administrator", Some("sales")),
            grantee: Grantee::User(q("alice", None))
        }
    );
    assert!(matches!(
        one("REVOKE ROLE public_role FROM GROUP g"),
        Statement::RevokeRole { .. }
    ));
}

#[test]
fn password_settings_and_user_changes() {
    assert_eq!(
        one("ALTER SYSTEM SET password_minimum_length = 12"),
        Statement::SetPasswordSetting {
            scope: SettingScope::System,
            setting: PasswordSetting::MinimumLength,
            value: Some(12)
        }
    );
    assert_eq!(
        one("ALTER DATABASE d SET PASSWORD_LIFETIME_DAYS TO 90"),
        Statement::SetPasswordSetting {
            scope: SettingScope::Database("d".into()),
            setting: PasswordSetting::LifetimeDays,
            value: Some(90)
        }
    );
    assert_eq!(
        one("ALTER GROUP g RESET password_complexity_level"),
        Statement::SetPasswordSetting {
            scope: SettingScope::Group(q("g", None)),
            setting: PasswordSetting::ComplexityLevel,
            value: None
        }
    );
    assert_eq!(
        one("ALTER USER a ENABLE"),
        Statement::AlterUser {
            name: q("a", None),
            action: AlterUserAction::Enable
        }
    );
    assert_eq!(
        one("ALTER USER a SET PASSWORD = 'n', EMAIL 'a@x'"),
        Statement::AlterUser {
            name: q("a", None),
            action: AlterUserAction::Set(vec![
                UserAttribute::Password("n".into()),
                UserAttribute::Email("a@x".into())
            ])
        }
    );
    assert_eq!(one("ALTER GROUP g REMOVE USER a").tag(), "ALTER GROUP");
}

#[test]
fn queries_pass_through_as_text_and_split_on_semicolons() {
    let v = parse_statements("SELECT 1; select ';' , x from sys.users -- c\n; ;").unwrap();
    assert_eq!(
        v,
        vec![
            Statement::Query("SELECT 1".into()),
            Statement::Query("select ';' , x from sys.users".into())
        ]
    );
    assert!(parse_statements("  ;; -- nothing\n").unwrap().is_empty());
}

#[test]
fn client_chatter_is_accepted() {
    for sql in [
        "SET extra_float_digits = 3",
        "SET application_name = 'PostgreSQL JDBC Driver'",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "DISCARD ALL",
        "SHOW server_version",
        "START TRANSACTION ISOLATION LEVEL READ COMMITTED",
    ] {
        assert!(!one(sql).is_change(), "{sql}");
    }
}

#[test]
fn syntax_errors_name_the_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("CREATE TABLE t", 8, "expected DATABASE, USER or GROUP"),
        ("CREATE USER alice", 18, "found end of input"),
        (
            "CREATE USER alice PASSWORD = 42",
            30,
            "expected a quoted string",
        ),
        ("GRANT FLY ON SYSTEM TO USER a", 7, "expected a privilege"),
        (
            "GRANT USE ON DATABASE d TO a",
            28,
            "expected USER, GROUP or ROLE",
        ),
        ("CREATE DATABASE d extra", 19, "expected end of statement"),
        ("CREATE USER a PASSWORD = 'unterminated", 26, "syntax error"),
        ("FROBNICATE", 1, "expected a statement"),
        (
            "ALTER SYSTEM SET password_minimum_length = many",
            44,
            "expected an integer",
        ),
        ("SELECT 1;\nCREATE  GROUP", 24, "found end of input"),
        ("CREATE GROUP 1abc", 14, "expected a group name"),
    ];
    for (sql, pos, text) in cases {
        let e = parse_statements(sql).unwrap_err();
        assert_eq!(e.sqlstate, "42601", "{sql}: {e:?}");
        assert_eq!(e.position, Some(*pos), "{sql}: {e:?}");
        assert!(e.message.contains(text), "{sql}: {}", e.message);
    }
}

#[test]
fn unknown_settings_are_undefined_objects() {
    let e = parse_statements("ALTER SYSTEM SET password_color = 3").unwrap_err();
    assert_eq!(e.sqlstate, "42704");
}

#[test]
fn garbage_never_panics() {
    for sql in [
        "\0",
        "'",
        "\"",
        "CREATE USER \"\" PASSWORD 'x'",
        "GRANT",
        "ALTER USER",
        "é'",
        "$$",
        "/*",
        "CREATE USER a@ PASSWORD 'x'",
    ] {
        let _ = parse_statements(sql);
    }
}
