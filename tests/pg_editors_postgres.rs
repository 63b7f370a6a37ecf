//! Issue 5, acceptance 5 (last part): the files `pg_conf` and `pg_hba` write are accepted by
//! PostgreSQL 15 itself.
//!
//! Starts a throwaway cluster (initdb + pg_ctl as `postgres`, Unix socket only, a free port, a
//! temp dir owned by postgres), runs a playbook with `pg_conf` (ssl settings with a self-signed
//! certificate made by `openssl req`) and `pg_hba` (hostssl rules with `clientcert=verify-full`,
//! the `cert` method, `block_plain`) on the local connection, reloads, and checks that
//! `pg_hba_file_rules` and `pg_file_settings` show no error, that SSL is on without a restart,
//! and that a second run changes nothing. The cluster is stopped by a Drop guard.
//! Needs root (runuser), PostgreSQL 15 and openssl: `bash tests/setup.sh`.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .expect("run runuser (util-linux)")
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Stops the cluster when dropped (test end or panic).
struct Cluster {
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
}

impl Cluster {
    fn psql(&self, sql: &str) -> String {
        let out = as_postgres(
            &Path::new(PG_BIN).join("psql"),
            &[
                "-h",
                s(&self.sock),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        ok(&format!("psql {sql}\nserver log:\n{}", self.log()), out)
            .trim()
            .to_string()
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let mut a = vec!["-D", s(&self.data)];
        a.extend_from_slice(args);
        as_postgres(&Path::new(PG_BIN).join("pg_ctl"), &a)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Errors PostgreSQL finds in the files on disk right now. PostgreSQL 15 leaves `error`
    /// NULL for some bad options (`clientcert=1`: "invalid value for clientcert" is only
    /// logged), with every other column NULL too: such rows count as errors.
    fn file_errors(&self) -> String {
        self.psql(
            "SELECT coalesce(string_agg(format('pg_hba.conf line %s: %s', line_number, \
             coalesce(error, 'invalid line (see the server log)')), E'\\n'), '') \
             FROM pg_hba_file_rules WHERE error IS NOT NULL OR type IS NULL",
        ) + &self.psql(
            "SELECT coalesce(string_agg(format('%s line %s: %s', sourcefile, sourceline, error), E'\\n'), '') \
             FROM pg_file_settings WHERE error IS NOT NULL",
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

const PLAYBOOK: &str = r#"
- name: pg editors against a real PostgreSQL 15
  hosts: all
  tasks:
    - name: TLS settings
      pg_conf:
        path: "{{ data }}/postgresql.conf"
        data_directory: "{{ data }}"
        settings:
          ssl: true
          ssl_cert_file: "{{ ssl_dir }}/server.crt"
          ssl_key_file: "{{ ssl_dir }}/server.key"
          ssl_ca_file: "{{ ssl_dir }}/root.crt"
          ssl_min_protocol_version: TLSv1.2
          ssl_ciphers: "HIGH:!aNULL:!MD5"
        backup: yes
      register: conf

    - name: a reload applies it; ALTER SYSTEM overrides are reported
      assert:
        that:
          - not conf.needs_restart
          - conf.auto_conf_overrides | length == 1
          - "'ssl_ciphers' in conf.auto_conf_overrides"

    - name: mutual TLS rules, plain TCP blocked
      pg_hba:
        path: "{{ data }}/pg_hba.conf"
        server_version: "{{ server_version_num }}"
        block_plain: yes
        backup: yes
        rules:
          - {type: hostssl, database: all, user: all, address: 0.0.0.0/0, method: scram-sha-256, options: {clientcert: verify-full}}
          - {type: hostssl, database: all, user: all, address: "::/0", method: scram-sha-256, options: {clientcert: verify-full}}
          - {type: hostssl, database: [postgres, "odd db"], user: [app, "odd user"], address: 10.0.0.0/8, method: cert, options: "clientcert=verify-full"}
      register: hba

    - name: backups were made for rollbacks
      when: hba.changed
      assert:
        that:
          - castellan_backups | length == 2
"#;

#[test]
fn postgres_15_accepts_the_edited_files() {
    let initdb = Path::new(PG_BIN).join("initdb");
    assert!(
        initdb.exists(),
        "PostgreSQL 15 server is not installed ({} is missing): run `bash tests/setup.sh`",
        initdb.display()
    );
    let pg = nix::unistd::User::from_name("postgres")
        .expect("read the user database")
        .expect("a `postgres` user (created by the postgresql package): run `bash tests/setup.sh`");
    let (uid, gid) = (pg.uid.as_raw(), pg.gid.as_raw());

    let tmp = tempfile::Builder::new()
        .prefix("castellan-pgedit-")
        .tempdir()
        .expect("temp dir");
    let root = tmp.path();
    chown(root, Some(uid), Some(gid)).expect("chown the temp dir to postgres");

    // A self-signed server certificate, owned by postgres, key 0600.
    let ssl = root.join("ssl");
    fs::create_dir(&ssl).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-keyout", s(&ssl.join("server.key"))])
        .args(["-out", s(&ssl.join("server.crt"))])
        .output()
        .expect("openssl (run `bash tests/setup.sh`)");
    ok("openssl req", out);
    fs::copy(ssl.join("server.crt"), ssl.join("root.crt")).unwrap();
    for f in ["server.crt", "server.key", "root.crt", ""] {
        chown(ssl.join(f), Some(uid), Some(gid)).unwrap();
    }
    fs::set_permissions(ssl.join("server.key"), fs::Permissions::from_mode(0o600)).unwrap();

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
    ok("initdb", out);

    // Unix socket only, on a free port; set with our own editor.
    let conf_path = data.join("postgresql.conf");
    let mut conf =
        castellan::postgres::conf::ConfFile::parse(&fs::read_to_string(&conf_path).unwrap());
    let port = free_port();
    for (k, v) in [
        ("listen_addresses", ""),
        ("port", &port.to_string()),
        ("unix_socket_directories", s(&sock)),
        ("fsync", "off"),
        ("shared_buffers", "16MB"),
    ] {
        conf.set(k, v).unwrap();
    }
    fs::write(&conf_path, conf.render()).unwrap();
    // Plain TCP rules to block, one written on two lines (a continuation, PostgreSQL 15+).
    let hba_path = data.join("pg_hba.conf");
    let mut hba = fs::read_to_string(&hba_path).unwrap();
    hba.push_str(
        "host    all             all             0.0.0.0/0               scram-sha-256\n\
         host    all             all \\\n                                192.168.0.0/16          md5\n",
    );
    fs::write(&hba_path, &hba).unwrap();

    let log = root.join("server.log");
    let cluster = Cluster {
        data: data.clone(),
        sock: sock.clone(),
        log: log.clone(),
        port,
    };
    let out = cluster.pg_ctl(&["-l", s(&log), "-w", "-t", "60", "start"]);
    assert!(
        out.status.success(),
        "pg_ctl start: {}{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        cluster.log()
    );
    let started = cluster.psql("SELECT pg_postmaster_start_time()");
    assert_eq!(cluster.file_errors(), "", "before our edits");
    assert_eq!(
        cluster.psql("SELECT count(*) FROM pg_hba_file_rules WHERE address = '192.168.0.0'"),
        "1",
        "PostgreSQL 15 reads the continuation line"
    );
    assert_eq!(cluster.psql("SHOW ssl"), "off");
    cluster.psql("ALTER SYSTEM SET ssl_ciphers = 'HIGH:!aNULL:!MD5'");
    let version = cluster.psql("SHOW server_version_num");

    // The playbook, on the local connection.
    let inv = root.join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    pg1:\n      ansible_connection: local\n      data: {}\n      ssl_dir: {}\n      server_version_num: {version}\n",
            s(&data),
            s(&ssl)
        ),
    )
    .unwrap();
    let pb = root.join("pg.yml");
    fs::write(&pb, PLAYBOOK).unwrap();
    let run = || castellan(&["playbook", s(&pb), "-i", s(&inv), "--output", "json"]);
    let first = run();
    let report = text(&first.stdout);
    assert!(
        first.status.success(),
        "first run: {report}{}",
        text(&first.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(doc["stats"]["pg1"]["changed"], 2, "{report}");

    let hba_after = fs::read_to_string(&hba_path).unwrap();
    assert!(hba_after.contains("\nhostssl"), "{hba_after}");
    // block_plain: no plain TCP rule is left active, loopback included; `local` lines stay.
    assert!(
        !hba_after
            .lines()
            .any(|l| l.starts_with("host ") || l.starts_with("host\t")),
        "{hba_after}"
    );
    assert!(
        hba_after.lines().any(|l| l.starts_with("local")),
        "{hba_after}"
    );
    assert!(
        hba_after.contains("#host    all             all             0.0.0.0/0"),
        "{hba_after}"
    );
    assert!(
        hba_after.contains("#host    all             all \\\n#"),
        "{hba_after}"
    );
    // Owner and mode are kept across the atomic write (postgres must still read them).
    for p in [&hba_path, &conf_path] {
        let m = fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (uid, 0o600), "{}", p.display());
    }

    // Reload: PostgreSQL accepts both files, SSL is on without a restart.
    ok("pg_ctl reload", cluster.pg_ctl(&["reload"]));
    assert_eq!(cluster.file_errors(), "", "after our edits:\n{hba_after}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.psql("SHOW ssl") != "on" {
        assert!(
            Instant::now() < deadline,
            "ssl not on after reload:\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        cluster.psql("SELECT count(*) FROM pg_hba_file_rules WHERE type = 'hostssl' AND options @> '{clientcert=verify-full}'"),
        "3"
    );
    assert_eq!(
        cluster.psql("SELECT count(*) FROM pg_hba_file_rules WHERE type = 'host' AND address NOT IN ('127.0.0.1', '::1')"),
        "0"
    );
    assert_eq!(cluster.psql("SHOW ssl_min_protocol_version"), "TLSv1.2");
    assert_eq!(
        cluster.psql("SELECT count(*) FROM pg_settings WHERE pending_restart"),
        "0"
    );
    assert_eq!(cluster.psql("SELECT pg_postmaster_start_time()"), started);

    // A second run changes nothing.
    let second = run();
    let report = text(&second.stdout);
    assert!(second.status.success(), "second run: {report}");
    let doc: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(doc["stats"]["pg1"]["changed"], 0, "{report}");

    // What our validation refuses, the server refuses too: clientcert=1 on 15.
    fs::write(
        &hba_path,
        format!("{hba_after}hostssl all all 10.9.0.0/16 md5 clientcert=1\n"),
    )
    .unwrap();
    let errors = cluster.file_errors();
    assert!(errors.contains("invalid line"), "{errors}");
    ok("pg_ctl reload", cluster.pg_ctl(&["reload"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster
        .log()
        .contains("invalid value for clientcert: \"1\"")
    {
        assert!(
            Instant::now() < deadline,
            "no clientcert error logged:\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::write(&hba_path, &hba_after).unwrap();
    assert_eq!(cluster.file_errors(), "");
}
