//! CREATE USER, ALTER USER and DROP USER, with the password rules.

use portcullis_store::*;

use super::{check_name, database, user, Actor};
use crate::credential::{check_new_password, ScramVerifier};
use crate::error::{sqlstate, CatalogError};
use crate::model::{user_state, CatalogState};
use crate::names::QualifiedName;
use crate::privileges::{Action, ObjectKind, Privilege};
use crate::settings::SecurityPolicy;
use crate::sql::{AlterUserAction, UserAttribute};

/// How many old verifiers are kept (the largest `password_no_repeat_count` allowed).
const HISTORY_KEPT: usize = 100;

/// The effective password policy for a user of a database, with or without its groups.
pub fn policy_for(state: &CatalogState, database_id: i64, user_id: Option<i64>) -> SecurityPolicy {
    let mut scopes = vec![ScopeRef::System, ScopeRef::Database(database_id)];
    if let Some(id) = user_id {
        scopes.extend(state.groups_of(id).iter().map(|g| ScopeRef::Group(g.id)));
    }
    SecurityPolicy::strictest(&state.snap.settings, &scopes)
}

fn rejected(reason: impl std::fmt::Display) -> CatalogError {
    CatalogError::new(
        sqlstate::INVALID_PASSWORD,
        format!("password refused: {reason}"),
    )
}

pub fn create(
    actor: &Actor,
    state: &CatalogState,
    name: &QualifiedName,
    if_not_exists: bool,
    attributes: &[UserAttribute],
) -> Result<Vec<Change>, CatalogError> {
    let fq = name.qualified(actor.current_database());
    let db = database(state, &fq.database)?;
    actor.require(
        state,
        Privilege::on_kind(Action::Create, ObjectKind::User),
        ObjectRef::Database(db.id),
        || format!("database \"{}\"", db.name),
    )?;
    check_name("user", &fq.user)?;
    check_not_reserved(&fq.user)?;
    if state.user(db.id, &fq.user).is_some() {
        return if if_not_exists {
            Ok(Vec::new())
        } else {
            Err(CatalogError::duplicate("user", &fq.to_string()))
        };
    }
    let mut record = UserRecord {
        id: state.next_id(),
        database_id: db.id,
        name: fq.user.clone(),
        first_name: None,
        last_name: None,
        email: None,
        verifier: String::new(),
        password_set_at: actor.now,
        state: user_state::ACTIVE.into(),
        failed_attempts: 0,
        created_at: actor.now,
    };
    let mut password = None;
    for attribute in attributes {
        match attribute {
            UserAttribute::Password(p) => password = Some(p),
            other => set_descriptive(&mut record, other),
        }
    }
    let Some(password) = password else {
        return Err(CatalogError::new(
            sqlstate::SYNTAX_ERROR,
            "CREATE USER needs a PASSWORD",
        ));
    };
    // At creation only the system and database settings apply (the user is in no group yet).
    check_new_password(password, &policy_for(state, db.id, None), &[]).map_err(rejected)?;
    record.verifier = ScramVerifier::derive(password, actor.scram_iterations).encode();
    Ok(vec![Change::PutUser(record)])
}

fn set_descriptive(record: &mut UserRecord, attribute: &UserAttribute) {
    match attribute {
        UserAttribute::FirstName(v) => record.first_name = Some(v.clone()),
        UserAttribute::LastName(v) => record.last_name = Some(v.clone()),
        UserAttribute::Email(v) => record.email = Some(v.clone()),
        UserAttribute::Password(_) => {}
    }
}

pub fn alter(
    actor: &Actor,
    state: &CatalogState,
    name: &QualifiedName,
    action: &AlterUserAction,
) -> Result<Vec<Change>, CatalogError> {
    let target = user(state, name, actor.current_database())?;
    let fqun = state.user_fqun(target);
    let is_self = target.id == actor.session.user_id;
    // Users may change their own password and names; anything else needs ALTER on the user.
    if !(is_self && matches!(action, AlterUserAction::Set(_))) {
        actor.require(
            state,
            Privilege::new(Action::Alter),
            ObjectRef::User(target.id),
            || format!("user \"{fqun}\""),
        )?;
        // Setting someone's password (or enabling, disabling, renaming them) is becoming
        // them, or shutting them out: only for someone who holds all they hold.
        if !is_self {
            actor.require_dominates(state, PrincipalRef::User(target.id), || {
                format!("altering user \"{fqun}\" needs holding everything it holds")
            })?;
        }
    }
    let mut record = target.clone();
    let mut changes = Vec::new();
    match action {
        AlterUserAction::Enable => {
            record.state = user_state::ACTIVE.into();
            record.failed_attempts = 0;
        }
        AlterUserAction::Disable => {
            if is_self {
                return Err(CatalogError::invalid("you cannot disable yourself"));
            }
            record.state = user_state::DISABLED.into();
        }
        AlterUserAction::RenameTo(new_name) => {
            check_name("user", new_name)?;
            check_not_reserved(new_name)?;
            if state.user(target.database_id, new_name).is_some() {
                return Err(CatalogError::duplicate(
                    "user",
                    &format!("{new_name}@{}", state.database_name(target.database_id)),
                ));
            }
            record.name = new_name.clone();
        }
        AlterUserAction::Set(attributes) => {
            for attribute in attributes {
                if let UserAttribute::Password(password) = attribute {
                    let policy = policy_for(state, target.database_id, Some(target.id));
                    let mut previous: Vec<ScramVerifier> =
                        ScramVerifier::parse(&target.verifier).into_iter().collect();
                    previous.extend(
                        state
                            .password_history(target.id)
                            .into_iter()
                            .filter_map(ScramVerifier::parse),
                    );
                    let mut policy = policy;
                    // A change forced by expiry must at least differ from the current password.
                    if target.state == user_state::PASSWORD_EXPIRED {
                        policy.no_repeat_count = policy.no_repeat_count.max(1);
                    }
                    check_new_password(password, &policy, &previous).map_err(rejected)?;
                    changes.push(Change::AddPasswordHistory(PasswordHistoryRecord {
                        user_id: target.id,
                        verifier: target.verifier.clone(),
                        set_at: target.password_set_at,
                    }));
                    changes.push(Change::TrimPasswordHistory {
                        user_id: target.id,
                        keep: HISTORY_KEPT,
                    });
                    record.verifier =
                        ScramVerifier::derive(password, actor.scram_iterations).encode();
                    record.password_set_at = actor.now;
                    if record.state == user_state::PASSWORD_EXPIRED {
                        record.state = user_state::ACTIVE.into();
                    }
                } else {
                    set_descriptive(&mut record, attribute);
                }
            }
        }
    }
    changes.insert(0, Change::PutUser(record));
    Ok(changes)
}

pub fn drop(
    actor: &Actor,
    state: &CatalogState,
    names: &[QualifiedName],
    if_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    let mut changes = Vec::new();
    for name in names {
        let target = match user(state, name, actor.current_database()) {
            Ok(u) => u,
            Err(_) if if_exists => continue,
            Err(e) => return Err(e),
        };
        let fqun = state.user_fqun(target);
        actor.require(
            state,
            Privilege::new(Action::Drop),
            ObjectRef::User(target.id),
            || format!("user \"{fqun}\""),
        )?;
        if target.id == actor.session.user_id {
            return Err(CatalogError::new(
                sqlstate::DEPENDENT_OBJECTS,
                "the current user cannot be dropped",
            ));
        }
        actor.require_dominates(state, PrincipalRef::User(target.id), || {
            format!("dropping user \"{fqun}\" needs holding everything it holds")
        })?;
        changes.push(Change::DeleteUser(target.id));
    }
    Ok(changes)
}

/// User names the PostgreSQL front end reads as SSO sign-ins (`id_token`, `access_token`,
/// `sso`): a user so named could never sign in with a password, so none may be created.
fn check_not_reserved(name: &str) -> Result<(), CatalogError> {
    const RESERVED: [&str; 3] = ["id_token", "access_token", "sso"];
    // The front end reads the part before the first @ (`id_token@x` is a token sign-in too).
    let head = name.split('@').next().unwrap_or(name);
    if name.is_empty() || head.is_empty() || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(head)) {
        return Err(CatalogError::new(
            sqlstate::RESERVED_NAME,
            format!(
                "user name \"{name}\" is reserved: it signs in with SSO (as id_token, access_token \
                 or sso); choose another name"
            ),
        ));
    }
    Ok(())
}
