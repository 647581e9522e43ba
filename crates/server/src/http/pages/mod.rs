//! Server-rendered web pages: sign-in with the IdP chooser (seed 002), the session page,
//! and for administrators the integrations and live sessions and a small SQL console. No
//! inline script or style, so the Content-Security-Policy can forbid both.

pub mod admin;
pub mod assets;
pub mod session;
pub mod signin;
pub mod terminal;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Portcullis</title><link rel=\"stylesheet\" href=\"/ui/style.css\"></head>\
         <body><header><a class=\"brand\" href=\"/ui/session\">Portcullis</a></header>\
         <main>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// A page with a status code.
pub fn respond(status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(page(title, body))).into_response()
}

/// A message page (errors, signed out, session ended) with a link to sign in again.
pub fn message(status: StatusCode, title: &str, text: &str, database: &str) -> Response {
    respond(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"message\" id=\"message\">{}</p>\
             <p><a id=\"signin-again\" href=\"/ui/signin?database={}\">Sign in</a></p>",
            esc(title),
            esc(text),
            esc(&url_encode(database))
        ),
    )
}

/// Percent-encodes a query parameter value.
pub fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
