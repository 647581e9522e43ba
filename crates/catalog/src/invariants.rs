//! What every catalog satisfies, whatever sequence of changes made it: unique ids and names,
//! and no reference to an object that is not there. Checked after a crash (`crash_safety`
//! test) and by the tests of catalog changes.

use std::collections::HashSet;

use portcullis_store::{AssignmentTarget, ObjectRef, PrincipalRef, ScopeRef, Snapshot};

/// Every way `snap` breaks the rules, in words (empty: none).
pub fn violations(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let mut check_id = |kind: &str, id: i64, out: &mut Vec<String>| {
        if !ids.insert(id) {
            out.push(format!("{kind} {id}: the id is used twice"));
        }
        if id > snap.id_high_water {
            out.push(format!(
                "{kind} {id}: above the id high-water mark {}",
                snap.id_high_water
            ));
        }
    };
    let databases: HashSet<i64> = snap.databases.iter().map(|d| d.id).collect();
    for d in &snap.databases {
        check_id("database", d.id, &mut out);
    }
    unique(
        &mut out,
        "database",
        snap.databases.iter().map(|d| d.name.clone()),
    );
    if !snap.databases.iter().any(|d| d.name == "system") {
        out.push("the system database is missing".into());
    }
    let in_database = |kind: &str, id: i64, database_id: i64, out: &mut Vec<String>| {
        if !databases.contains(&database_id) {
            out.push(format!(
                "{kind} {id}: its database {database_id} is missing"
            ));
        }
    };
    for u in &snap.users {
        check_id("user", u.id, &mut out);
        in_database("user", u.id, u.database_id, &mut out);
    }
    for g in &snap.groups {
        check_id("group", g.id, &mut out);
        in_database("group", g.id, g.database_id, &mut out);
    }
    for r in &snap.roles {
        check_id("role", r.id, &mut out);
        in_database("role", r.id, r.database_id, &mut out);
    }
    for i in &snap.sso_integrations {
        check_id("integration", i.id, &mut out);
        in_database("integration", i.id, i.database_id, &mut out);
    }
    for p in &snap.connectivity_pools {
        check_id("connectivity pool", p.id, &mut out);
    }
    let qualified = |database_id: i64, name: &str| format!("{name}@{database_id}");
    unique(
        &mut out,
        "user",
        snap.users.iter().map(|u| qualified(u.database_id, &u.name)),
    );
    unique(
        &mut out,
        "group",
        snap.groups
            .iter()
            .map(|g| qualified(g.database_id, &g.name)),
    );
    unique(
        &mut out,
        "role",
        snap.roles.iter().map(|r| qualified(r.database_id, &r.name)),
    );
    unique(
        &mut out,
        "integration",
        snap.sso_integrations.iter().map(|i| i.name.clone()),
    );
    unique(
        &mut out,
        "connectivity pool",
        snap.connectivity_pools.iter().map(|p| p.name.clone()),
    );

    let users: HashSet<i64> = snap.users.iter().map(|u| u.id).collect();
    let groups: HashSet<i64> = snap.groups.iter().map(|g| g.id).collect();
    let roles: HashSet<i64> = snap.roles.iter().map(|r| r.id).collect();
    let integrations: HashSet<i64> = snap.sso_integrations.iter().map(|i| i.id).collect();
    let pools: HashSet<i64> = snap.connectivity_pools.iter().map(|p| p.id).collect();
    let principal = |p: PrincipalRef| match p {
        PrincipalRef::User(id) => users.contains(&id),
        PrincipalRef::Group(id) => groups.contains(&id),
        PrincipalRef::Role(id) => roles.contains(&id),
    };
    for m in &snap.group_members {
        if !groups.contains(&m.group_id) || !users.contains(&m.user_id) {
            out.push(format!(
                "membership of user {} in group {}: one is missing",
                m.user_id, m.group_id
            ));
        }
    }
    for m in &snap.role_members {
        if !roles.contains(&m.role_id) || !principal(m.member) {
            out.push(format!(
                "holding of role {} by {:?}: one is missing",
                m.role_id, m.member
            ));
        }
    }
    for g in &snap.grants {
        let object = match g.object {
            ObjectRef::System => true,
            ObjectRef::Database(id) => databases.contains(&id),
            ObjectRef::User(id) => users.contains(&id),
            ObjectRef::Group(id) => groups.contains(&id),
        };
        if !object || !principal(g.grantee) {
            out.push(format!(
                "grant of {} on {:?} to {:?}: one is missing",
                g.privilege, g.object, g.grantee
            ));
        }
    }
    for s in &snap.settings {
        let scope = match s.scope {
            ScopeRef::System => true,
            ScopeRef::Database(id) => databases.contains(&id),
            ScopeRef::Group(id) => groups.contains(&id),
        };
        if !scope {
            out.push(format!(
                "setting {} at {:?}: the scope is missing",
                s.name, s.scope
            ));
        }
    }
    for h in &snap.password_history {
        if !users.contains(&h.user_id) {
            out.push(format!(
                "password history of user {}: the user is missing",
                h.user_id
            ));
        }
    }
    let mut assigned = HashSet::new();
    for a in &snap.sso_assignments {
        let target = match a.target {
            AssignmentTarget::Database(id) => databases.contains(&id),
            AssignmentTarget::ConnectivityPool(id) => pools.contains(&id),
        };
        if !target || !integrations.contains(&a.integration_id) {
            out.push(format!(
                "assignment of integration {} to {:?}: one is missing",
                a.integration_id, a.target
            ));
        }
        if !assigned.insert(a.target) {
            out.push(format!("{:?} has two integrations", a.target));
        }
    }
    for u in &snap.upstreams {
        if !databases.contains(&u.database_id) {
            out.push(format!(
                "upstream of database {}: the database is missing",
                u.database_id
            ));
        }
    }
    out
}

fn unique(out: &mut Vec<String>, kind: &str, names: impl Iterator<Item = String>) {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name.clone()) {
            out.push(format!("{kind} {name}: the name is used twice"));
        }
    }
}
