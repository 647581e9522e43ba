//! How references are written in a row, for every backend: a kind word and an id
//! (`("group", 12)`), and read back. One mapping, so the backends cannot disagree.

use crate::{AssignmentTarget, ObjectRef, PrincipalRef, ScopeRef};

pub fn principal_parts(p: PrincipalRef) -> (&'static str, i64) {
    match p {
        PrincipalRef::User(id) => ("user", id),
        PrincipalRef::Group(id) => ("group", id),
        PrincipalRef::Role(id) => ("role", id),
    }
}

pub fn principal_from(kind: &str, id: i64) -> Option<PrincipalRef> {
    match kind {
        "user" => Some(PrincipalRef::User(id)),
        "group" => Some(PrincipalRef::Group(id)),
        "role" => Some(PrincipalRef::Role(id)),
        _ => None,
    }
}

pub fn object_parts(o: ObjectRef) -> (&'static str, i64) {
    match o {
        ObjectRef::System => ("system", 0),
        ObjectRef::Database(id) => ("database", id),
        ObjectRef::User(id) => ("user", id),
        ObjectRef::Group(id) => ("group", id),
    }
}

pub fn object_from(kind: &str, id: i64) -> Option<ObjectRef> {
    match kind {
        "system" => Some(ObjectRef::System),
        "database" => Some(ObjectRef::Database(id)),
        "user" => Some(ObjectRef::User(id)),
        "group" => Some(ObjectRef::Group(id)),
        _ => None,
    }
}

pub fn scope_parts(s: ScopeRef) -> (&'static str, i64) {
    match s {
        ScopeRef::System => ("system", 0),
        ScopeRef::Database(id) => ("database", id),
        ScopeRef::Group(id) => ("group", id),
    }
}

pub fn scope_from(kind: &str, id: i64) -> Option<ScopeRef> {
    match kind {
        "system" => Some(ScopeRef::System),
        "database" => Some(ScopeRef::Database(id)),
        "group" => Some(ScopeRef::Group(id)),
        _ => None,
    }
}

pub fn target_parts(t: AssignmentTarget) -> (&'static str, i64) {
    match t {
        AssignmentTarget::Database(i) => ("database", i),
        AssignmentTarget::ConnectivityPool(i) => ("pool", i),
    }
}

pub fn target_from(kind: &str, id: i64) -> Option<AssignmentTarget> {
    match kind {
        "database" => Some(AssignmentTarget::Database(id)),
        "pool" => Some(AssignmentTarget::ConnectivityPool(id)),
        _ => None,
    }
}
