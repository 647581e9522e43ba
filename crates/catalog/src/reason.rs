//! Reason codes: why a sign-in was refused or a session ended. One enum that the wire errors,
//! the HTTP answers, EXPLAIN AUTHENTICATION, the audit log, the metrics and
//! `sys.authentication_events` all use; each code owns its SQLSTATE and HTTP status here, in
//! one place.

use crate::error::sqlstate;

/// Why a sign-in was refused, or why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    // --- who the client says it is ---
    /// Unknown user or wrong password (the same answer for both).
    BadPassword,
    PasswordExpired,
    /// A disabled user: on the wire the same answer as a wrong password.
    UserDisabled,
    /// Too many wrong passwords from this address lately.
    AddressThrottled,
    NoUser,
    UnknownDatabase,
    UnknownSourceDatabase,
    /// The session's principals do not hold USE on the database.
    NoUsePrivilege,
    // --- which integration ---
    NoIntegration,
    UnknownIntegration,
    IntegrationDisabled,
    // --- the token (OIDC Core 3.1.3.7, RFC 8725, RFC 9068) ---
    TokenFormat,
    TokenAlgorithm,
    TokenKey,
    TokenSignature,
    TokenIssuer,
    TokenAudience,
    TokenAuthorizedParty,
    TokenType,
    TokenTimes,
    TokenNonce,
    TokenClaims,
    /// The integration's allowed/blocked lists or claim rules refused the user.
    Policy,
    // --- the provider and the interactive flows ---
    ProviderDiscovery,
    ProviderTokenEndpoint,
    ProviderDeviceAuthorization,
    /// The provider's userinfo endpoint could not fill in claims an access token lacked.
    ProviderUserinfo,
    /// The provider answered the authorization request with an error.
    ProviderError,
    /// The person denied the device grant, or it expired.
    DeviceGrant,
    UserCode,
    FlowState,
    FlowCode,
    /// The flow was started in another browser.
    FlowBrowser,
    CallbackPath,
    /// Too many pending sign-ins.
    Capacity,
    Renewal,
    /// The database's upstream could not be reached or refused what the sign-in needs.
    Upstream,
    /// An LDAP integration's directory could not be reached, or refused its service account.
    Directory,
    // --- SAML assertions ---
    /// The response is not signed by the IdP's certificate with an allowed algorithm, or what
    /// was read is not what was signed.
    SamlSignature,
    /// A signed assertion meant for someone else or another time: audience, recipient,
    /// destination, issuer, validity window, status.
    SamlConditions,
    /// The response answers no pending sign-in request of this server (or another one).
    SamlRequest,
    /// The assertion was used before.
    SamlReplay,
    // --- sessions that ended ---
    ClientDisconnected,
    SignedOut,
    DatabaseDropped,
    UserDropped,
    PasswordChanged,
    GroupOrRoleDropped,
    UseRevoked,
    IntegrationDropped,
    ConferralWithdrawn,
    TokenExpired,
    RenewalFailed,
    IdleTimeout,
    MaxSessionAge,
    /// An HTTP session's lifetime ran out.
    SessionExpired,
    EndedByAdministrator,
    SessionGone,
    Internal,
}

impl Reason {
    /// Every code, for documentation and tests.
    pub const ALL: &'static [Reason] = &[
        Self::BadPassword,
        Self::PasswordExpired,
        Self::UserDisabled,
        Self::AddressThrottled,
        Self::NoUser,
        Self::UnknownDatabase,
        Self::UnknownSourceDatabase,
        Self::NoUsePrivilege,
        Self::NoIntegration,
        Self::UnknownIntegration,
        Self::IntegrationDisabled,
        Self::TokenFormat,
        Self::TokenAlgorithm,
        Self::TokenKey,
        Self::TokenSignature,
        Self::TokenIssuer,
        Self::TokenAudience,
        Self::TokenAuthorizedParty,
        Self::TokenType,
        Self::TokenTimes,
        Self::TokenNonce,
        Self::TokenClaims,
        Self::Policy,
        Self::ProviderDiscovery,
        Self::ProviderTokenEndpoint,
        Self::ProviderDeviceAuthorization,
        Self::ProviderUserinfo,
        Self::ProviderError,
        Self::DeviceGrant,
        Self::UserCode,
        Self::FlowState,
        Self::FlowCode,
        Self::FlowBrowser,
        Self::CallbackPath,
        Self::Capacity,
        Self::Renewal,
        Self::Upstream,
        Self::Directory,
        Self::SamlSignature,
        Self::SamlConditions,
        Self::SamlRequest,
        Self::SamlReplay,
        Self::ClientDisconnected,
        Self::SignedOut,
        Self::DatabaseDropped,
        Self::UserDropped,
        Self::PasswordChanged,
        Self::GroupOrRoleDropped,
        Self::UseRevoked,
        Self::IntegrationDropped,
        Self::ConferralWithdrawn,
        Self::TokenExpired,
        Self::RenewalFailed,
        Self::IdleTimeout,
        Self::MaxSessionAge,
        Self::SessionExpired,
        Self::EndedByAdministrator,
        Self::SessionGone,
        Self::Internal,
    ];

    /// The code shown in `sys.authentication_events`, the audit log, the metrics and EXPLAIN.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadPassword => "bad_password",
            Self::PasswordExpired => "password_expired",
            Self::UserDisabled => "user_disabled",
            Self::AddressThrottled => "address_throttled",
            Self::NoUser => "no_user",
            Self::UnknownDatabase => "unknown_database",
            Self::UnknownSourceDatabase => "unknown_source_database",
            Self::NoUsePrivilege => "no_use_privilege",
            Self::NoIntegration => "no_integration",
            Self::UnknownIntegration => "unknown_integration",
            Self::IntegrationDisabled => "integration_disabled",
            Self::TokenFormat => "token_format",
            Self::TokenAlgorithm => "token_algorithm",
            Self::TokenKey => "token_key",
            Self::TokenSignature => "token_signature",
            Self::TokenIssuer => "token_issuer",
            Self::TokenAudience => "token_audience",
            Self::TokenAuthorizedParty => "token_azp",
            Self::TokenType => "token_type",
            Self::TokenTimes => "token_times",
            Self::TokenNonce => "token_nonce",
            Self::TokenClaims => "token_claims",
            Self::Policy => "policy",
            Self::ProviderDiscovery => "provider_discovery",
            Self::ProviderTokenEndpoint => "provider_token_endpoint",
            Self::ProviderDeviceAuthorization => "provider_device_authorization",
            Self::ProviderUserinfo => "provider_userinfo",
            Self::ProviderError => "provider_error",
            Self::DeviceGrant => "device_grant",
            Self::UserCode => "user_code",
            Self::FlowState => "flow_state",
            Self::FlowCode => "flow_code",
            Self::FlowBrowser => "flow_browser",
            Self::CallbackPath => "callback_path",
            Self::Capacity => "capacity",
            Self::Renewal => "renewal",
            Self::Upstream => "upstream",
            Self::Directory => "directory",
            Self::SamlSignature => "saml_signature",
            Self::SamlConditions => "saml_conditions",
            Self::SamlRequest => "saml_request",
            Self::SamlReplay => "saml_replay",
            Self::ClientDisconnected => "client_disconnected",
            Self::SignedOut => "signed_out",
            Self::DatabaseDropped => "database_dropped",
            Self::UserDropped => "user_dropped",
            Self::PasswordChanged => "password_changed",
            Self::GroupOrRoleDropped => "group_or_role_dropped",
            Self::UseRevoked => "use_revoked",
            Self::IntegrationDropped => "integration_dropped",
            Self::ConferralWithdrawn => "conferral_withdrawn",
            Self::TokenExpired => "token_expired",
            Self::RenewalFailed => "renewal_failed",
            Self::IdleTimeout => "idle_timeout",
            Self::MaxSessionAge => "max_session_age",
            Self::SessionExpired => "session_expired",
            Self::EndedByAdministrator => "ended_by_administrator",
            Self::SessionGone => "session_gone",
            Self::Internal => "internal",
        }
    }

    /// The name of the check that refuses with this code, as EXPLAIN AUTHENTICATION lists it.
    pub fn check(self) -> &'static str {
        match self {
            Self::IntegrationDisabled | Self::NoIntegration | Self::UnknownIntegration => {
                "integration"
            }
            Self::TokenFormat => "format",
            Self::TokenAlgorithm => "algorithm",
            Self::TokenKey => "key",
            Self::TokenSignature => "signature",
            Self::TokenIssuer => "iss",
            Self::TokenAudience => "aud",
            Self::TokenAuthorizedParty => "azp",
            Self::TokenType => "token type",
            Self::TokenTimes => "times",
            Self::TokenNonce => "nonce",
            Self::TokenClaims => "claims",
            Self::NoUsePrivilege => "database access",
            Self::ProviderDiscovery => "discovery",
            other => other.code(),
        }
    }

    /// Whether this code ends a session (rather than refusing a sign-in).
    pub fn ends_session(self) -> bool {
        matches!(
            self,
            Self::ClientDisconnected
                | Self::SignedOut
                | Self::DatabaseDropped
                | Self::UserDropped
                | Self::PasswordChanged
                | Self::GroupOrRoleDropped
                | Self::UseRevoked
                | Self::IntegrationDropped
                | Self::ConferralWithdrawn
                | Self::TokenExpired
                | Self::RenewalFailed
                | Self::IdleTimeout
                | Self::MaxSessionAge
                | Self::SessionExpired
                | Self::EndedByAdministrator
                | Self::SessionGone
        )
    }

    /// The SQLSTATE of the FATAL (or error) a PostgreSQL client gets.
    pub fn sqlstate(self) -> &'static str {
        match self {
            Self::BadPassword | Self::PasswordExpired | Self::UserDisabled => {
                sqlstate::INVALID_PASSWORD
            }
            Self::UnknownDatabase | Self::UnknownSourceDatabase => sqlstate::INVALID_CATALOG_NAME,
            Self::ProviderDiscovery
            | Self::ProviderDeviceAuthorization
            | Self::ProviderUserinfo
            | Self::Upstream
            | Self::Directory => "08001",
            Self::Capacity => "53300",
            Self::CallbackPath => sqlstate::INVALID_PARAMETER_VALUE,
            Self::Internal => sqlstate::INTERNAL_ERROR,
            // Like PostgreSQL's "terminating connection due to administrator command".
            r if r.ends_session() => "57P01",
            _ => sqlstate::INVALID_AUTHORIZATION,
        }
    }

    /// The HTTP status of the answer.
    pub fn http_status(self) -> u16 {
        match self {
            Self::UnknownDatabase | Self::UnknownSourceDatabase | Self::UserCode => 404,
            Self::NoUsePrivilege | Self::ProviderError => 403,
            Self::AddressThrottled => 429,
            Self::Capacity => 503,
            Self::ProviderDiscovery
            | Self::ProviderDeviceAuthorization
            | Self::ProviderUserinfo
            | Self::Upstream
            | Self::Directory => 502,
            Self::CallbackPath | Self::FlowState | Self::FlowCode | Self::FlowBrowser => 400,
            Self::Internal => 500,
            _ => 401,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Reason {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.iter().copied().find(|r| r.code() == s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_reads_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()), "{} twice", r.code());
            assert_eq!(r.code().parse::<Reason>(), Ok(*r));
            assert_eq!(r.sqlstate().len(), 5);
            assert!((400..600).contains(&r.http_status()));
        }
        // Every variant is listed (a new one added only to the match fails here).
        assert_eq!(Reason::ALL.len(), Reason::Internal as usize + 1);
    }

    #[test]
    fn a_disabled_user_answers_like_a_wrong_password() {
        assert_eq!(
            Reason::UserDisabled.sqlstate(),
            Reason::BadPassword.sqlstate()
        );
        assert_eq!(
            Reason::UserDisabled.http_status(),
            Reason::BadPassword.http_status()
        );
    }
}
