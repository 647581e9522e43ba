//! Authentication: who may open a session. Password sign-in (SCRAM-SHA-256 verifiers over the
//! PostgreSQL protocol, cleartext over HTTPS), invalid-attempt lockout, password expiry, the USE
//! check on the target database; SSO sign-in with OpenID Connect tokens (provider metadata and
//! keys, token validation, claim policy); and one audit event per attempt.

pub mod oidc;
mod password;
mod sso;

pub use password::{LoginTarget, PasswordAuthenticator, SignInError};
pub use sso::{SsoAuthenticator, SsoError, TokenSignIn};
