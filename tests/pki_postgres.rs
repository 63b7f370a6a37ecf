//! Acceptance 2 of issue 4: a real PostgreSQL 15 accepts castellan's certificates.
//!
//! Each test starts a throwaway cluster (initdb + pg_ctl as the `postgres` user, on 127.0.0.1
//! with a free port and its own socket directory), serves a castellan server certificate with
//! DNS and IP SANs, requires `cert` authentication, and logs in with `psql` in
//! `sslmode=verify-full` through both SANs with a castellan client certificate. The cluster is
//! stopped by a Drop guard, also when the test fails. Needs root (runuser) and PostgreSQL 15.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn castellan(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan");
    assert!(
        out.status.success(),
        "castellan {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .expect("run runuser (util-linux)")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Stops the cluster when dropped (test end or panic).
struct Cluster {
    data: PathBuf,
    log: PathBuf,
}

impl Cluster {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(
            &Path::new(PG_BIN).join("pg_ctl"),
            &["-D", s(&self.data), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn postgres_accepts(key_type: &str) {
    let initdb = Path::new(PG_BIN).join("initdb");
    assert!(
        initdb.exists(),
        "PostgreSQL 15 server is not installed ({} is missing): run the project's setup script \
         under .ci/ (it installs the `postgresql` package), or `apt-get install -y postgresql`",
        initdb.display()
    );
    let pg = nix::unistd::User::from_name("postgres")
        .expect("read the user database")
        .expect("a `postgres` user (created by the postgresql package)");
    let (uid, gid) = (pg.uid.as_raw(), pg.gid.as_raw());

    let tmp = tempfile::Builder::new()
        .prefix("castellan-pg-")
        .tempdir()
        .expect("temp dir");
    let root = tmp.path();
    chown(root, Some(uid), Some(gid)).expect("chown the temp dir to postgres");

    // The PKI, made by castellan (root-owned, 0700: postgres never reads it directly).
    let pki = root.join("pki");
    let d = s(&pki);
    castellan(&[
        "pki",
        "init-ca",
        "--dir",
        d,
        "--cn",
        "PG Test CA",
        "--key-type",
        key_type,
    ]);
    castellan(&[
        "pki",
        "issue",
        "--dir",
        d,
        "server",
        "pg",
        "--cn",
        "localhost",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
        "--key-type",
        key_type,
    ]);
    castellan(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "app",
        "--cn",
        "app",
        "--key-type",
        key_type,
    ]);
    castellan(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "intruder",
        "--cn",
        "mallory",
        "--key-type",
        key_type,
    ]);

    // Server files, owned by postgres, key 0600 (PostgreSQL refuses group/world access).
    let ssl = root.join("ssl");
    fs::create_dir(&ssl).unwrap();
    for (from, to) in [
        ("server/pg/server.crt", "server.crt"),
        ("server/pg/server.key", "server.key"),
        ("ca.crt", "root.crt"),
    ] {
        fs::copy(pki.join(from), ssl.join(to)).unwrap();
        chown(ssl.join(to), Some(uid), Some(gid)).unwrap();
    }
    fs::set_permissions(ssl.join("server.key"), fs::Permissions::from_mode(0o600)).unwrap();
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
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
        ],
    );
    assert!(
        out.status.success(),
        "initdb: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let port = free_port();
    let mut conf = fs::read_to_string(data.join("postgresql.conf")).unwrap();
    conf.push_str(&format!(
        "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
         ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n\
         fsync = off\nshared_buffers = 16MB\n",
        s(&sock),
        s(&ssl.join("server.crt")),
        s(&ssl.join("server.key")),
        s(&ssl.join("root.crt")),
    ));
    fs::write(data.join("postgresql.conf"), conf).unwrap();
    fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 cert\n",
    )
    .unwrap();

    let cluster = Cluster {
        data: data.clone(),
        log: root.join("postgres.log"),
    };
    let out = as_postgres(
        &Path::new(PG_BIN).join("pg_ctl"),
        &[
            "-D",
            s(&data),
            "-l",
            s(&cluster.log),
            "-w",
            "-t",
            "60",
            "start",
        ],
    );
    assert!(
        out.status.success(),
        "pg_ctl start: {}{}\nlog:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        cluster.log()
    );
    let psql = Path::new(PG_BIN).join("psql");
    let port_s = port.to_string();
    let out = as_postgres(
        &psql,
        &[
            "-h",
            s(&sock),
            "-p",
            &port_s,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            "CREATE ROLE app LOGIN",
        ],
    );
    assert!(out.status.success(), "create role: {}", text(&out.stderr));

    let ca = pki.join("ca.crt");
    let login = |host: &str, client: &str| {
        let conninfo = format!(
            "host={host} port={port} dbname=postgres user=app sslmode=verify-full \
             sslrootcert={} sslcert={} sslkey={} connect_timeout=10",
            s(&ca),
            s(&pki.join(format!("client/{client}/client.crt"))),
            s(&pki.join(format!("client/{client}/client.key"))),
        );
        Command::new(&psql)
            .env_remove("PGSSLMODE")
            .args([
                conninfo.as_str(),
                "-Atc",
                "SELECT current_user, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .output()
            .expect("run psql")
    };
    // verify-full through the DNS SAN and through the IP SAN, cert login as `app`.
    for host in ["localhost", "127.0.0.1"] {
        let out = login(host, "app");
        assert!(
            out.status.success(),
            "{key_type}: verify-full login via {host} failed: {}\nserver log:\n{}",
            text(&out.stderr),
            cluster.log()
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "app|t|/CN=app",
            "{key_type} via {host}"
        );
    }
    // A valid certificate for another user is refused: the CN is what authenticates.
    let out = login("localhost", "intruder");
    assert!(
        !out.status.success(),
        "a certificate with CN=mallory logged in as app"
    );
    assert!(
        text(&out.stderr).contains("certificate authentication failed"),
        "{}",
        text(&out.stderr)
    );
    drop(cluster);
}

#[test]
fn postgres15_verify_full_and_cert_login_ecdsa_p256() {
    postgres_accepts("ecdsa-p256");
}

#[test]
fn postgres15_verify_full_and_cert_login_rsa_4096() {
    postgres_accepts("rsa-4096");
}
