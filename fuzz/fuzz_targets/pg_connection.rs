//! Fuzz target: any bytes a client may send first on the PostgreSQL listener — SSLRequest,
//! GSSENCRequest, CancelRequest, startup packets, password, SASL (SCRAM, OAUTHBEARER) and
//! over-long messages — through the real connection loop of a running server. No panic in any
//! task, and the server always answers or closes (never waits on a client that has gone).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = common::exchange(common::SERVER.sql, data, true);
});
