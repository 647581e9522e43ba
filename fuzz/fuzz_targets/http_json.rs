//! Fuzz target: the JSON bodies of the HTTP API, POSTed to each endpoint that reads one (the
//! first byte picks the endpoint). Whatever the body, the answer is a complete HTTP response
//! and never a 5xx.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

const ENDPOINTS: &[&str] = &[
    "/v1/login",
    "/v1/sso_token",
    "/v1/sso_authentication",
    "/v1/sso_device_grant",
    "/v1/sso_device_grant_verify",
    "/v1/execute/system",
    "/sso/v1/sdk/idp",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = ENDPOINTS[usize::from(pick) % ENDPOINTS.len()];
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let answer = common::exchange(common::SERVER.http, &request, false);
    let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: not an HTTP response: {head:?}"));
    assert!(
        status < 500,
        "{path}: {status} for body {:?}",
        String::from_utf8_lossy(body)
    );
});
