//! The counters the authentication event log feeds (`/metrics`): sign-ins by method and
//! result (with the reason code of a refusal) and session ends by cause.

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

/// Counts a sign-in (`reason` empty for a success) or a session end, with static labels (no
/// allocation on the sign-in path).
pub(crate) fn signed_in(method: crate::SignInMethod) {
    metrics::counter!(SIGN_INS, "method" => method.name(), "result" => "success", "reason" => "")
        .increment(1);
}

pub(crate) fn refused(method: crate::SignInMethod, reason: crate::Reason) {
    metrics::counter!(SIGN_INS, "method" => method.name(), "result" => "failure", "reason" => reason.code())
        .increment(1);
}

pub(crate) fn ended(method: crate::SignInMethod, cause: crate::Reason) {
    metrics::counter!(SESSION_ENDS, "method" => method.name(), "cause" => cause.code())
        .increment(1);
}
