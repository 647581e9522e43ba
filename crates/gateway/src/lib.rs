//! The gateway to upstream PostgreSQL databases. A database bound to an upstream
//! (`CREATE DATABASE … UPSTREAM 'postgresql://…'`) is checked here before the binding is
//! stored: the upstream answers, its administrator's password is right, and the role may
//! create roles and manage that database (CREATEROLE, and ownership of it or CREATE WITH GRANT
//! OPTION) — superuser is not needed. Role provisioning and the session relay build on this.

mod connect;

use portcullis_catalog::upstream::{not_allowed, unreachable, UpstreamChecker, UpstreamUrl};
use portcullis_catalog::CatalogError;

pub use connect::connect;

/// Speaks to upstreams as their administrator.
#[derive(Debug, Default)]
pub struct Gateway;

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
