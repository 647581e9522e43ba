//! Claim policy (seed 003 "User Access Control … with SSO", "User Claim Identifiers"): who the
//! user is, which provider groups and roles the token carries, whether the allowed / blocked
//! lists admit them, and which catalog groups and roles they map to. Pure functions.

use portcullis_catalog::sso::SsoProperties;
use serde_json::{Map, Value};

/// What the policy decided for one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub identity: String,
    pub provider_groups: Vec<String>,
    pub provider_roles: Vec<String>,
    /// Catalog groups to resolve: names from the token (only ever looked up unqualified in
    /// the integration's own database) or targets an administrator configured.
    pub groups: Vec<Target>,
    /// Catalog roles to resolve, likewise.
    pub roles: Vec<Target>,
    /// The default group was used because no provider group mapped.
    pub used_default_group: bool,
}

/// A catalog name the policy wants resolved, and who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A name that came in the token (no mapping configured): it may only stand for a group or
    /// role of the integration's own database, unqualified, never a built-in administrator role.
    FromToken(String),
    /// A name an administrator wrote (a mapping target or the default group), checked against
    /// the writer's privileges when written and again at every sign-in.
    Configured(String),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Self::FromToken(n) | Self::Configured(n) => n,
        }
    }
}

/// How group names compare (catalog group lookup falls back to lower case): case-insensitively.
pub fn fold_group(name: &str) -> String {
    name.trim().to_lowercase()
}

/// How role names compare (as catalog role lookup does): case-insensitively, spaces read as
/// underscores.
pub fn fold_role(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "_")
}

/// The user's identity: the configured `user_id_claims` joined by `::`, or by default the
/// `email` claim, else `iss::sub`.
pub fn identity(props: &SsoProperties, claims: &Map<String, Value>) -> Result<String, String> {
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    if props.user_id_claims.is_empty() {
        if let Some(email) = text("email") {
            return Ok(email);
        }
        return match (text("iss"), text("sub")) {
            (Some(iss), Some(sub)) => Ok(format!("{iss}::{sub}")),
            _ => Err("the token has neither an email claim nor iss and sub".into()),
        };
    }
    let mut parts = Vec::with_capacity(props.user_id_claims.len());
    for name in &props.user_id_claims {
        match text(name) {
            Some(v) => parts.push(v),
            None => {
                return Err(format!(
                    "claim \"{name}\" named by user_id_claims is missing from the token"
                ))
            }
        }
    }
    Ok(parts.join("::"))
}

/// The values of the named claims: a string or number, or a list of them (numbers count as
/// their decimal text, so a numeric group id can be blocked or mapped; other values are
/// ignored).
pub fn claim_values(claims: &Map<String, Value>, names: &[String]) -> Vec<String> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let values: Vec<String> = match claims.get(name) {
            Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
            Some(v) => scalar(v).into_iter().collect(),
            None => Vec::new(),
        };
        for s in values {
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Maps provider names through a mapping; with no mapping configured, a provider name stands
/// for the catalog object of the same name (resolved only inside the integration's database).
fn map_names(
    provider: &[String],
    mapping: &std::collections::BTreeMap<String, String>,
) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for p in provider {
        let target = if mapping.is_empty() {
            Some(Target::FromToken(p.clone()))
        } else {
            mapping.get(p).map(|t| Target::Configured(t.clone()))
        };
        if let Some(t) = target {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Whether `name` is in `list` when both are compared with `fold`.
fn listed(list: &[String], name: &str, fold: fn(&str) -> String) -> bool {
    let name = fold(name);
    list.iter().any(|x| fold(x) == name)
}

/// Applies the integration's policy to validated claims. `Err` is the refusal reason.
pub fn decide(props: &SsoProperties, claims: &Map<String, Value>) -> Result<Decision, String> {
    let identity = identity(props, claims)?;
    let provider_groups = claim_values(claims, &props.groups_claim_ids);
    let provider_roles = claim_values(claims, &props.roles_claim_ids);
    if let Some(g) = provider_groups
        .iter()
        .find(|g| listed(&props.blocked_groups, g, fold_group))
    {
        return Err(format!(
            "provider group \"{g}\" is blocked by the integration"
        ));
    }
    if let Some(r) = provider_roles
        .iter()
        .find(|r| listed(&props.blocked_roles, r, fold_role))
    {
        return Err(format!(
            "provider role \"{r}\" is blocked by the integration"
        ));
    }
    if !props.allowed_groups.is_empty()
        && !provider_groups
            .iter()
            .any(|g| listed(&props.allowed_groups, g, fold_group))
    {
        return Err(format!(
            "the user is in none of the allowed provider groups {:?}",
            props.allowed_groups
        ));
    }
    if !props.allowed_roles.is_empty()
        && !provider_roles
            .iter()
            .any(|r| listed(&props.allowed_roles, r, fold_role))
    {
        return Err(format!(
            "the user has none of the allowed provider roles {:?}",
            props.allowed_roles
        ));
    }
    let mut groups = map_names(&provider_groups, &props.groups_claim_mappings);
    let roles = map_names(&provider_roles, &props.roles_claim_mappings);
    let used_default_group = groups.is_empty();
    if used_default_group {
        groups.push(Target::Configured(props.default_group.clone()));
    }
    Ok(Decision {
        identity,
        provider_groups,
        provider_roles,
        groups,
        roles,
        used_default_group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props() -> SsoProperties {
        SsoProperties {
            issuer: "https://idp".into(),
            client_id: "app".into(),
            default_group: "sso_users".into(),
            ..Default::default()
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn identity_table() {
        let mut p = props();
        let cases = [
            (
                json!({"email": "a@x", "iss": "https://idp", "sub": "1"}),
                Ok("a@x"),
            ),
            (
                json!({"iss": "https://idp", "sub": "00u5"}),
                Ok("https://idp::00u5"),
            ),
            (
                json!({"email": "", "iss": "https://idp", "sub": "2"}),
                Ok("https://idp::2"),
            ),
            (json!({"sub": "2"}), Err(())),
        ];
        for (c, want) in cases {
            let got = identity(&p, &claims(c.clone()));
            match want {
                Ok(w) => assert_eq!(got.as_deref(), Ok(w), "{c}"),
                Err(()) => assert!(got.is_err(), "{c}"),
            }
        }
        p.user_id_claims = vec!["first_name".into(), "last_name".into(), "email".into()];
        let c = claims(
            json!({"first_name": "John", "last_name": "Smith", "email": "jsmith@example.com"}),
        );
        assert_eq!(identity(&p, &c).unwrap(), "John::Smith::jsmith@example.com");
        let c = claims(json!({"first_name": "John", "email": "j@x"}));
        assert!(identity(&p, &c).unwrap_err().contains("last_name"));
    }

    #[test]
    fn mapping_default_group_and_lists() {
        let mut p = props();
        p.groups_claim_ids = vec!["groups".into()];
        p.roles_claim_ids = vec!["user_groups".into()];
        p.roles_claim_mappings = [(
            "Example Provider Group".to_owned(),
            "example_database Analyst".to_owned(),
        )]
        .into();
        let c = claims(
            json!({"email": "a@x", "groups": ["analysts", "x"], "user_groups": "Example Provider Group"}),
        );
        let d = decide(&p, &c).unwrap();
        // no group mapping: the token's names, to be looked up in the integration's database
        assert_eq!(
            d.groups,
            [
                Target::FromToken("analysts".into()),
                Target::FromToken("x".into())
            ]
        );
        assert_eq!(
            d.roles,
            [Target::Configured("example_database Analyst".into())]
        );
        assert!(!d.used_default_group);
        // an explicit mapping maps only what it names; nothing mapped → default group
        p.groups_claim_mappings = [("admins".to_owned(), "dba@sales".to_owned())].into();
        let d = decide(&p, &c).unwrap();
        assert_eq!(d.groups, [Target::Configured("sso_users".into())]);
        assert!(d.used_default_group);
        // allowed / blocked, block wins
        p.allowed_groups = vec!["analysts".into()];
        assert!(decide(&p, &c).is_ok());
        p.blocked_groups = vec!["x".into()];
        assert!(decide(&p, &c).unwrap_err().contains("blocked"));
        p.blocked_groups.clear();
        p.allowed_groups = vec!["finance".into()];
        assert!(decide(&p, &c).unwrap_err().contains("allowed"));
        p.allowed_groups.clear();
        p.allowed_roles = vec!["Example Provider Group".into()];
        assert!(decide(&p, &c).is_ok());
        p.blocked_roles = vec!["Example Provider Group".into()];
        assert!(decide(&p, &c).unwrap_err().contains("role"));
        // a token without the claim: no provider groups, default group, and allowed lists refuse
        p.blocked_roles.clear();
        p.allowed_roles.clear();
        let bare = claims(json!({"email": "b@x"}));
        assert_eq!(
            decide(&p, &bare).unwrap().groups,
            [Target::Configured("sso_users".into())]
        );
    }

    #[test]
    fn lists_compare_as_resolution_does_and_numbers_count() {
        let mut p = props();
        p.groups_claim_ids = vec!["groups".into()];
        p.roles_claim_ids = vec!["roles".into()];
        // a provider group differing only in case is the same catalog group: blocked too
        p.blocked_groups = vec!["admins".into()];
        let c = claims(json!({"email": "a@x", "groups": ["ADMINS"]}));
        assert!(decide(&p, &c).unwrap_err().contains("blocked"));
        // roles compare like role lookup: case and spaces
        p.blocked_groups.clear();
        p.blocked_roles = vec!["database_administrator".into()];
        let c = claims(json!({"email": "a@x", "roles": ["Database Administrator"]}));
        assert!(decide(&p, &c).unwrap_err().contains("blocked"));
        // numeric claim values are strings, in a list or alone
        p.blocked_roles.clear();
        p.blocked_groups = vec!["42".into()];
        let c = claims(json!({"email": "a@x", "groups": [7, 42]}));
        assert!(decide(&p, &c).unwrap_err().contains("42"));
        let c = claims(json!({"email": "a@x", "groups": 42}));
        assert!(decide(&p, &c).is_err());
        assert_eq!(claim_values(&c, &["groups".into()]), ["42"]);
    }
}
