//! The test OpenID provider (npm `oidc-provider`, tests/idp) and the rogue issuer, started as
//! real processes on loopback; tokens come from the provider's real endpoints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/idp")
}

/// A node process that prints `<READY> <url>` when it is ready.
pub struct NodeServer {
    child: Child,
    pub url: String,
}

impl NodeServer {
    fn start(script: &str, args: &[&str], ready: &str) -> Self {
        let mut child = Command::new("node")
            .arg(idp_dir().join(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the provider exited before it was ready")
                .unwrap();
            if let Some(url) = line.strip_prefix(ready) {
                break url.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }

    /// The real provider; `keys` persists its signing keys (same file, same keys).
    pub fn provider(port: u16, keys: &Path, rotate: bool) -> Self {
        let port = port.to_string();
        let keys = keys.to_string_lossy().into_owned();
        let mut args = vec!["--port", &port, "--keys", &keys];
        if rotate {
            args.push("--rotate");
        }
        Self::start("idp.mjs", &args, "IDP_READY ")
    }

    /// The real provider with extra arguments (`--redirect-uri URL`, `--dev-interactions`).
    pub fn provider_with(port: u16, keys: &Path, extra: &[&str]) -> Self {
        let port = port.to_string();
        let keys = keys.to_string_lossy().into_owned();
        let mut args = vec!["--port", &port, "--keys", &keys];
        args.extend_from_slice(extra);
        Self::start("idp.mjs", &args, "IDP_READY ")
    }

    pub fn rogue(extra: &[&str]) -> Self {
        let mut args = vec!["--port", "0"];
        args.extend_from_slice(extra);
        Self::start("rogue.mjs", &args, "ROGUE_READY ")
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Approves (or denies) a device grant's user code at the provider's own device pages, as the
/// person at the browser would (tests/idp/device.mjs).
pub fn approve_device(idp: &NodeServer, code: &str, deny: bool) {
    approve_device_at(&idp.url, code, deny);
}

/// [`approve_device`] at the provider of issuer `url`.
pub fn approve_device_at(url: &str, code: &str, deny: bool) {
    let mut cmd = Command::new("node");
    cmd.arg(idp_dir().join("device.mjs")).args([
        "--uri",
        &format!("{url}/device"),
        "--user-code",
        code,
    ]);
    if deny {
        cmd.arg("--deny");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "device.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Tokens from the real provider: `grant` is `code` (with `user`) or `client_credentials`.
pub fn tokens(issuer: &str, client: &str, grant: &str, user: &str) -> serde_json::Value {
    let out = Command::new("node")
        .arg(idp_dir().join("token.mjs"))
        .args([
            "--issuer", issuer, "--client", client, "--grant", grant, "--user", user,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "token.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A token signed by the rogue issuer (see tests/idp/rogue.mjs).
pub fn rogue_sign(
    rogue: &NodeServer,
    key: &str,
    header: serde_json::Value,
    claims: serde_json::Value,
) -> String {
    let body = serde_json::json!({"header": header, "claims": claims, "key": key});
    rogue_post(rogue, "/sign", body)
}

/// An RS256 ID token of the rogue issuer for `app`: `sub`, email `<sub>@example.com`, expiring
/// in `exp_in` seconds, with any `extra` claims.
pub fn rogue_id_token(
    rogue: &NodeServer,
    sub: &str,
    exp_in: i64,
    extra: serde_json::Value,
) -> String {
    let n = super::now();
    let mut claims = serde_json::json!({"iss": rogue.url, "aud": "app", "sub": sub,
        "email": format!("{sub}@example.com"), "exp": n + exp_in, "iat": n});
    if let (Some(c), serde_json::Value::Object(more)) = (claims.as_object_mut(), extra) {
        c.extend(more);
    }
    rogue_sign(
        rogue,
        "rogue-rs",
        serde_json::json!({"alg": "RS256", "kid": "rogue-rs", "typ": "JWT"}),
        claims,
    )
}

/// POSTs JSON to a rogue endpoint; returns the body.
pub fn rogue_post(rogue: &NodeServer, path: &str, body: serde_json::Value) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
        ])
        .arg(body.to_string())
        .arg(format!("{}{path}", rogue.url))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {path} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Picks a free loopback port (for a provider that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Integration `rogue_sso` of `example_database` on the rogue issuer (default group analysts),
/// assigned to the database (only assigned integrations sign anyone in), whose device grant
/// answers each poll with the next of `answers` ("token" signs in as device@example.com): the
/// statements, as admin@system runs them in `example_database`.
fn rogue_device_sql(rogue: &NodeServer) -> [String; 2] {
    [
        format!(
            "CREATE SSO INTEGRATION IF NOT EXISTS rogue_sso PROTOCOL oidc issuer = \"{}\", \
             client_id = \"rogue-client\", default_group = analysts",
            rogue.url
        ),
        "ALTER DATABASE example_database SET SSO INTEGRATION rogue_sso".into(),
    ]
}

/// Scripts the rogue issuer's device grant to answer each poll with the next of `answers`.
fn script_rogue_device(rogue: &NodeServer, answers: &[&str]) {
    let now = super::now();
    rogue_post(
        rogue,
        "/device/script",
        serde_json::json!({
            "answers": answers,
            "claims": {"iss": rogue.url, "aud": "rogue-client", "sub": "device-1",
                       "email": "device@example.com", "iat": now, "exp": now + 600}
        }),
    );
}

/// [`rogue_device_sql`] and [`script_rogue_device`], through psql (the binary).
pub fn rogue_device_integration(server: &super::Server, rogue: &NodeServer, answers: &[&str]) {
    let sql = rogue_device_sql(rogue);
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        super::ADMIN_PASSWORD,
        &[&sql[0], &sql[1]],
    );
    assert!(ok, "{err}");
    script_rogue_device(rogue, answers);
}

/// [`rogue_device_integration`] on a server in the test's process.
pub async fn rogue_device_integration_in(
    server: &super::inprocess::InProcess,
    rogue: &NodeServer,
    answers: &[&str],
) {
    let sql = rogue_device_sql(rogue);
    let (ok, _, err) = server
        .sql(
            "admin@system",
            "example_database",
            super::ADMIN_PASSWORD,
            &[&sql[0], &sql[1]],
        )
        .await;
    assert!(ok, "{err}");
    tokio::task::block_in_place(|| script_rogue_device(rogue, answers));
}

/// The statement that gives `example_database` its own integration on the rogue issuer
/// (client `app`, `default_group`); `extra` is appended to its properties (`, name = value …`).
fn rogue_example_sql(rogue: &NodeServer, default_group: &str, extra: &str) -> String {
    format!(
        "ALTER DATABASE example_database SET SSO INTEGRATION oidc issuer = \"{}\", \
         client_id = app, default_group = {default_group}{extra}",
        rogue.url
    )
}

/// [`rogue_example_sql`], run by admin@system (psql, the binary).
pub fn rogue_example_integration(
    server: &super::Server,
    rogue: &NodeServer,
    default_group: &str,
    extra: &str,
) {
    let sql = rogue_example_sql(rogue, default_group, extra);
    let (ok, _, err) = server.psql(
        "admin@system",
        "example_database",
        super::ADMIN_PASSWORD,
        &[&sql],
    );
    assert!(ok, "{err}");
}

/// [`rogue_example_sql`], run by admin@system on a server in the test's process.
pub async fn rogue_example_integration_in(
    server: &super::inprocess::InProcess,
    rogue: &NodeServer,
    default_group: &str,
    extra: &str,
) {
    let sql = rogue_example_sql(rogue, default_group, extra);
    let (ok, _, err) = server
        .sql(
            "admin@system",
            "example_database",
            super::ADMIN_PASSWORD,
            &[&sql],
        )
        .await;
    assert!(ok, "{err}");
}
