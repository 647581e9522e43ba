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
            if_not_exists: true,
            upstream: None,
        }
    );
    assert_eq!(
        one("CREATE DATABASE sales UPSTREAM 'postgresql://a:b@h/sales'"),
        Statement::CreateDatabase {
            name: "sales".into(),
            if_not_exists: false,
            upstream: Some("postgresql://a:b@h/sales".into()),
        }
    );
    assert_eq!(
        one("ALTER DATABASE sales SET UPSTREAM 'postgresql://a:b@h/sales'"),
        Statement::SetUpstream {
            database: "sales".into(),
            url: Some("postgresql://a:b@h/sales".into()),
        }
    );
    assert_eq!(
        one("ALTER DATABASE sales REMOVE UPSTREAM"),
        Statement::SetUpstream {
            database: "sales".into(),
            url: None,
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
        Statement::SetSecuritySetting {
            scope: SettingScope::System,
            setting: SecuritySetting::MinimumLength,
            value: Some(12)
        }
    );
    assert_eq!(
        one("ALTER DATABASE d SET PASSWORD_LIFETIME_DAYS TO 90"),
        Statement::SetSecuritySetting {
            scope: SettingScope::Database("d".into()),
            setting: SecuritySetting::LifetimeDays,
            value: Some(90)
        }
    );
    assert_eq!(
        one("ALTER GROUP g RESET password_complexity_level"),
        Statement::SetSecuritySetting {
            scope: SettingScope::Group(q("g", None)),
            setting: SecuritySetting::ComplexityLevel,
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
        ("CREATE DATABSE t", 8, "expected DATABASE, USER, GROUP"),
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

/// Every SSO statement of seed 003, verbatim.
pub const SEED_SSO_STATEMENTS: &[&str] = &[
    r#"ALTER DATABASE example_database
        SET SSO INTEGRATION oidc
            issuer = "https://example.com",
            client_id = "xxxxxx",
            default_group = "default",
            additional_scopes = [email, groups, profile, offline_access],
            user_id_claims = [claim1, claim2],
            groups_claim_ids = [claim3],
            groups_claim_mappings = { idp_group1 = ocient_group1, idp_group2 = ocient_group2 };"#,
    r#"CREATE SSO INTEGRATION sso_test PROTOCOL oidc
        issuer = "https://accounts.google.com",
        client_id = example_database_app_id,
        default_group = example_database_group,
        enable_id_token_authentication = true,
        additional_audiences = ["https://accounts.google.com"];"#,
    "ALTER DATABASE example_database\n        SET SSO INTEGRATION sso_test;",
    r#"CREATE SSO INTEGRATION test_sso PROTOCOL OIDC
        enable_id_token_authentication = true,
        issuer = 'https://your-idp.com/oidc',
        client_id = 'your_client_id',
        default_group = sso_users,
        additional_scopes = [profile, email, groups, offline_access],
        protocol_version = 'v1',
        groups_claim_ids = [groups];"#,
    r#"ALTER DATABASE example_database
    ALTER SSO INTEGRATION oidc

        /* Tell the Database to request the "profile", "email" and "offline_access" scopes */
        additional_scopes = [ profile, email, offline_access ],

        /* Tell the Database to look for the "user_groups" token claim to establish role membership */
        roles_claim_ids = [ user_groups ],

        /* Map provider group "Example Provider Group" to database role "example_database Analyst" */
        roles_claim_mappings = { "Example Provider Group" = "example_database Analyst" };"#,
    r#"ALTER DATABASE example_database
    ALTER SSO INTEGRATION oidc
        user_claim_ids = [first_name, last_name, email];"#,
    "ALTER DATABASE example_database REMOVE SSO INTEGRATION;",
];

#[test]
fn seed_sso_statements_parse() {
    use crate::sso::PropertyValue;
    for sql in SEED_SSO_STATEMENTS {
        let parsed = parse_statements(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(parsed.len(), 1, "{sql}");
    }
    let first = parse_statements(SEED_SSO_STATEMENTS[0]).unwrap().remove(0);
    let Statement::DatabaseSsoProperties {
        database,
        replace,
        properties,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(database, "example_database");
    assert!(replace);
    assert_eq!(properties[1].value, PropertyValue::Text("xxxxxx".into()));
    assert_eq!(
        properties[6].value,
        PropertyValue::Map(vec![
            ("idp_group1".into(), "ocient_group1".into()),
            ("idp_group2".into(), "ocient_group2".into())
        ])
    );
    let roles = parse_statements(SEED_SSO_STATEMENTS[4]).unwrap().remove(0);
    let Statement::DatabaseSsoProperties {
        properties,
        replace,
        ..
    } = roles
    else {
        panic!()
    };
    assert!(!replace);
    assert_eq!(
        properties[2].value,
        PropertyValue::Map(vec![(
            "Example Provider Group".into(),
            "example_database Analyst".into()
        )])
    );
    assert!(matches!(
        parse_statements(SEED_SSO_STATEMENTS[2]).unwrap()[0],
        Statement::AssignSsoIntegration { .. }
    ));
}

#[test]
fn sso_statement_errors_have_positions() {
    for (sql, needle) in [
        (
            "CREATE SSO INTEGRATION x PROTOCOL kerberos issuer = a",
            "OIDC",
        ),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc issuer", "="),
        ("CREATE SSO INTEGRATION x PROTOCOL oidc scopes = [a, b", "]"),
        (
            "CREATE SSO INTEGRATION x PROTOCOL oidc m = { a = }",
            "value",
        ),
        ("ALTER DATABASE d ALTER SSO INTEGRATION oidc", "properties"),
        (
            "ALTER DATABASE d SET SSO INTEGRATION kerberos issuer = x",
            "OIDC",
        ),
        ("ALTER CONNECTIVITY_POOL p SET SSO", "INTEGRATION"),
        ("EXPLAIN AUTHENTICATION token", "single-quoted"),
    ] {
        let err = parse_statements(sql).unwrap_err();
        assert!(err.message.contains(needle), "{sql}: {}", err.message);
    }
    let e = parse_statements("CREATE SSO INTEGRATION x PROTOCOL oidc issuer").unwrap_err();
    assert_eq!(e.position, Some(46));
}

#[test]
fn pools_null_and_explain_parse() {
    let s = parse_statements(
        "CREATE CONNECTIVITY_POOL bi LISTEN '127.0.0.1:4051'; \
         ALTER CONNECTIVITY_POOL bi SET SSO INTEGRATION corp; \
         ALTER SSO INTEGRATION corp SET user_id_claims = NULL, disabled = true; \
         DROP SSO INTEGRATION IF EXISTS corp, other; \
         EXPLAIN AUTHENTICATION 'eyJ.x.y' FOR DATABASE sales",
    )
    .unwrap();
    assert_eq!(s.len(), 5);
    assert!(
        matches!(&s[2], Statement::AlterSsoIntegration { properties, .. }
        if properties[0].value == crate::sso::PropertyValue::Null)
    );
    assert_eq!(
        s[4],
        Statement::ExplainAuthentication {
            token: "eyJ.x.y".into(),
            database: Some("sales".into())
        }
    );
}

#[test]
fn postgresql_statements_say_they_need_an_upstream() {
    for (sql, what) in [
        (
            "INSERT INTO t VALUES (1)",
            "INSERT is a PostgreSQL statement",
        ),
        ("copy t from stdin", "COPY is a PostgreSQL statement"),
        (
            "CREATE TABLE t (a int)",
            "CREATE TABLE is a PostgreSQL statement",
        ),
        ("DROP INDEX i", "DROP INDEX is a PostgreSQL statement"),
        (
            "GRANT SELECT ON TABLE t TO GROUP analysts",
            "GRANT … ON an object is a PostgreSQL statement",
        ),
        (
            "REVOKE ALL ON SCHEMA s FROM USER bob",
            "REVOKE … ON an object",
        ),
    ] {
        let e = parse_statements(sql).unwrap_err();
        assert_eq!(e.sqlstate, "0A000", "{sql}");
        assert!(e.message.contains(what), "{sql}: {}", e.message);
        assert!(
            e.message.contains("not bound to PostgreSQL"),
            "{}",
            e.message
        );
    }
    // The vendor's own statements are still the vendor's.
    for sql in [
        "GRANT USE ON DATABASE sales TO GROUP analysts",
        "CREATE USER alice PASSWORD = 'Alice-pass-123'",
        "ALTER GROUP analysts ADD USER alice",
        "DROP GROUP analysts",
    ] {
        parse_statements(sql).unwrap();
    }
}
