//! LDAP integrations (issue 14, item 1) against a real OpenLDAP (Debian's slapd, started by the
//! test in a temp dir): a PostgreSQL password sign-in `alice@example_database` checked by the
//! directory (tokio-postgres and psql), groups mapped by CN from `memberOf` or by a group
//! search, a blocked group refused, seed 004's form login with an LDAP domain, and each bad
//! input — wrong password, unknown user, filter metacharacters in the name, an empty password
//! the directory itself would accept as anonymous, a wrong service password, the directory
//! down — refused with a clear error and no session, while catalog password users in the same
//! database sign in throughout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::inprocess::{db_error, rows};

use harness::inprocess::InProcess;
use harness::ldap::{Slapd, READER_DN, READER_PASSWORD, SUFFIX};

/// Signs in as `user` to example_database: who and which groups, or `SQLSTATE message`.
async fn sign_in(server: &InProcess, user: &str, password: &str) -> Result<String, String> {
    match server.connect(user, "example_database", password).await {
        Ok(c) => Ok(rows(&c, "SELECT CURRENT_USER(), CURRENT_GROUPS()")
            .await
            .join("\n")),
        Err(e) => Err(db_error(&e)),
    }
}

async fn session_count(admin: &tokio_postgres::Client) -> String {
    rows(admin, "SELECT count(*) FROM sys.sessions")
        .await
        .join("")
}

async fn last_event(admin: &tokio_postgres::Client) -> String {
    rows(
        admin,
        "SELECT method, identity, result, reason, detail FROM sys.authentication_events \
         ORDER BY id DESC LIMIT 1",
    )
    .await
    .join("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_users_sign_in_with_their_groups_and_bad_inputs_are_refused() {
    let mut slapd = Slapd::start();
    for (uid, password) in [
        ("alice", "Alice-ldap-1"),
        ("bob", "Bob-ldap-1"),
        ("carol", "Carol-ldap-1"),
        ("mallory", ""),
    ] {
        if password.is_empty() {
            // An entry without a password: with allow bind_anon_dn, an empty-password bind
            // as it answers success (as anonymous).
            slapd.add(&format!(
                "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
                 cn: {uid}\nsn: {uid}\n"
            ));
        } else {
            slapd.person(uid, password);
        }
    }
    slapd.group("analysts", &["alice"]);
    slapd.group("contractors", &["bob"]);
    let server = harness::inprocess::start().await;
    let admin = server.admin().await;
    admin
        .batch_execute(
            "CREATE DATABASE example_database; \
             CREATE USER \"dave@example_database\" PASSWORD = 'Dave-pass-12'; \
             GRANT USE ON DATABASE example_database TO USER dave@example_database;",
        )
        .await
        .unwrap();
    let in_db = server
        .connect("admin@system", "example_database", harness::ADMIN_PASSWORD)
        .await
        .unwrap();
    // Plain ldap:// to a remote host, without start_tls, is refused at CREATE.
    let err = in_db
        .batch_execute(
            "CREATE SSO INTEGRATION far PROTOCOL ldap url = 'ldap://ldap.example.org', \
             user_search_base = 'ou=people,dc=example,dc=org', user_filter = '(uid={username})', \
             default_group = g",
        )
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("in the clear"),
        "{err}"
    );
    let err = in_db
        .batch_execute(&format!(
            "CREATE SSO INTEGRATION bad PROTOCOL ldap url = '{}', \
             user_search_base = 'ou=people,{SUFFIX}', user_filter = 'uid=alice', default_group = g",
            slapd.url()
        ))
        .await
        .unwrap_err();
    assert!(
        err.as_db_error().unwrap().message().contains("{username}"),
        "{err}"
    );
    in_db
        .batch_execute(&format!(
            "CREATE GROUP analysts; CREATE GROUP ldap_users; CREATE GROUP contractors; \
             GRANT USE ON DATABASE example_database TO GROUP analysts; \
             GRANT USE ON DATABASE example_database TO GROUP ldap_users; \
             CREATE SSO INTEGRATION corp PROTOCOL ldap url = '{url}', \
               bind_dn = '{READER_DN}', bind_password = '{READER_PASSWORD}', \
               user_search_base = 'ou=people,{SUFFIX}', user_filter = '(uid={{username}})', \
               groups_claim_ids = [memberOf], default_group = ldap_users, \
               blocked_groups = [contractors]; \
             ALTER DATABASE example_database SET SSO INTEGRATION corp;",
            url = slapd.url()
        ))
        .await
        .unwrap();
    // Shown without the bind password; the password is sealed in the store.
    let shown = rows(
        &admin,
        "SELECT name, protocol, client_secret_set, directory FROM sys.oidc_integrations \
         WHERE name = 'corp'",
    )
    .await
    .join("");
    assert!(
        shown.starts_with("corp|ldap|1|") && shown.contains("\"user_filter\":\"(uid={username})\""),
        "{shown}"
    );
    assert!(!shown.contains(READER_PASSWORD), "{shown}");

    // alice: in the directory only; her memberOf group maps by CN.
    assert_eq!(
        sign_in(&server, "alice@example_database", "Alice-ldap-1").await,
        Ok("alice|analysts@example_database".into())
    );
    let alice = server
        .connect("alice", "example_database", "Alice-ldap-1")
        .await
        .unwrap();
    assert_eq!(
        rows(
            &alice,
            "SELECT user, authentication_method, sso_integration FROM sys.sessions \
             WHERE id = CURRENT_SESSION_ID()"
        )
        .await,
        ["alice|sso (ldap)|corp"]
    );
    // psql, the real client, asked for the password in the clear (loopback).
    let out = std::process::Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=alice@example_database dbname=example_database",
            server.sql_addr().port()
        ))
        .args(["-X", "-A", "-t", "-c", "SELECT CURRENT_GROUPS()"])
        .env("PGPASSWORD", "Alice-ldap-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "analysts@example_database"
    );
    // carol: no group maps: the default group.
    assert_eq!(
        sign_in(&server, "carol@example_database", "Carol-ldap-1").await,
        Ok("carol|ldap_users@example_database".into())
    );
    // dave: a catalog user of the same database, checked against his own verifier.
    assert_eq!(
        sign_in(&server, "dave@example_database", "Dave-pass-12").await,
        Ok("dave@example_database|".into())
    );

    // EXPLAIN AUTHENTICATION FOR USER: the entry, the groups and the outcome, no password.
    let explained = rows(
        &in_db,
        "EXPLAIN AUTHENTICATION FOR USER 'alice' DATABASE example_database",
    )
    .await;
    let text = explained.join("\n");
    assert!(
        text.contains(&format!(
            "directory|pass|entry uid=alice,ou=people,{SUFFIX}"
        )) && text.contains("\"analysts\"")
            && text.contains("groups [\"analysts@example_database\"]")
            && text.contains("database access|pass|USE on database example_database")
            && explained.last().unwrap().contains("result|pass|"),
        "{text}"
    );
    let explained = rows(&in_db, "EXPLAIN AUTHENTICATION FOR USER 'bob'").await;
    assert!(
        explained.last().unwrap().contains("result|fail|")
            && explained.join("\n").contains("\"contractors\" is blocked"),
        "{explained:?}"
    );
    let explained = rows(&in_db, "EXPLAIN AUTHENTICATION FOR USER 'nobody'").await;
    assert!(
        explained
            .join("\n")
            .contains("no directory entry matches (uid=nobody)"),
        "{explained:?}"
    );
    let dave = server
        .connect("dave@example_database", "example_database", "Dave-pass-12")
        .await
        .unwrap();
    let err = dave
        .simple_query("EXPLAIN AUTHENTICATION FOR USER 'alice'")
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("administrator"),
        "{err}"
    );
    drop(dave);

    // Refusals: each FATAL, no session, the reason in the event.
    let before = session_count(&admin).await;
    drop(alice);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before_refusals = session_count(&admin).await;
    assert_ne!(before, before_refusals);
    for (user, password, state, event) in [
        ("alice", "wrong", "28P01", "refused the password"),
        (
            "nobody",
            "Alice-ldap-1",
            "28P01",
            "no directory entry matches (uid=nobody)",
        ),
        // Filter metacharacters are escaped: `*` matches no one, not everyone.
        ("*", "Alice-ldap-1", "28P01", "(uid=\\2a)"),
        (
            "x)(uid=*",
            "Alice-ldap-1",
            "28P01",
            "(uid=x\\29\\28uid=\\2a)",
        ),
        // The directory would take this as an anonymous bind; the server never asks it.
        ("mallory", "", "28P01", "an empty password is refused"),
        ("bob", "Bob-ldap-1", "28000", "contractors"),
        ("dave", "wrong-pass-12", "28P01", ""),
    ] {
        let err = sign_in(&server, &format!("{user}@example_database"), password)
            .await
            .unwrap_err();
        assert!(err.starts_with(state), "{user}: {err}");
        assert!(!err.contains("Alice-ldap-1"), "{err}");
        if state == "28P01" {
            // A directory user's wrong password reads exactly like a catalog user's (dave):
            // the answer does not tell which names are catalog users.
            assert_eq!(
                err,
                format!(
                    "28P01 password authentication failed for user \"{user}@example_database\""
                ),
            );
        }
        let seen = last_event(&admin).await;
        assert!(seen.contains(event), "{user}: {seen}");
    }
    assert_eq!(before_refusals, session_count(&admin).await);

    // Seed 004's form login with the LDAP domain.
    let web = reqwest::Client::new();
    let answer = web
        .post(server.http("/v1/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Domain=corp&identity_username=alice&secret_password=Alice-ldap-1")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("OAuthToken_corp="), "{cookie}");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"DomainName": "corp", "UserName": "alice"})
    );
    let refused = web
        .post(server.http("/v1/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Domain=corp&identity_username=alice&secret_password=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());

    // Guessing directory passwords from one address is throttled like catalog passwords.
    let guesser = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for password in [
        "g1",
        "g2",
        "g3",
        "g4",
        "g5",
        "g6",
        "g7",
        "g8",
        "g9",
        "g10",
        "Alice-ldap-1",
    ] {
        let answer = guesser
            .post(server.http("/v1/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "Domain=corp&identity_username=alice&secret_password={password}"
            ))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 429]
    );

    // Groups by search instead of memberOf: the same group, by CN.
    in_db
        .batch_execute(&format!(
            "ALTER SSO INTEGRATION corp SET groups_claim_ids = NULL, \
             group_search_base = 'ou=groups,{SUFFIX}', group_filter = '(member={{dn}})'"
        ))
        .await
        .unwrap();
    assert_eq!(
        sign_in(&server, "alice@example_database", "Alice-ldap-1").await,
        Ok("alice|analysts@example_database".into())
    );
    // A blocked group named by its full DN refuses just the same.
    in_db
        .batch_execute(&format!(
            "ALTER SSO INTEGRATION corp SET blocked_groups = ['cn=analysts,ou=groups,{SUFFIX}']"
        ))
        .await
        .unwrap();
    let err = sign_in(&server, "alice@example_database", "Alice-ldap-1")
        .await
        .unwrap_err();
    assert!(err.starts_with("28000") && err.contains("blocked"), "{err}");
    in_db
        .batch_execute("ALTER SSO INTEGRATION corp SET blocked_groups = NULL")
        .await
        .unwrap();

    // A wrong service password: a clear error (08001), and the detail only in the event.
    in_db
        .batch_execute("ALTER SSO INTEGRATION corp SET bind_password = 'not-it'")
        .await
        .unwrap();
    let err = sign_in(&server, "alice@example_database", "Alice-ldap-1")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("08001") && err.contains("could not check"),
        "{err}"
    );
    assert!(last_event(&admin)
        .await
        .contains("refused the service account"));
    in_db
        .batch_execute(&format!(
            "ALTER SSO INTEGRATION corp SET bind_password = '{READER_PASSWORD}'"
        ))
        .await
        .unwrap();

    // Pointing the integration at another directory (or another service DN) without giving
    // the bind password again is refused: the sealed one would go to the new directory. The
    // same for an OpenID Connect integration's issuer and client secret.
    for sql in [
        "ALTER SSO INTEGRATION corp SET url = 'ldap://127.0.0.1:1'".to_owned(),
        "ALTER SSO INTEGRATION corp SET bind_dn = 'cn=someone,dc=example,dc=org'".to_owned(),
    ] {
        let err = in_db.batch_execute(&sql).await.unwrap_err();
        assert!(
            err.as_db_error()
                .unwrap()
                .message()
                .contains("needs bind_password again"),
            "{err}"
        );
    }
    in_db
        .batch_execute(
            "CREATE SSO INTEGRATION web PROTOCOL oidc issuer = 'https://idp.example.org', \
             client_id = app, client_secret = 'Web-secret-1', default_group = ldap_users",
        )
        .await
        .unwrap();
    let err = in_db
        .batch_execute("ALTER SSO INTEGRATION web SET issuer = 'https://evil.example.org'")
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("needs client_secret again"),
        "{err}"
    );
    in_db
        .batch_execute(
            "ALTER SSO INTEGRATION web SET issuer = 'https://new.example.org', \
             client_secret = 'Web-secret-2'",
        )
        .await
        .unwrap();
    assert_eq!(
        sign_in(&server, "alice@example_database", "Alice-ldap-1").await,
        Ok("alice|analysts@example_database".into()),
        "the refused changes changed nothing"
    );

    // The directory down: directory users get a clear error; catalog users sign in.
    slapd.stop();
    let err = sign_in(&server, "alice@example_database", "Alice-ldap-1")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("08001") && err.contains("could not check"),
        "{err}"
    );
    assert_eq!(
        sign_in(&server, "dave@example_database", "Dave-pass-12").await,
        Ok("dave@example_database|".into())
    );
    slapd.run();
    assert_eq!(
        sign_in(&server, "alice@example_database", "Alice-ldap-1").await,
        Ok("alice|analysts@example_database".into())
    );
    // A system-wide directory assigned to a tenant's database: the tenant's administrator may
    // not read its users with EXPLAIN (they may be anyone's); the system's administrator may.
    admin
        .batch_execute(&format!(
            "CREATE DATABASE other_db; \
             CREATE USER \"dbo@other_db\" PASSWORD = 'Dbo-pass-12'; \
             GRANT ALL ON DATABASE other_db TO USER dbo@other_db; \
             CREATE SSO INTEGRATION corp_all PROTOCOL ldap url = '{url}', \
               bind_dn = '{READER_DN}', bind_password = '{READER_PASSWORD}', \
               user_search_base = 'ou=people,{SUFFIX}', user_filter = '(uid={{username}})', \
               default_group = everyone; \
             ALTER DATABASE other_db SET SSO INTEGRATION corp_all",
            url = slapd.url()
        ))
        .await
        .unwrap();
    let dbo = server
        .connect("dbo@other_db", "other_db", "Dbo-pass-12")
        .await
        .unwrap();
    let err = dbo
        .simple_query("EXPLAIN AUTHENTICATION FOR USER 'alice'")
        .await
        .unwrap_err();
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("belongs to database \"system\""),
        "{err}"
    );
    let explained = rows(
        &admin,
        "EXPLAIN AUTHENTICATION FOR USER 'alice' DATABASE other_db",
    )
    .await
    .join("\n");
    assert!(explained.contains("entry uid=alice"), "{explained}");
    drop((admin, in_db, dbo));
    server.running.stop().await;
}
