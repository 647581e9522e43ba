//! CREATE GROUP, DROP GROUP and group membership.

use portcullis_store::*;

use super::{check_name, database, group, user, Actor};
use crate::error::{sqlstate, CatalogError};
use crate::model::CatalogState;
use crate::names::QualifiedName;
use crate::privileges::{Action, ObjectKind, Privilege};

pub fn create(
    actor: &Actor,
    state: &CatalogState,
    name: &QualifiedName,
    if_not_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    let fq = name.qualified(actor.current_database());
    let db = database(state, &fq.database)?;
    actor.require(
        state,
        Privilege::on_kind(Action::Create, ObjectKind::Group),
        ObjectRef::Database(db.id),
        || format!("database \"{}\"", db.name),
    )?;
    check_name("group", &fq.user)?;
    if state.group(db.id, &fq.user).is_some() {
        return if if_not_exists {
            Ok(Vec::new())
        } else {
            Err(CatalogError::duplicate("group", &fq.to_string()))
        };
    }
    Ok(vec![Change::PutGroup(GroupRecord {
        id: state.next_id(),
        database_id: db.id,
        name: fq.user,
        created_at: actor.now,
    })])
}

pub fn drop(
    actor: &Actor,
    state: &CatalogState,
    names: &[QualifiedName],
    if_exists: bool,
) -> Result<Vec<Change>, CatalogError> {
    let mut changes = Vec::new();
    for name in names {
        let g = match group(state, name, actor.current_database()) {
            Ok(g) => g,
            Err(_) if if_exists => continue,
            Err(e) => return Err(e),
        };
        actor.require(
            state,
            Privilege::new(Action::Drop),
            ObjectRef::Group(g.id),
            || format!("group \"{name}\""),
        )?;
        changes.push(Change::DeleteGroup(g.id));
    }
    Ok(changes)
}

pub fn members(
    actor: &Actor,
    state: &CatalogState,
    name: &QualifiedName,
    add: bool,
    users: &[QualifiedName],
) -> Result<Vec<Change>, CatalogError> {
    let g = group(state, name, actor.current_database())?;
    let group_db = state.database_name(g.database_id).to_owned();
    actor.require(
        state,
        Privilege::new(Action::Alter),
        ObjectRef::Group(g.id),
        || format!("group \"{}@{group_db}\"", g.name),
    )?;
    // Adding a user to a group hands on what the group holds.
    if add {
        actor.require_dominates(state, PrincipalRef::Group(g.id), || {
            format!(
                "adding users to group \"{}@{group_db}\" needs holding everything it holds",
                g.name
            )
        })?;
    }
    let mut changes = Vec::new();
    for u in users {
        // An unqualified member name means the group's database.
        let member = user(state, u, &group_db)?;
        let fqun = state.user_fqun(member);
        if member.database_id != g.database_id {
            return Err(CatalogError::invalid(format!(
                "user \"{fqun}\" is not in database \"{group_db}\"; a group holds only users of its own database"
            )));
        }
        let record = GroupMemberRecord {
            group_id: g.id,
            user_id: member.id,
        };
        let is_member = state.snap.group_members.contains(&record);
        if add && !is_member {
            changes.push(Change::AddGroupMember(record));
        } else if !add {
            if !is_member {
                return Err(CatalogError::new(
                    sqlstate::UNDEFINED_OBJECT,
                    format!(
                        "user \"{fqun}\" is not a member of group \"{}@{group_db}\"",
                        g.name
                    ),
                ));
            }
            changes.push(Change::RemoveGroupMember(record));
        }
    }
    Ok(changes)
}
