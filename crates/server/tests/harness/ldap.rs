//! A private OpenLDAP (Debian's `slapd`) for a test: configured in a temporary directory,
//! listening on a loopback port of its own, with the `memberof` overlay and `allow
//! bind_anon_dn` (a DN with an empty password binds as anonymous — the trap a server must not
//! fall into), and filled through `ldapadd` while it runs (so `memberOf` is kept).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "Root-ldap-pw-1";
/// The service account the integrations search with.
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PASSWORD: &str = "Reader-pw-1";

/// A program of Debian's slapd package, which lives in /usr/sbin (not on every PATH).
fn sbin(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/sbin").join(name);
    if path.exists() {
        path
    } else {
        PathBuf::from(name)
    }
}

pub struct Slapd {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts an empty directory with the base entries, `ou=people` and `ou=groups`, and the
    /// service account.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let hash = Command::new(sbin("slappasswd"))
            .args(["-s", ROOT_PASSWORD])
            .output()
            .expect("slappasswd (Debian's slapd) must be installed");
        let hash = String::from_utf8(hash.stdout).unwrap().trim().to_owned();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {dir}/slapd.pid\n\
             allow bind_anon_dn\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {hash}\n\
             directory {dir}/db\n\
             overlay memberof\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
        let mut slapd = Self {
            child: None,
            port: super::idp::free_port(),
            dir,
        };
        slapd.run();
        slapd.add(&format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n\
             dc: example\n\n\
             dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
             cn: reader\nuserPassword: {READER_PASSWORD}\n"
        ));
        slapd
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slapd.conf")
    }

    /// Starts (or starts again) the slapd process on the same port and data.
    pub fn run(&mut self) {
        let url = self.url();
        let child = Command::new(sbin("slapd"))
            .arg("-f")
            .arg(self.conf())
            .args(["-h", &url, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd (Debian's slapd) must be installed");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("slapd did not start listening on {url}");
    }

    /// Stops slapd (the directory is then unreachable).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Adds entries (LDIF) as the directory's administrator.
    pub fn add(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapadd")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapadd (Debian's ldap-utils) must be installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A person under `ou=people` with a password.
    pub fn person(&self, uid: &str, password: &str) {
        self.add(&format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: {uid}\nsn: {uid}\nmail: {uid}@example.org\nuserPassword: {password}\n"
        ));
    }

    /// A group under `ou=groups` with these people (uids) as members.
    pub fn group(&self, cn: &str, members: &[&str]) {
        let members: String = members
            .iter()
            .map(|m| format!("member: uid={m},ou=people,{SUFFIX}\n"))
            .collect();
        self.add(&format!(
            "dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{members}"
        ));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
