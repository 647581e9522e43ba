//! The pages' stylesheet and the console's script, served from the binary.

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2330; background: #f5f6f8; }
header { background: #1d2330; padding: .8rem 1.5rem; }
header .brand { color: #fff; font-weight: 600; text-decoration: none; letter-spacing: .03em; }
main { max-width: 52rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem;
       border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
main.wide { max-width: 72rem; }
.muted { color: #5b6474; font-size: .85rem; }
.card { border: 1px solid #e3e6eb; border-radius: 6px; padding: .6rem 1rem; margin: .8rem 0; }
.card h3 { font-size: 1rem; margin: .2rem 0 .6rem; }
.tag { font-size: .75rem; font-weight: 500; padding: .1rem .45rem; border-radius: 9px;
       background: #e8ebf1; color: #3a4352; margin-left: .3rem; }
.tag.on { background: #e3f4ec; color: #1d7a55; } .tag.off { background: #fdecec; color: #c62828; }
td code { font-size: .8rem; }
td { overflow-wrap: anywhere; } td.nowrap { white-space: nowrap; overflow-wrap: normal; }
button.danger { background: #c62828; margin-top: 0; padding: .3rem .7rem; font-size: .85rem; }
h1 { font-size: 1.4rem; margin-top: 0; }
h2 { font-size: 1.1rem; margin-top: 1.8rem; }
dl { display: grid; grid-template-columns: 11rem 1fr; gap: .4rem 1rem; }
dt { color: #5b6474; } dd { margin: 0; font-family: ui-monospace, monospace; }
form.inline { display: inline; }
fieldset { border: 1px solid #d6dae1; border-radius: 6px; margin: 1rem 0; padding: 1rem; }
label { display: block; margin: .4rem 0 .1rem; }
input[type=text], input[type=password], textarea { width: 100%; box-sizing: border-box;
       padding: .4rem; border: 1px solid #c3c8d1; border-radius: 4px; font: inherit; }
textarea { font-family: ui-monospace, monospace; min-height: 5rem; }
button { margin-top: .7rem; padding: .45rem 1rem; border: 0; border-radius: 4px;
       background: #2f5bd3; color: #fff; font: inherit; cursor: pointer; }
button.idp { display: block; width: 100%; text-align: left; background: #1d7a55; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin-top: .6rem; }
th, td { border-bottom: 1px solid #e3e6eb; padding: .3rem .4rem; text-align: left; vertical-align: top; }
.message { padding: .6rem .8rem; background: #fff4e5; border-left: 4px solid #e69500; }
.error { padding: .6rem .8rem; background: #fdecec; border-left: 4px solid #c62828; }
nav a { margin-right: 1rem; }
"#;

const CONSOLE_JS: &str = r#"
'use strict';
// Runs one statement through /v1/execute with the session cookie and shows the rows.
const form = document.getElementById('console');
const out = document.getElementById('result');
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const database = form.dataset.database;
  const statement = document.getElementById('statement').value;
  out.textContent = 'running…';
  const res = await fetch('/v1/execute/' + encodeURIComponent(database), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify({ statement }),
  });
  const body = await res.json();
  out.textContent = '';
  if (!res.ok) {
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = body.status ? `${body.status.sql_state}: ${body.status.reason}` : res.statusText;
    out.appendChild(p);
    return;
  }
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  for (const c of body.columns || []) head.insertCell().outerHTML = '<th></th>';
  (body.columns || []).forEach((c, i) => { head.cells[i].textContent = c.name; });
  const tbody = table.createTBody();
  for (const row of body.data || []) {
    const tr = tbody.insertRow();
    for (const v of row) tr.insertCell().textContent = v === null ? '' : String(v);
  }
  const p = document.createElement('p');
  p.textContent = body.status.reason;
  out.appendChild(p);
  if ((body.columns || []).length) out.appendChild(table);
});
"#;

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE)
}

pub async fn console_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CONSOLE_JS,
    )
}

/// Submits the page's form at once: the SAML assertion consumer service's second, same-site
/// POST (a browser without scripts gets a button).
const CONTINUE_JS: &str = "document.getElementById('continue').submit();\n";

pub async fn continue_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CONTINUE_JS,
    )
}
