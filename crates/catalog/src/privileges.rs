//! Privileges: what a principal may do to an object, through direct grants, groups and roles.
//!
//! A privilege is a base action (`USE`, `CREATE`, `ALTER`, `DROP`, `VIEW`, `SYSAUTH`, `ALL`),
//! optionally narrowed to an object kind (`CREATE USER`, `DROP GROUP`). A grant on the system
//! covers every database, and a grant on a database covers its users and groups. `ALL` covers
//! every privilege; `SYSAUTH` ("may administer authorization") covers managing users, groups,
//! grants and password settings of its object.

use std::fmt;

use portcullis_store::{ObjectRef, PrincipalRef};

use crate::model::CatalogState;

/// The base actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Use,
    Create,
    Alter,
    Drop,
    View,
    Sysauth,
    All,
}

impl Action {
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "USE" => Self::Use,
            "CREATE" => Self::Create,
            "ALTER" => Self::Alter,
            "DROP" => Self::Drop,
            "VIEW" => Self::View,
            "SYSAUTH" => Self::Sysauth,
            "ALL" => Self::All,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Self::Use => "USE",
            Self::Create => "CREATE",
            Self::Alter => "ALTER",
            Self::Drop => "DROP",
            Self::View => "VIEW",
            Self::Sysauth => "SYSAUTH",
            Self::All => "ALL",
        }
    }
}

/// The object kinds a privilege can be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Database,
    User,
    Group,
}

impl ObjectKind {
    pub fn from_word(word: &str) -> Option<Self> {
        Some(match word.to_ascii_uppercase().as_str() {
            "DATABASE" => Self::Database,
            "USER" => Self::User,
            "GROUP" => Self::Group,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Self::Database => "DATABASE",
            Self::User => "USER",
            Self::Group => "GROUP",
        }
    }
}

/// A privilege as granted or required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Privilege {
    pub action: Action,
    pub kind: Option<ObjectKind>,
}

impl Privilege {
    pub const fn new(action: Action) -> Self {
        Self { action, kind: None }
    }

    pub const fn on_kind(action: Action, kind: ObjectKind) -> Self {
        Self {
            action,
            kind: Some(kind),
        }
    }

    /// Parses the stored form (`USE`, `CREATE USER`).
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let action = Action::from_word(words.next()?)?;
        let kind = match words.next() {
            Some(w) => Some(ObjectKind::from_word(w)?),
            None => None,
        };
        words.next().is_none().then_some(Self { action, kind })
    }

    /// Which object kinds this privilege may be granted on, as a check for GRANT.
    pub fn valid_on(&self, object: &ObjectRef) -> bool {
        use Action::*;
        match object {
            ObjectRef::System => true,
            ObjectRef::Database(_) => {
                self.kind != Some(ObjectKind::Database) || self.action != Create
            }
            ObjectRef::User(_) | ObjectRef::Group(_) => {
                self.kind.is_none() && matches!(self.action, View | Alter | Drop | Sysauth | All)
            }
        }
    }

    /// Whether holding `self` satisfies a requirement of `need`.
    pub(crate) fn covers(&self, need: &Privilege, need_on: &ObjectRef) -> bool {
        match self.action {
            Action::All => true,
            Action::Sysauth => {
                need.action == Action::Sysauth
                    || need.action == Action::View
                    || matches!(need.kind, Some(ObjectKind::User | ObjectKind::Group))
                    || matches!(need_on, ObjectRef::User(_) | ObjectRef::Group(_))
            }
            action => action == need.action && (self.kind.is_none() || self.kind == need.kind),
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{} {}", self.action.word(), kind.word()),
            None => f.write_str(self.action.word()),
        }
    }
}

/// The object and its ancestors, nearest first.
fn ancestry(state: &CatalogState, object: ObjectRef) -> Vec<ObjectRef> {
    let mut chain = vec![object];
    let database = match object {
        ObjectRef::User(id) => state.user_by_id(id).map(|u| u.database_id),
        ObjectRef::Group(id) => state.group_by_id(id).map(|g| g.database_id),
        _ => None,
    };
    if let Some(db) = database {
        chain.push(ObjectRef::Database(db));
    }
    if object != ObjectRef::System {
        chain.push(ObjectRef::System);
    }
    chain
}

/// Whether any of the principals holds a privilege covering `need` on `object`.
pub fn holds(
    state: &CatalogState,
    principals: &[PrincipalRef],
    need: Privilege,
    object: ObjectRef,
) -> bool {
    held_on(state, principals, object, |held| {
        held.covers(&need, &object)
    })
}

/// Whether any of the principals has a grant on `object` or an ancestor that `fits`.
fn held_on(
    state: &CatalogState,
    principals: &[PrincipalRef],
    object: ObjectRef,
    fits: impl Fn(Privilege) -> bool,
) -> bool {
    let chain = ancestry(state, object);
    state.snap.grants.iter().any(|g| {
        principals.contains(&g.grantee)
            && chain.contains(&g.object)
            && Privilege::parse(&g.privilege).is_some_and(&fits)
    })
}

/// Whether the principals hold `need` itself (or ALL) on `object` or an ancestor — what handing
/// `need` on to someone else requires, besides SYSAUTH. Unlike [`holds`], SYSAUTH does not
/// stand in for other privileges here: an authorization administrator cannot grant what they
/// do not have (themselves included).
pub fn holds_to_grant(
    state: &CatalogState,
    principals: &[PrincipalRef],
    need: Privilege,
    object: ObjectRef,
) -> bool {
    held_on(state, principals, object, |held| {
        held.action == Action::All
            || (held.action == need.action && (held.kind.is_none() || held.kind == need.kind))
    })
}

/// The principals whose grants a principal carries: itself, and for a user its groups, and the
/// roles held by any of those. (Not a database's Public Role, which every session holds.)
pub fn carriers(state: &CatalogState, principal: PrincipalRef) -> Vec<PrincipalRef> {
    let mut list = vec![principal];
    if let PrincipalRef::User(id) = principal {
        list.extend(
            state
                .groups_of(id)
                .iter()
                .map(|g| PrincipalRef::Group(g.id)),
        );
    }
    let roles: Vec<PrincipalRef> = state
        .roles_of(&list)
        .iter()
        .filter(|r| r.name != crate::model::roles::PUBLIC_ROLE)
        .map(|r| PrincipalRef::Role(r.id))
        .collect();
    list.extend(roles);
    list
}

/// The first privilege `target` carries (through [`carriers`]) that `principals` could not
/// grant themselves, or `None` when they hold all of it. Acting on what a principal can do —
/// setting a user's password, dropping or disabling them, adding someone to a group, handing
/// a role or group on, mapping SSO users to it — needs this: otherwise an administrator of
/// authorization could make themselves whoever holds more.
pub fn uncovered_privilege(
    state: &CatalogState,
    principals: &[PrincipalRef],
    target: PrincipalRef,
) -> Option<(Privilege, ObjectRef)> {
    let carriers = carriers(state, target);
    state
        .snap
        .grants
        .iter()
        .filter(|g| carriers.contains(&g.grantee))
        .filter_map(|g| Privilege::parse(&g.privilege).map(|p| (p, g.object)))
        .find(|(p, object)| !holds_to_grant(state, principals, *p, *object))
}

/// A readable name of an object, for refusals.
pub fn object_name(state: &CatalogState, object: ObjectRef) -> String {
    match object {
        ObjectRef::System => "the system".into(),
        ObjectRef::Database(id) => format!("database \"{}\"", state.database_name(id)),
        ObjectRef::User(id) => state.user_by_id(id).map_or_else(
            || format!("user {id}"),
            |u| format!("user \"{}\"", state.user_fqun(u)),
        ),
        ObjectRef::Group(id) => state.group_by_id(id).map_or_else(
            || format!("group {id}"),
            |g| {
                format!(
                    "group \"{}@{}\"",
                    g.name,
                    state.database_name(g.database_id)
                )
            },
        ),
    }
}

/// The principals a user acts as in a database: the user, its groups, the roles held by either,
/// and that database's Public Role.
pub fn principals_of(state: &CatalogState, user_id: i64, database_id: i64) -> Vec<PrincipalRef> {
    let mut list = carriers(state, PrincipalRef::User(user_id));
    if let Some(public) = state.role(database_id, crate::model::roles::PUBLIC_ROLE) {
        list.push(PrincipalRef::Role(public.id));
    }
    list
}

/// Whether the principals administer a database (ALL on it, or SYSAUTH as the Security
/// Administrator holds on the system): who may manage and read its SSO integrations.
pub fn administers(state: &CatalogState, principals: &[PrincipalRef], database_id: i64) -> bool {
    let on = ObjectRef::Database(database_id);
    holds(state, principals, Privilege::new(Action::All), on)
        || holds(state, principals, Privilege::new(Action::Sysauth), on)
}

/// The principals a session acts as: for a password session those of its user; for an SSO
/// session the groups and roles its token mapped to, the roles those groups hold, and the
/// database's Public Role.
pub fn session_principals(
    state: &CatalogState,
    session: &crate::sessions::Session,
) -> Vec<PrincipalRef> {
    let Some(sso) = &session.sso else {
        return principals_of(state, session.user_id, session.database_id);
    };
    let mut list: Vec<PrincipalRef> = sso.groups.iter().map(|g| PrincipalRef::Group(*g)).collect();
    let held: Vec<PrincipalRef> = state
        .roles_of(&list)
        .iter()
        .map(|r| PrincipalRef::Role(r.id))
        .collect();
    list.extend(sso.roles.iter().map(|r| PrincipalRef::Role(*r)));
    list.extend(held);
    if let Some(public) = state.role(session.database_id, crate::model::roles::PUBLIC_ROLE) {
        list.push(PrincipalRef::Role(public.id));
    }
    list.sort();
    list.dedup();
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_store::*;

    fn state() -> CatalogState {
        let mut s = CatalogState::default();
        s.apply(&[
            Change::PutDatabase(DatabaseRecord {
                id: 1,
                name: "system".into(),
                created_at: 0,
            }),
            Change::PutDatabase(DatabaseRecord {
                id: 2,
                name: "sales".into(),
                created_at: 0,
            }),
            Change::PutUser(UserRecord {
                id: 10,
                database_id: 2,
                name: "alice".into(),
                first_name: None,
                last_name: None,
                email: None,
                verifier: String::new(),
                password_set_at: 0,
                state: "ACTIVE".into(),
                failed_attempts: 0,
                created_at: 0,
            }),
            Change::PutGroup(GroupRecord {
                id: 20,
                database_id: 2,
                name: "analysts".into(),
                created_at: 0,
            }),
            Change::PutRole(RoleRecord {
                id: 30,
                database_id: 2,
                name: "database_administrator".into(),
                description: String::new(),
            }),
        ]);
        s
    }

    fn grant(s: &mut CatalogState, who: PrincipalRef, p: &str, on: ObjectRef) {
        s.apply(&[Change::AddGrant(GrantRecord {
            grantee: who,
            privilege: p.into(),
            object: on,
            grantor: "t".into(),
            granted_at: 0,
        })]);
    }

    #[test]
    fn grants_flow_down_the_object_tree_and_through_groups_and_roles() {
        let alice = PrincipalRef::User(10);
        let mut s = state();
        let db = ObjectRef::Database(2);
        let use_ = Privilege::new(Action::Use);
        assert!(!holds(&s, &principals_of(&s, 10, 2), use_, db));
        // via a group
        s.apply(&[Change::AddGroupMember(GroupMemberRecord {
            group_id: 20,
            user_id: 10,
        })]);
        grant(&mut s, PrincipalRef::Group(20), "USE", db);
        assert!(holds(&s, &principals_of(&s, 10, 2), use_, db));
        // ALL on the database through a role covers DROP on a user in it, not on the system
        s.apply(&[Change::AddRoleMember(RoleMemberRecord {
            role_id: 30,
            member: alice,
        })]);
        grant(&mut s, PrincipalRef::Role(30), "ALL", db);
        let p = principals_of(&s, 10, 2);
        assert!(holds(
            &s,
            &p,
            Privilege::new(Action::Drop),
            ObjectRef::User(10)
        ));
        assert!(!holds(
            &s,
            &p,
            Privilege::on_kind(Action::Create, ObjectKind::Database),
            ObjectRef::System
        ));
    }

    #[test]
    fn narrowed_privileges_and_sysauth() {
        let mut s = state();
        let bob = [PrincipalRef::User(99)];
        grant(&mut s, bob[0], "CREATE GROUP", ObjectRef::Database(2));
        assert!(holds(
            &s,
            &bob,
            Privilege::on_kind(Action::Create, ObjectKind::Group),
            ObjectRef::Database(2)
        ));
        assert!(!holds(
            &s,
            &bob,
            Privilege::on_kind(Action::Create, ObjectKind::User),
            ObjectRef::Database(2)
        ));
        grant(&mut s, bob[0], "SYSAUTH", ObjectRef::Database(2));
        assert!(holds(
            &s,
            &bob,
            Privilege::on_kind(Action::Create, ObjectKind::User),
            ObjectRef::Database(2)
        ));
        assert!(holds(
            &s,
            &bob,
            Privilege::new(Action::Alter),
            ObjectRef::Group(20)
        ));
        assert!(!holds(
            &s,
            &bob,
            Privilege::new(Action::Use),
            ObjectRef::Database(2)
        ));
        assert!(!holds(
            &s,
            &bob,
            Privilege::new(Action::Drop),
            ObjectRef::Database(2)
        ));
    }

    #[test]
    fn privilege_text_round_trips() {
        for t in ["USE", "CREATE USER", "DROP GROUP", "ALL", "SYSAUTH"] {
            assert_eq!(Privilege::parse(t).unwrap().to_string(), t);
        }
        for bad in ["", "FLY", "CREATE TABLE", "USE USER EXTRA"] {
            assert!(Privilege::parse(bad).is_none(), "{bad}");
        }
    }
}
