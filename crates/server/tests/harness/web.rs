//! A small HTTP client for browser-flow tests without a browser: curl with a cookie jar that
//! honours cookie paths, redirects not followed (each hop is visible), or followed until the
//! next hop would leave the provider.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

pub struct Web {
    dir: tempfile::TempDir,
    /// Extra curl arguments (`-k` for the dev certificate).
    pub extra: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Lower-case names; repeated headers joined with "\n".
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn location(&self) -> &str {
        self.header("location")
    }
}

impl Default for Web {
    fn default() -> Self {
        Self::new()
    }
}

impl Web {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            extra: Vec::new(),
        }
    }

    fn jar(&self) -> PathBuf {
        self.dir.path().join("jar")
    }

    /// Forgets every cookie (another browser).
    pub fn clear_cookies(&self) {
        let _ = std::fs::remove_file(self.jar());
    }

    fn run(&self, args: &[&str], url: &str) -> Resp {
        let headers = self.dir.path().join("headers");
        let body = self.dir.path().join("body");
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-c"])
            .arg(self.jar())
            .arg("-b")
            .arg(self.jar())
            .arg("-D")
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(["-w", "%{http_code}"])
            .args(&self.extra)
            .args(args)
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let mut map: HashMap<String, String> = HashMap::new();
        for line in std::fs::read_to_string(&headers).unwrap().lines() {
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().to_owned();
                map.entry(k)
                    .and_modify(|e| {
                        e.push('\n');
                        e.push_str(&v);
                    })
                    .or_insert(v);
            }
        }
        Resp {
            status,
            headers: map,
            body: std::fs::read_to_string(&body).unwrap_or_default(),
        }
    }

    pub fn get(&self, url: &str) -> Resp {
        self.run(&[], url)
    }

    pub fn post_json(&self, url: &str, body: &serde_json::Value) -> Resp {
        let b = body.to_string();
        self.run(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                &b,
            ],
            url,
        )
    }

    /// POSTs JSON with extra headers (`"Authorization: Bearer …"`, `"Origin: …"`).
    pub fn post_json_with(&self, url: &str, body: &serde_json::Value, headers: &[&str]) -> Resp {
        let b = body.to_string();
        let mut args = vec!["-X", "POST", "-H", "Content-Type: application/json"];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.extend(["--data", &b]);
        self.run(&args, url)
    }

    /// GETs with extra headers.
    pub fn get_with(&self, url: &str, headers: &[&str]) -> Resp {
        let mut args = Vec::new();
        for h in headers {
            args.extend(["-H", *h]);
        }
        self.run(&args, url)
    }

    pub fn post_raw(&self, url: &str, content_type: &str, body: &str) -> Resp {
        let ct = format!("Content-Type: {content_type}");
        self.run(&["-X", "POST", "-H", &ct, "--data-binary", body], url)
    }

    pub fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Resp {
        self.post_form_with(url, fields, &[])
    }

    /// POSTs a form with extra headers (`"Sec-Fetch-Site: same-origin"`, …).
    pub fn post_form_with(&self, url: &str, fields: &[(&str, &str)], headers: &[&str]) -> Resp {
        let mut args: Vec<String> = vec!["-X".into(), "POST".into()];
        for h in headers {
            args.push("-H".into());
            args.push((*h).to_owned());
        }
        for (k, v) in fields {
            args.push("--data-urlencode".into());
            args.push(format!("{k}={v}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs, url)
    }

    /// Follows redirects from `url` until one points at `stop_prefix` (the server's callback);
    /// answers that URL without requesting it.
    pub fn follow_until(&self, url: &str, stop_prefix: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..20 {
            if next.starts_with(stop_prefix) {
                return next;
            }
            let r = self.get(&next);
            assert!(
                (300..400).contains(&r.status),
                "expected a redirect from {next}, got {}: {}",
                r.status,
                r.body
            );
            next = resolve(&next, r.location());
        }
        panic!("too many redirects from {url}");
    }
}

/// Resolves a Location against the URL it came from.
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let scheme_end = base.find("://").unwrap() + 3;
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}{location}", &base[..origin_end])
}

/// A query parameter of a URL (decoded).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url_decode_pairs(query)
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces one query parameter's value in a URL.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", parts.join("&"))
}

/// The value of the form field `name` in an HTML page (panics if there is none).
pub fn field_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}
