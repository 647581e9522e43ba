//! A private PostgreSQL 15 cluster (Debian's `postgresql-15`) for the store tests: `initdb` in a
//! temp dir, scram-sha-256, a loopback port the OS gave, run as `postgres` when the tests run as
//! root (initdb refuses root).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PASSWORD: &str = "Store-pass-1";

pub struct Cluster {
    pub port: u16,
    dir: tempfile::TempDir,
}

fn root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn owner(cmd: &str) -> Command {
    let mut c = if root() {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", cmd]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", cmd]);
        c
    };
    c.env("LC_ALL", "C.UTF-8");
    c
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    pub fn start() -> Self {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (scripts/test.sh installs postgresql-15)"
        );
        let dir = tempfile::tempdir().unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        run(
            owner(&format!(
                "{BIN}/initdb -D {} -U postgres --auth=scram-sha-256 --pwfile={} >/dev/null",
                data.display(),
                pwfile.display()
            )),
            "initdb",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { port, dir };
        cluster.start_again();
        cluster
    }

    pub fn start_again(&self) {
        run(
            owner(&format!(
                "{BIN}/pg_ctl -D {}/data -l {}/log -w -o \"-p {} -k {} -c listen_addresses=127.0.0.1\" \
                 start >/dev/null",
                self.dir.path().display(),
                self.dir.path().display(),
                self.port,
                self.dir.path().display()
            )),
            "pg_ctl start",
        );
    }

    pub fn stop(&self) {
        run(
            owner(&format!(
                "{BIN}/pg_ctl -D {}/data -m fast stop >/dev/null",
                self.dir.path().display()
            )),
            "pg_ctl stop",
        );
    }

    /// A new empty database of the cluster, and its URL (without the password).
    pub fn database(&self, name: &str) -> String {
        let out = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
                self.port
            ))
            .args(["-X", "-q", "-c", &format!("CREATE DATABASE {name}")])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "postgresql://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = owner(&format!(
            "{BIN}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1",
            self.dir.path().display()
        ))
        .status();
    }
}
