//! OpenID Connect for a relying party: fetching provider metadata and keys, validating tokens,
//! and the claim policy that turns a token into an identity with groups and roles.

pub mod authorization;
pub mod fetch;
pub mod flows;
pub mod policy;
pub mod provider;
pub mod userinfo;
pub mod validate;
pub mod verified;

pub use provider::ProviderCache;
pub use validate::TokenKind;
