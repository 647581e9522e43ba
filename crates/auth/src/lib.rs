//! Authentication: who may open a session. Password sign-in (SCRAM-SHA-256 verifiers over the
//! PostgreSQL protocol, cleartext over HTTPS), invalid-attempt lockout, password expiry, the USE
//! check on the target database, and one audit event per attempt.

mod password;

pub use password::{LoginTarget, PasswordAuthenticator, SignInError};
