//! `EXPLAIN AUTHENTICATION FOR USER 'alice' [DATABASE d]`: what the database's LDAP integration
//! makes of a user without a password — which directory entry, which groups (by CN and DN),
//! which catalog groups and roles the mappings give, and whether USE would pass. Only the
//! database's administrators may ask (it reads the directory with the service account).

use portcullis_catalog::privileges::session_principals;
use portcullis_catalog::{CatalogError, QueryResult, Reason, Session};

use super::as_claims;
use super::directory::DirectoryError;
use crate::oidc::policy;
use crate::oidc::validate::Trace;
use crate::sso::{admit, choose_integration, explained, IntegrationChoice};
use crate::{SsoAuthenticator, SsoError};

impl SsoAuthenticator {
    pub async fn explain_directory_user(
        &self,
        session: &Session,
        user: &str,
        database: Option<&str>,
    ) -> Result<QueryResult, CatalogError> {
        let database = database.unwrap_or(&session.database).to_owned();
        let state = self.catalog().state();
        let principals = session_principals(&state, session);
        let administers =
            |id: i64| portcullis_catalog::privileges::administers(&state, &principals, id);
        if !state.database(&database).is_some_and(|d| administers(d.id)) {
            return Err(CatalogError::denied(format!(
                "EXPLAIN AUTHENTICATION FOR USER needs administrator rights on database \
                 \"{database}\""
            )));
        }
        // A system-wide directory is shared by every database it serves: reading any of its
        // users takes administering the integration's own database too.
        let choice = IntegrationChoice {
            source_database: None,
            database: &database,
            integration: None,
            pool_id: None,
        };
        if let Ok(integration) = choose_integration(&state, choice) {
            if !administers(integration.database_id) {
                return Err(CatalogError::denied(format!(
                    "EXPLAIN AUTHENTICATION FOR USER reads the directory of SSO integration \
                     \"{}\", which belongs to database \"{}\": that needs administrator \
                     rights there",
                    integration.name,
                    state.database_name(integration.database_id)
                )));
            }
        }
        let mut trace = Trace::default();
        let result = self.explain_steps(&database, user, &mut trace).await;
        let outcome = match &result {
            Ok(()) => (
                true,
                format!("\"{user}\" would sign in with the right password"),
                None,
            ),
            Err(e) => (false, e.to_string(), Some(e.reason())),
        };
        Ok(explained(trace, outcome))
    }

    async fn explain_steps(
        &self,
        database: &str,
        user: &str,
        trace: &mut Trace,
    ) -> Result<(), SsoError> {
        let state = self.catalog().state();
        let target = state
            .database(database)
            .ok_or_else(|| SsoError::NoDatabase(database.to_owned()))?
            .clone();
        let choice = IntegrationChoice {
            source_database: None,
            database,
            integration: None,
            pool_id: None,
        };
        let integration = choose_integration(&state, choice)?;
        let props = state
            .sso_properties(integration)
            .map_err(|e| SsoError::Internal(e.message))?;
        let Some(directory) = props.ldap.as_ref() else {
            return Err(trace
                .fail(
                    Reason::NoIntegration,
                    format!(
                        "{} is an OpenID Connect integration: explain a token instead",
                        integration.name
                    ),
                )
                .into());
        };
        if props.disabled {
            trace.fail(Reason::IntegrationDisabled, "the integration is disabled");
            return Err(SsoError::Disabled(integration.name.clone()));
        }
        trace.pass(
            Reason::IntegrationDisabled,
            format!(
                "{} (LDAP, {}) of database {}",
                integration.name,
                directory.url,
                state.database_name(integration.database_id)
            ),
        );
        let found = self
            .ask_directory(integration, &props, directory, user, None)
            .await
            .map_err(|e| match e {
                DirectoryError::Credentials(detail) => {
                    SsoError::from(trace.fail(Reason::BadPassword, detail))
                }
                DirectoryError::Unavailable(detail) => {
                    SsoError::from(trace.fail(Reason::Directory, detail))
                }
            })?;
        trace.pass(
            Reason::Directory,
            format!(
                "entry {}; user {}; directory groups {:?}",
                found.dn, found.name, found.groups
            ),
        );
        let (policy_props, claims) = as_claims(&props, directory, &found);
        let decision = policy::decide(&policy_props, &claims)
            .map_err(|reason| SsoError::from(trace.fail(Reason::Policy, reason)))?;
        admit(
            &state,
            &target,
            integration,
            &policy_props,
            &decision,
            portcullis_catalog::Protocol::Postgres,
            trace,
        )?;
        Ok(())
    }
}
