//! A private SAML IdP for a test: Debian's SimpleSAMLphp 1.19 under `php -S` on a loopback
//! port of its own, configured in a temporary directory (a fresh RSA-2048 signing key made by
//! `openssl`, `exampleauth:UserPass` users, the service providers the test names), and a small
//! browser that logs a user in there and reads the form the IdP's page would post.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};

/// The IdP's users: `(name, password, groups)`.
pub const USERS: &[(&str, &str, &[&str])] = &[
    ("alice", "alice-pw", &["analysts", "staff"]),
    ("mallory", "mallory-pw", &["contractors"]),
    ("bob", "bob-pw", &[]),
];

/// A service provider the IdP knows.
pub struct Sp {
    pub entity_id: String,
    /// Its assertion consumer services (the first is the default).
    pub acs: Vec<String>,
    /// `assertion.lifetime` in seconds, when not SimpleSAMLphp's 300.
    pub lifetime: Option<u32>,
}

/// The form the IdP's page posts to a service provider.
#[derive(Debug, Clone)]
pub struct Posted {
    pub action: String,
    pub saml_response: String,
    pub relay_state: Option<String>,
}

pub struct SamlIdp {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn php_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl SamlIdp {
    pub fn start(sps: &[Sp]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "config", "metadata", "cert", "log", "data", "tmp", "sessions",
        ] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            ])
            .arg("/CN=portcullis-test-idp")
            .arg("-keyout")
            .arg(d.join("cert/idp.key"))
            .arg("-out")
            .arg(d.join("cert/idp.crt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed");
        assert!(made.success());
        let port = super::idp::free_port();
        let path = |sub: &str| format!("{}/{sub}/", d.display());
        let config = format!(
            "<?php\n$config = [\n\
             'baseurlpath' => 'http://127.0.0.1:{port}/',\n\
             'certdir' => {cert},\n 'loggingdir' => {log},\n 'datadir' => {data},\n\
             'tempdir' => {tmp},\n 'metadatadir' => {metadata},\n\
             'attributenamemapdir' => '/etc/simplesamlphp/attributemap/',\n\
             'technicalcontact_name' => 'Test', 'technicalcontact_email' => 'test@example.org',\n\
             'secretsalt' => 'portcullis-test-{port}-salt',\n\
             'auth.adminpassword' => 'portcullis-test-admin-{port}',\n\
             'admin.protectindexpage' => false, 'admin.protectmetadata' => false,\n\
             'timezone' => 'UTC',\n\
             'logging.level' => SimpleSAML\\Logger::WARNING,\n\
             'logging.handler' => 'file', 'logging.logfile' => 'simplesamlphp.log',\n\
             'enable.saml20-idp' => true,\n\
             'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],\n\
             'session.cookie.secure' => false, 'session.cookie.samesite' => null,\n\
             'session.phpsession.savepath' => {sessions},\n\
             'language.cookie.secure' => false,\n\
             'store.type' => 'phpsession',\n\
             'metadata.sources' => [['type' => 'flatfile']],\n\
             'production' => false, 'showerrors' => true,\n\
             ];\n",
            cert = php_string(&path("cert")),
            log = php_string(&path("log")),
            data = php_string(&path("data")),
            tmp = php_string(&path("tmp")),
            metadata = php_string(&path("metadata")),
            sessions = php_string(&path("sessions")),
        );
        std::fs::write(d.join("config/config.php"), config).unwrap();
        let mut users = String::new();
        for (name, password, groups) in USERS {
            let groups: Vec<String> = groups.iter().map(|g| php_string(g)).collect();
            users.push_str(&format!(
                "    '{name}:{password}' => ['uid' => ['{name}'], 'mail' => ['{name}@example.org'], \
                 'eduPersonAffiliation' => [{}]],\n",
                groups.join(", ")
            ));
        }
        std::fs::write(
            d.join("config/authsources.php"),
            format!(
                "<?php\n$config = [\n  'admin' => ['core:AdminPassword'],\n  \
                 'example-userpass' => ['exampleauth:UserPass',\n{users}  ],\n];\n"
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("metadata/saml20-idp-hosted.php"),
            "<?php\n$metadata['__DYNAMIC:1__'] = [\n  'host' => '__DEFAULT__',\n  \
             'privatekey' => 'idp.key',\n  'certificate' => 'idp.crt',\n  \
             'auth' => 'example-userpass',\n  \
             'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',\n  \
             'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',\n];\n",
        )
        .unwrap();
        let mut remote = String::from("<?php\n");
        for sp in sps {
            let acs: Vec<String> = sp
                .acs
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    format!(
                        "['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', \
                         'Location' => {}, 'index' => {i}]",
                        php_string(url)
                    )
                })
                .collect();
            remote.push_str(&format!(
                "$metadata[{}] = [\n  'AssertionConsumerService' => [{}],\n  \
                 'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',\n{}];\n",
                php_string(&sp.entity_id),
                acs.join(", "),
                sp.lifetime
                    .map(|s| format!("  'assertion.lifetime' => {s},\n"))
                    .unwrap_or_default()
            ));
        }
        std::fs::write(d.join("metadata/saml20-sp-remote.php"), remote).unwrap();
        let child = Command::new("php")
            .args([
                "-d",
                &format!("session.save_path={}", path("sessions")),
                "-S",
                &format!("127.0.0.1:{port}"),
                "-t",
                "/usr/share/simplesamlphp/www",
            ])
            .env("SIMPLESAMLPHP_CONFIG_DIR", d.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php (Debian's php-cli) and simplesamlphp must be installed");
        let idp = Self {
            child: Some(child),
            port,
            _dir: dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return idp;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("SimpleSAMLphp did not start on port {port}");
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn metadata_url(&self) -> String {
        format!("{}saml2/idp/metadata.php", self.base())
    }

    pub async fn metadata_xml(&self) -> String {
        let r = reqwest::get(self.metadata_url()).await.unwrap();
        assert!(r.status().is_success(), "IdP metadata: {}", r.status());
        r.text().await.unwrap()
    }

    /// The IdP-initiated sign-in URL for a service provider (optionally to another of its
    /// assertion consumer services).
    pub fn initiated_url(&self, sp_entity_id: &str, consumer: Option<&str>) -> String {
        let mut url = url::Url::parse(&format!("{}saml2/idp/SSOService.php", self.base())).unwrap();
        url.query_pairs_mut()
            .append_pair("spentityid", sp_entity_id);
        if let Some(c) = consumer {
            url.query_pairs_mut().append_pair("ConsumerURL", c);
        }
        url.to_string()
    }

    /// Logs `user` in at the IdP, starting from `start` (the URL a service provider sent the
    /// browser to, or [`Self::initiated_url`]), and answers the form the IdP's page posts.
    pub async fn login(&self, start: &str, user: &str, password: &str) -> Posted {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut jar: HashMap<String, String> = HashMap::new();
        let cookie_header = |jar: &HashMap<String, String>| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let keep = |jar: &mut HashMap<String, String>, r: &reqwest::Response| {
            for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
                let pair = v.to_str().unwrap().split(';').next().unwrap();
                if let Some((k, v)) = pair.split_once('=') {
                    jar.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        };
        let mut url = start.to_owned();
        let page = loop {
            let r = http
                .get(&url)
                .header(reqwest::header::COOKIE, cookie_header(&jar))
                .send()
                .await
                .unwrap();
            keep(&mut jar, &r);
            if r.status().is_redirection() {
                let next = r.headers()[reqwest::header::LOCATION].to_str().unwrap();
                url = url::Url::parse(&url)
                    .unwrap()
                    .join(next)
                    .unwrap()
                    .to_string();
                continue;
            }
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "IdP page {url}: {status}: {text}");
            break text;
        };
        // The login form: AuthState, username, password.
        let auth_state = field(&page, "AuthState")
            .unwrap_or_else(|| panic!("no AuthState on the IdP's login page: {page}"));
        let r = http
            .post(&url)
            .header(reqwest::header::COOKIE, cookie_header(&jar))
            .form(&[
                ("AuthState", auth_state.as_str()),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        keep(&mut jar, &r);
        let mut r = r;
        while r.status().is_redirection() {
            let next = r.headers()[reqwest::header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            url = url::Url::parse(&url)
                .unwrap()
                .join(&next)
                .unwrap()
                .to_string();
            r = http
                .get(&url)
                .header(reqwest::header::COOKIE, cookie_header(&jar))
                .send()
                .await
                .unwrap();
            keep(&mut jar, &r);
        }
        let page = r.text().await.unwrap();
        let saml_response = field(&page, "SAMLResponse")
            .unwrap_or_else(|| panic!("the IdP posted no SAMLResponse: {page}"));
        let action = attribute_after(&page, "<form", "action")
            .unwrap_or_else(|| panic!("no form on the IdP's answer: {page}"));
        Posted {
            action: unescape(&action),
            saml_response,
            relay_state: field(&page, "RelayState"),
        }
    }
}

/// The value of the hidden input `name` in an HTML page.
pub fn field(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let tag_start = page[..at].rfind('<')?;
    let tag_end = at + page[at..].find('>')?;
    let tag = &page[tag_start..tag_end];
    let v = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(unescape(v))
}

fn attribute_after(page: &str, tag: &str, attribute: &str) -> Option<String> {
    let at = page.find(tag)?;
    let end = at + page[at..].find('>')?;
    let t = &page[at..end];
    Some(
        t.split(&format!("{attribute}=\""))
            .nth(1)?
            .split('"')
            .next()?
            .to_owned(),
    )
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

impl Drop for SamlIdp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
