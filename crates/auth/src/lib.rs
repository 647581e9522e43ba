//! Authentication: who may open a session. Password sign-in (SCRAM-SHA-256 verifiers over the
//! PostgreSQL protocol, cleartext over HTTPS), invalid-attempt lockout, password expiry, the USE
//! check on the target database; SSO sign-in with OpenID Connect tokens (provider metadata and
//! keys, token validation, claim policy); browser sign-in with the authorization code flow
//! and its refresh grants; the device grant run by the server; LDAP directories checking user
//! names and passwords; SAML assertions from an IdP; and one audit event per attempt.

mod code_flow;
mod device;
pub mod ldap;
pub mod oidc;
mod password;
pub mod saml;
mod sso;
mod throttle;

pub use code_flow::{
    redirect_uri, Advertised, BeginSignIn, CallbackParams, CodeFlow, Completed, Started,
};
pub use device::{DeviceCode, DeviceFlow, DeviceGrant, DeviceRequest, Poll};
pub use password::{LoginTarget, PasswordAuthenticator, SignInError};
pub use sso::{choose_integration, IntegrationChoice, SsoAuthenticator, SsoError, TokenSignIn};
pub use throttle::{address_key, Throttle};
