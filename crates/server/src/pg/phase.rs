//! Where one connection is in its life — one state, behind one lock: starting, in the middle of
//! a sign-in (SCRAM, a token in a password message, a directory's password, SASL OAUTHBEARER,
//! an interactive flow),
//! signed in, or closed.

use std::sync::Arc;

use portcullis_auth::LoginTarget;
use portcullis_catalog::{EndReason, Session};
use tokio::sync::watch;

use portcullis_gateway::session::UpstreamSession;

use super::interactive::Waiting;
use super::PendingToken;

/// A SASL OAUTHBEARER exchange.
#[derive(Debug, Clone)]
pub struct OAuthExchange {
    /// The startup user name (named in the failure message, as PostgreSQL does; never the
    /// identity: that comes from the token).
    pub user: String,
    pub database: String,
    pub integration: Option<String>,
    /// The challenge sent for discovery or a refused token.
    pub challenge: String,
    /// Set once the challenge was sent: the client must answer `\x01`, then the sign-in fails
    /// with this sentence.
    pub refused: Option<String>,
}

/// The one state of a connection.
#[derive(Default)]
pub enum Phase {
    /// No sign-in has begun.
    #[default]
    Starting,
    /// SCRAM-SHA-256 against this target's verifier (or its decoy); `initial` while the
    /// client's first message (a SASLInitialResponse) is awaited.
    Password { target: LoginTarget, initial: bool },
    /// Waiting for the password message that carries a token.
    Token(PendingToken),
    /// Waiting for a cleartext password for a database whose integration is an LDAP
    /// directory: the target's own verifier checks a catalog user, the directory anyone else.
    Directory(LoginTarget),
    /// SASL OAUTHBEARER.
    OAuth(OAuthExchange),
    /// An interactive sign-in waiting for the person (the connection loop takes it).
    Interactive(Waiting),
    /// Signed in. `ended` learns why the session ended (subscribed on first use). In a
    /// database bound to an upstream, `upstream` is the person's own session there until the
    /// connection loop takes it to relay to.
    SignedIn {
        session: Arc<Session>,
        ended: Option<watch::Receiver<Option<EndReason>>>,
        upstream: Option<Box<UpstreamSession>>,
    },
    /// The connection closed its session.
    Closed,
    /// Accepted beyond `max_connections`: a cancel request is still served (as PostgreSQL's
    /// postmaster does); a startup gets `FATAL 53300`, like PostgreSQL's "too many clients".
    OverLimit,
}

impl Phase {
    pub fn session(&self) -> Option<&Arc<Session>> {
        match self {
            Self::SignedIn { session, .. } => Some(session),
            _ => None,
        }
    }
}
