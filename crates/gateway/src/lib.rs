//! The gateway to upstream PostgreSQL databases. A database bound to an upstream
//! (`CREATE DATABASE … UPSTREAM 'postgresql://…'`) is checked here before the binding is
//! stored: the upstream answers, its administrator's password is right, and the role may
//! create roles and manage that database (CREATEROLE, and ownership of it or CREATE WITH GRANT
//! OPTION) — superuser is not needed. Each signed-in person gets their own upstream role
//! ([`roles`]); the session relay builds on this.

mod connect;
pub mod creator;
pub mod flow;
mod mirror;
pub mod pool;
pub mod roles;
pub mod session;

use portcullis_catalog::upstream::{not_allowed, unreachable, UpstreamChecker, UpstreamUrl};
use portcullis_catalog::CatalogError;

pub use connect::connect;

/// Speaks to upstreams as their administrator, and keeps the idle sessions of their people.
#[derive(Default)]
pub struct Gateway {
    pool: std::sync::Arc<pool::Pool>,
}

impl Gateway {
    pub fn new(settings: pool::PoolSettings) -> Self {
        Self {
            pool: std::sync::Arc::new(pool::Pool::new(settings)),
        }
    }

    /// The person's own session upstream, for a session that signed in to a bound database
    /// (`None` for a database without an upstream): an idle one of theirs if their role already
    /// holds exactly this session's memberships, else their role is provisioned first (see
    /// [`roles`]) and an idle session taken or a new one logged in.
    pub async fn open_session(
        &self,
        catalog: &portcullis_catalog::Catalog,
        session: &portcullis_catalog::Session,
    ) -> Result<Option<Box<session::UpstreamSession>>, CatalogError> {
        let Some((url, groups)) = wanted(catalog, session)? else {
            return Ok(None);
        };
        let mut up = self.take_or_log_in(url, groups, session).await?;
        up.creator.groups = creator_groups(catalog, session);
        Ok(Some(up))
    }

    async fn take_or_log_in(
        &self,
        url: UpstreamUrl,
        groups: Vec<String>,
        session: &portcullis_catalog::Session,
    ) -> Result<Box<session::UpstreamSession>, CatalogError> {
        let key = pool::Key {
            upstream: url.display(),
            role: session.user.clone(),
            application: session.application.clone(),
        };
        if self.pool.provisioned_with(&key, &groups) {
            if let Some(up) = self.pool.take(&key) {
                return Ok(up);
            }
        }
        let login = roles::provision(&url, &session.user, &groups).await?;
        // Noted while the person is still locked upstream (`login` holds the lock).
        self.pool.note_provisioned(&key, groups);
        if let Some(up) = self.pool.take(&key) {
            return Ok(up);
        }
        metrics::counter!("portcullis_upstream_pool_total", "result" => "new").increment(1);
        let up = session::connect(&url, &login, session.application.as_deref()).await?;
        Ok(Box::new(up))
    }

    /// Takes back a session whose client is done: kept for the person's next sign-in if it
    /// was left at rest (and is reset), closed otherwise.
    pub fn give_back(&self, up: Box<session::UpstreamSession>) {
        self.pool.give_back(up);
    }

    /// Closes sessions idle too long (called every second).
    pub fn reap(&self) {
        self.pool.reap();
    }

    /// Idle upstream sessions held.
    pub fn idle_sessions(&self) -> usize {
        self.pool.idle_count()
    }
}

#[async_trait::async_trait]
impl UpstreamChecker for Gateway {
    async fn check(&self, url: &UpstreamUrl) -> Result<(), CatalogError> {
        let client = connect(url).await?;
        let row = client
            .query_one(
                "SELECT r.rolcreaterole, r.rolsuper, d.datdba = r.oid, \
                 pg_catalog.has_database_privilege(r.oid, d.oid, 'CREATE WITH GRANT OPTION') \
                 FROM pg_catalog.pg_roles r, pg_catalog.pg_database d \
                 WHERE r.rolname = current_user AND d.datname = current_database()",
                &[],
            )
            .await
            .map_err(|e| unreachable(format!("the checks could not run: {e}")))?;
        let (createrole, superuser, owner, grant_option): (bool, bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !createrole && !superuser {
            return Err(not_allowed(format!(
                "role \"{}\" needs CREATEROLE to manage the roles of signed-in users \
                 (ALTER ROLE {} CREATEROLE)",
                url.user, url.user
            )));
        }
        if !owner && !grant_option && !superuser {
            return Err(not_allowed(format!(
                "role \"{}\" must own database \"{}\" or hold CREATE on it WITH GRANT OPTION \
                 (ALTER DATABASE {} OWNER TO {})",
                url.user, url.database, url.database, url.user
            )));
        }
        if superuser {
            tracing::warn!(upstream = %url.display(), "the upstream administrator is a superuser; CREATEROLE and ownership of the database are enough");
        }
        Ok(())
    }
}

/// The upstream roles of an SSO session's groups (the creator-group rule picks among them);
/// none for a password user, who owns what they create.
fn creator_groups(
    catalog: &portcullis_catalog::Catalog,
    session: &portcullis_catalog::Session,
) -> Vec<String> {
    let Some(sso) = &session.sso else {
        return Vec::new();
    };
    let state = catalog.state();
    sso.groups
        .iter()
        .filter_map(|id| state.group_by_id(*id))
        .map(|g| format!("{}@{}", g.name, state.database_name(g.database_id)))
        .collect()
}

/// The upstream of the session's database and the upstream roles of the groups and roles the
/// session acts through (sorted): `None` for a database without an upstream.
fn wanted(
    catalog: &portcullis_catalog::Catalog,
    session: &portcullis_catalog::Session,
) -> Result<Option<(UpstreamUrl, Vec<String>)>, CatalogError> {
    let state = catalog.state();
    let Some(binding) = state
        .snap
        .upstreams
        .iter()
        .find(|u| u.database_id == session.database_id)
    else {
        return Ok(None);
    };
    let password = catalog.unseal(
        &portcullis_catalog::upstream::seal_context(binding.database_id),
        &binding.sealed_password,
    )?;
    let url = UpstreamUrl::with_password(&binding.url, &password)?;
    let (group_ids, role_ids) = match &session.sso {
        Some(sso) => (sso.groups.clone(), sso.roles.clone()),
        None => {
            let groups: Vec<i64> = state
                .groups_of(session.user_id)
                .iter()
                .map(|g| g.id)
                .collect();
            let roles = state
                .roles_of(&[portcullis_store::PrincipalRef::User(session.user_id)])
                .iter()
                .map(|r| r.id)
                .collect();
            (groups, roles)
        }
    };
    let mut names: Vec<String> = group_ids
        .iter()
        .filter_map(|id| state.group_by_id(*id))
        .map(|g| format!("{}@{}", g.name, state.database_name(g.database_id)))
        .chain(
            role_ids
                .iter()
                .filter_map(|id| state.role_by_id(*id))
                .map(|r| format!("{}@{}", r.name, state.database_name(r.database_id))),
        )
        .collect();
    names.sort();
    names.dedup();
    Ok(Some((url, names)))
}
