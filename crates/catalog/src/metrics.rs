//! The counters the authentication event log feeds (`/metrics`): sign-ins by method and
//! result (with the reason code of a refusal) and session ends by cause.

use portcullis_store::AuthEventRecord;

use crate::events::SIGN_IN;

/// Sign-in attempts: `method`, `result` (`success`/`failure`), `reason`.
pub const SIGN_INS: &str = "portcullis_sign_ins_total";
/// Session ends: `method`, `cause` (a reason code).
pub const SESSION_ENDS: &str = "portcullis_session_ends_total";

/// How long sign-ins took, by method and result: a token's validation, policy and session;
/// a password's from the startup message to the answer (the client's SCRAM round trip
/// included).
pub const SIGN_IN_SECONDS: &str = "portcullis_sign_in_seconds";

/// Records one sign-in's duration.
pub fn sign_in_took(method: crate::SignInMethod, ok: bool, took: std::time::Duration) {
    metrics::histogram!(SIGN_IN_SECONDS, "method" => method.name(), "result" => if ok { "success" } else { "failure" })
        .record(took.as_secs_f64());
}

pub(crate) fn event(e: &AuthEventRecord) {
    let reason = e.reason.clone().unwrap_or_default();
    if e.kind == SIGN_IN {
        metrics::counter!(SIGN_INS, "method" => e.method.clone(), "result" => e.result.clone(), "reason" => reason)
            .increment(1);
    } else {
        metrics::counter!(SESSION_ENDS, "method" => e.method.clone(), "cause" => reason)
            .increment(1);
    }
}
