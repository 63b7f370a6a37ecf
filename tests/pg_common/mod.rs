//! A throwaway PostgreSQL 15 cluster for the tests that need a real server (initdb + pg_ctl as
//! `postgres`, 127.0.0.1, a free port, its own socket directory, TLS material from castellan's PKI
//! library); a Drop guard stops it. Needs root and PostgreSQL 15 (`bash tests/setup.sh`).
#![allow(dead_code)]
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use castellan::pki::{ensure_ca, ensure_cert, CaSpec, CertSpec};
use serde_json::Value;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub fn as_postgres(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", program])
        .args(args)
        .output()
        .expect("run runuser (util-linux)")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

/// A throwaway cluster; stopped when dropped.
pub struct Pg {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
    pub sock: PathBuf,
    pub ssl: PathBuf,
    pub pki: PathBuf,
    pub log: PathBuf,
    pub port: u16,
    pub uid: u32,
    pub gid: u32,
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_postgres(
            &format!("{PG_BIN}/pg_ctl"),
            &["-D", s(&self.data), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Pg {
    pub fn start() -> Pg {
        Pg::start_with("")
    }

    /// [`Pg::start`] with more lines for postgresql.conf (`log_connections = on`...).
    pub fn start_with(extra_conf: &str) -> Pg {
        let initdb = format!("{PG_BIN}/initdb");
        assert!(
            Path::new(&initdb).exists(),
            "PostgreSQL 15 is not installed ({initdb} is missing): run bash tests/setup.sh"
        );
        let pg = nix::unistd::User::from_name("postgres")
            .expect("read the user database")
            .expect("a `postgres` user: run bash tests/setup.sh");
        let (uid, gid) = (pg.uid.as_raw(), pg.gid.as_raw());
        let tmp = tempfile::Builder::new()
            .prefix("castellan-pgmod-")
            .tempdir()
            .expect("temp dir");
        let root = tmp.path().to_path_buf();
        chown(&root, Some(uid), Some(gid)).unwrap();

        // PKI (root-owned): CA, server certificate with DNS and IP SANs, client `postgres`.
        let pki = root.join("pki");
        ensure_ca(
            &pki,
            &CaSpec {
                cn: Some("pg_modules test CA".into()),
                ..CaSpec::default()
            },
        )
        .expect("CA");
        ensure_cert(
            &pki,
            &CertSpec::server(
                "pg",
                "localhost",
                vec!["localhost".into(), "127.0.0.1".into()],
            ),
        )
        .expect("server certificate");
        ensure_cert(&pki, &CertSpec::client("postgres", "postgres")).expect("client cert");

        let ssl = root.join("ssl");
        fs::create_dir(&ssl).unwrap();
        for (from, to) in [
            ("server/pg/server.crt", "server.crt"),
            ("server/pg/server.key", "server.key"),
            ("ca.crt", "root.crt"),
        ] {
            fs::copy(pki.join(from), ssl.join(to)).unwrap();
            chown(ssl.join(to), Some(uid), Some(gid)).unwrap();
            fs::set_permissions(ssl.join(to), fs::Permissions::from_mode(0o600)).unwrap();
        }
        chown(&ssl, Some(uid), Some(gid)).unwrap();

        let data = root.join("data");
        let sock = root.join("sock");
        fs::create_dir(&sock).unwrap();
        chown(&sock, Some(uid), Some(gid)).unwrap();
        let out = as_postgres(
            &initdb,
            &[
                "-D",
                s(&data),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(out.status.success(), "initdb: {}", text(&out.stderr));
        let mut conf = fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "\n# test settings\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n{extra_conf}\n",
            s(&ssl.join("server.crt")),
            s(&ssl.join("server.key")),
            s(&ssl.join("root.crt")),
        ));
        fs::write(data.join("postgresql.conf"), conf).unwrap();
        fs::write(
            data.join("pg_hba.conf"),
            "local all all peer\nhostssl all all 127.0.0.1/32 cert\n",
        )
        .unwrap();
        let port = free_port();
        let pg = Pg {
            _tmp: tmp,
            log: root.join("postgres.log"),
            root,
            data,
            sock,
            ssl,
            pki,
            port,
            uid,
            gid,
        };
        let opts = format!("-k {} -p {port} -c listen_addresses=127.0.0.1", s(&pg.sock));
        let out = as_postgres(
            &format!("{PG_BIN}/pg_ctl"),
            &[
                "-D",
                s(&pg.data),
                "-l",
                s(&pg.log),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}\n{}",
            text(&out.stdout),
            text(&out.stderr),
            fs::read_to_string(&pg.log).unwrap_or_default()
        );
        pg
    }

    /// One value over the socket, as postgres.
    pub fn sql(&self, q: &str) -> String {
        let out = as_postgres(
            &format!("{PG_BIN}/psql"),
            &[
                "-X",
                "-A",
                "-t",
                "-h",
                s(&self.sock),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                q,
            ],
        );
        assert!(out.status.success(), "psql {q}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }

    pub fn start_time(&self) -> String {
        self.sql("SELECT pg_postmaster_start_time()")
    }

    /// Run a playbook (tasks of one play on host db1) with `--output json`.
    pub fn play(&self, body: &str, extra: &[&str]) -> (i32, Value, String) {
        let out = self.command(body, extra).output().expect("run castellan");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc, text(&out.stderr))
    }

    /// The castellan command that runs `body` as the play of host db1 (`--output json`).
    pub fn command(&self, body: &str, extra: &[&str]) -> Command {
        let inv = self.root.join("inventory.yml");
        fs::write(
            &inv,
            format!(
                "all:\n  hosts:\n    db1:\n      ansible_connection: local\n      ansible_host: 127.0.0.1\n      \
                 pg_socket_dir: {}\n      pg_port: {}\n      pg_dns_name: localhost\n      pki: {}\n",
                s(&self.sock),
                self.port,
                s(&self.pki)
            ),
        )
        .unwrap();
        let pb = self.root.join("play.yml");
        fs::write(
            &pb,
            format!("- hosts: db1\n  serial: 1\n  max_fail_percentage: 0\n{body}"),
        )
        .unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_castellan"));
        c.args(["playbook", s(&pb), "-i", s(&inv), "--output", "json"])
            .args(extra);
        c
    }
}
