//! Issue 11 (certificate models for EDB PEM backends), acceptance 1 to 4, end to end:
//! `playbooks/pem-backend.yml` against a fleet of real sshd + PostgreSQL 15 hosts (net 19): db1 and
//! db2 Debian clusters in `local-csr` mode, db3 an EDB-layout cluster (`up.sh --edb 3`: initdb as
//! `enterprisedb`, port 5444, pg_ctl) in `sslutils` mode, all with `pg_tls_profile: edb-pem`; db1
//! and db2 are also PEM agents. Logins are psql (libpq) with `sslmode=verify-full`. One test drives
//! the steps in order: they share one fleet.
mod fleet_common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleet_common::FleetDef;
use sha2::Digest;

const NET: &str = "19";
const DIR: &str = "/tmp/castellan-pem-models-fleet";

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dns(k: usize) -> String {
    format!("db{k}.f{NET}.fleet.test")
}

/// Where dbK's server files are: next to postgresql.conf (Debian), in PGDATA (db3).
fn tls_dir(k: usize) -> PathBuf {
    if k == 3 {
        PathBuf::from(format!("{DIR}/hosts/db3/pgdata"))
    } else {
        PathBuf::from(format!("/etc/postgresql/15/f{NET}db{k}"))
    }
}

fn port(k: usize) -> u16 {
    if k == 3 {
        5444
    } else {
        5432
    }
}

/// A run of the playbook: its output and the JSON report.
struct Run {
    out: Output,
    doc: serde_json::Value,
}

impl Run {
    /// stdout and stderr together: what a secret must never be in.
    fn all_text(&self) -> String {
        format!("{}{}", text(&self.out.stdout), text(&self.out.stderr))
    }

    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    fn stat(&self, host: &str, key: &str) -> u64 {
        self.doc["stats"][host][key].as_u64().unwrap_or(u64::MAX)
    }

    /// The result of `host` in every task whose module is `module`.
    fn results(&self, module: &str, host: &str) -> Vec<serde_json::Value> {
        let mut v = Vec::new();
        for play in self.doc["plays"].as_array().into_iter().flatten() {
            for t in play["tasks"].as_array().into_iter().flatten() {
                if t["module"] == module && !t["results"][host].is_null() {
                    v.push(t["results"][host].clone());
                }
            }
        }
        v
    }
}

fn playbook(inventories: &[&Path], pki: &Path, extra: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castellan"));
    cmd.args([
        "playbook",
        repo("playbooks/pem-backend.yml").to_str().unwrap(),
    ]);
    cmd.args(["-i", &FLEET.inventory()]);
    for i in inventories {
        cmd.args(["-i", i.to_str().unwrap()]);
    }
    cmd.args([
        "-e",
        &format!("pki_dir={}", pki.display()),
        "--output",
        "json",
    ]);
    cmd.args(extra);
    let out = cmd.output().expect("run castellan");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    Run { out, doc }
}

/// A psql login with `sslmode=verify-full`; (success, output).
fn psql(k: usize, user: &str, ca: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let conninfo = format!(
        "host={} port={} user={user} dbname=postgres sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        dns(k),
        port(k),
        ca.display(),
        cert.display(),
        key.display()
    );
    let out = Command::new("psql")
        .env_remove("PGSSLMODE")
        .env("PGCONNECT_TIMEOUT", "10")
        .args([
            conninfo.as_str(),
            "-XAtc",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .expect("run psql");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr))
            .trim()
            .to_string(),
    )
}

fn sql(k: usize, q: &str) -> String {
    let out = FLEET.script("pg.sh", &[&format!("db{k}"), "psql", "-XAtc", q]);
    text(&out.stdout).trim().to_string()
}

/// Start time and configuration load time of dbK.
fn times(k: usize) -> String {
    sql(
        k,
        "SELECT pg_postmaster_start_time() || ' ' || pg_conf_load_time()",
    )
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// The contents of every file under `dir`, concatenated.
fn every_byte(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The certificate's facts: (CN, key bits, lifetime in days, subjectPublicKey).
fn cert_facts(pem: &[u8]) -> (String, usize, i64, Vec<u8>) {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let (_, c) = x509_parser::parse_x509_certificate(&block.contents).unwrap();
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let bits = match c.public_key().parsed().unwrap() {
        x509_parser::public_key::PublicKey::RSA(r) => r.key_size(),
        _ => 0,
    };
    let days = (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86_400;
    (
        cn,
        bits,
        days,
        c.public_key().subject_public_key.data.to_vec(),
    )
}

fn key_public(pem: &[u8]) -> Vec<u8> {
    let key = castellan::pki::key::parse_private_key_pem(&text(pem)).unwrap();
    key.public_key_raw().to_vec()
}

fn owner_mode(p: &Path) -> (String, String, u32) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let user = nix::unistd::User::from_uid(m.uid().into())
        .unwrap()
        .map_or_else(|| m.uid().to_string(), |u| u.name);
    let group = nix::unistd::Group::from_gid(m.gid().into())
        .unwrap()
        .map_or_else(|| m.gid().to_string(), |g| g.name);
    (user, group, m.permissions().mode() & 0o777)
}

fn castellan_pki(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .arg("pki")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pki {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn certificate_models_on_a_fleet() {
    // Fresh clusters: a fleet left by an earlier run has keys and settings on it.
    FLEET.script("down.sh", &["--purge"]);
    FLEET.script("up.sh", &["3", "--edb", "3"]);
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let root = |k: usize| PathBuf::from(format!("{DIR}/hosts/db{k}/root"));

    // The PEM agents' database users on the backends they log in to, and an agent.cfg as PEM's
    // installer leaves it.
    for k in [1, 2] {
        sql(k, "CREATE ROLE agent1 LOGIN; CREATE ROLE agent2 LOGIN");
        fs::write(
            root(k).join("agent.cfg"),
            format!("[PEM/agent]\npem_host=db1.f{NET}.fleet.test\npem_port=5432\nagent_id={k}\n"),
        )
        .unwrap();
    }
    let models = tmp.path().join("models.yml");
    fs::write(
        &models,
        format!(
            "all:
  vars:
    pg_tls_profile: edb-pem
  children:
    postgres:
      hosts:
        db1: {{pg_tls_ca_mode: local-csr}}
        db2: {{pg_tls_ca_mode: local-csr}}
        db3:
          pg_tls_ca_mode: sslutils
          pg_tls_verify_user: enterprisedb
          pg_tls_client_users: [postgres, enterprisedb]
    pem_agents:
      hosts:
        db1: {{pem_agent_db_user: agent1, pem_agent_ssl_dir: {r1}/pem, pem_agent_cfg: {r1}/agent.cfg}}
        db2: {{pem_agent_db_user: agent2, pem_agent_ssl_dir: {r2}/pem, pem_agent_cfg: {r2}/agent.cfg}}
",
            r1 = root(1).display(),
            r2 = root(2).display()
        ),
    )
    .unwrap();
    let inv: &[&Path] = &[&models];

    // A dry run changes nothing, on the hosts or the control node.
    let conf = |k: usize| fs::read(tls_dir(k).join("postgresql.conf")).unwrap();
    let before: Vec<Vec<u8>> = (1..=3).map(conf).collect();
    let run = playbook(inv, &pki, &["--check"]);
    assert_eq!(run.code(), Some(0), "{}", run.all_text());
    assert!(!pki.exists(), "--check created the PKI");
    assert_eq!((1..=3).map(conf).collect::<Vec<_>>(), before);
    assert!(!tls_dir(1).join("server.key").exists());

    let mut outputs = String::new();
    let run = playbook(inv, &pki, &[]);
    outputs.push_str(&run.all_text());
    assert_eq!(run.code(), Some(0), "{}", run.all_text());

    // Acceptance 1: local-csr on db1 and db2. The key was born on the host: the PKI holds none
    // and never saw it; it matches the certificate: RSA 4096, 3650 days, CN = the DNS name.
    let ca = pki.join("ca.crt");
    let client = |u: &str| {
        (
            pki.join(format!("client/{u}/client.crt")),
            pki.join(format!("client/{u}/client.key")),
        )
    };
    let mut host_keys = Vec::new();
    for k in [1, 2] {
        let key = fs::read(tls_dir(k).join("server.key")).unwrap();
        let cert = fs::read(tls_dir(k).join("server.crt")).unwrap();
        let (cn, bits, days, spki) = cert_facts(&cert);
        assert_eq!(cn, dns(k));
        assert_eq!(bits, 4096, "db{k}");
        assert_eq!(
            days, 3650,
            "db{k}: lifetime in days (plus the hour of clock slack)"
        );
        assert_eq!(
            key_public(&key),
            spki,
            "db{k}: server.key does not match server.crt"
        );
        for f in ["server.key", "server.crt", "root.crt"] {
            assert_eq!(
                owner_mode(&tls_dir(k).join(f)),
                ("postgres".into(), "postgres".into(), 0o600),
                "db{k} {f}"
            );
        }
        assert!(!pki.join(format!("server/db{k}/server.key")).exists());
        assert_eq!(
            fs::read(pki.join(format!("server/db{k}/server.crt"))).unwrap(),
            cert
        );
        let (c, kf) = client("postgres");
        let (ok, out) = psql(k, "postgres", &ca, &c, &kf);
        assert!(ok && out == "t", "db{k}: {out}");
        host_keys.push(key);
    }
    let local = run.results("pki_csr", "db1");
    assert_eq!(local[0]["result"]["rekeyed"], true, "{}", local[0]);

    // Acceptance 2: sslutils on the enterprisedb host: the five files in PGDATA, all 0600
    // enterprisedb:enterprisedb; an mTLS login works; the run says the CA key left.
    for f in [
        "ca_key.key",
        "ca_certificate.crt",
        "root.crt",
        "server.crt",
        "server.key",
    ] {
        assert_eq!(
            owner_mode(&tls_dir(3).join(f)),
            ("enterprisedb".into(), "enterprisedb".into(), 0o600),
            "db3 {f}"
        );
    }
    assert_eq!(
        fs::read(tls_dir(3).join("ca_key.key")).unwrap(),
        fs::read(pki.join("ca.key")).unwrap()
    );
    assert_eq!(
        fs::read(tls_dir(3).join("root.crt")).unwrap(),
        fs::read(tls_dir(3).join("ca_certificate.crt")).unwrap()
    );
    let (cn, bits, days, _) = cert_facts(&fs::read(tls_dir(3).join("server.crt")).unwrap());
    assert_eq!((cn.as_str(), bits, days), (dns(3).as_str(), 4096, 3650));
    let (c, kf) = client("enterprisedb");
    let (ok, out) = psql(3, "enterprisedb", &ca, &c, &kf);
    assert!(ok && out == "t", "db3: {out}");
    let said = run.results("debug", "db3");
    assert!(
        said.iter().any(|r| r["msg"]
            .as_str()
            .is_some_and(|m| m.contains("left the control node"))
            || r["result"]["msg"]
                .as_str()
                .is_some_and(|m| m.contains("left the control node"))),
        "{said:?}"
    );

    // PEM agents: a client certificate of the same CA (CN = the agent's user), 0600 in the
    // agent's SSL directory, agent.cfg pointing at it (its other lines kept); it logs in.
    for (k, user) in [(1, "agent1"), (2, "agent2")] {
        let dir = root(k).join("pem");
        for f in [format!("{user}.crt"), format!("{user}.key")] {
            assert_eq!(
                owner_mode(&dir.join(&f)),
                ("root".into(), "root".into(), 0o600),
                "{f}"
            );
        }
        assert_eq!(
            fs::read_to_string(root(k).join("agent.cfg")).unwrap(),
            format!(
                "[PEM/agent]\npem_host=db1.f{NET}.fleet.test\npem_port=5432\nagent_id={k}\nagent_ssl_key={d}/{user}.key\nagent_ssl_crt={d}/{user}.crt\n",
                d = dir.display()
            )
        );
        let (cn, ..) = cert_facts(&fs::read(dir.join(format!("{user}.crt"))).unwrap());
        assert_eq!(cn, user);
        let (ok, out) = psql(
            1,
            user,
            &ca,
            &dir.join(format!("{user}.crt")),
            &dir.join(format!("{user}.key")),
        );
        assert!(ok, "{user} on db1: {out}");
    }

    // Acceptance 1, continued: a re-run changes nothing, re-keys nothing, reloads nothing.
    let before: Vec<String> = (1..=3).map(times).collect();
    let run = playbook(inv, &pki, &[]);
    outputs.push_str(&run.all_text());
    assert_eq!(run.code(), Some(0), "{}", run.all_text());
    for k in 1..=3 {
        assert_eq!(
            run.stat(&format!("db{k}"), "changed"),
            0,
            "{}",
            run.doc["stats"]
        );
    }
    assert_eq!((1..=3).map(times).collect::<Vec<_>>(), before);
    for (i, k) in [1, 2].into_iter().enumerate() {
        assert_eq!(
            fs::read(tls_dir(k).join("server.key")).unwrap(),
            host_keys[i]
        );
    }

    // No openssl on the host: the host fails with that reason, its key untouched.
    let run = playbook(
        inv,
        &pki,
        &[
            "--limit",
            "db2",
            "-e",
            "pg_tls_openssl=/nonexistent/openssl",
        ],
    );
    outputs.push_str(&run.all_text());
    assert_eq!(run.code(), Some(2), "{}", run.all_text());
    let msg = run.results("pki_csr", "db2")[0]["msg"].to_string();
    assert!(msg.contains("no openssl command-line tool"), "{msg}");
    assert_eq!(
        fs::read(tls_dir(2).join("server.key")).unwrap(),
        host_keys[1]
    );

    // pg_tls_rekey: a new key on the host (still none in the PKI), served after a reload.
    let start2 = times(2);
    let run = playbook(inv, &pki, &["--limit", "db2", "-e", "pg_tls_rekey=true"]);
    outputs.push_str(&run.all_text());
    assert_eq!(run.code(), Some(0), "{}", run.all_text());
    let new_key = fs::read(tls_dir(2).join("server.key")).unwrap();
    assert_ne!(new_key, host_keys[1], "pg_tls_rekey did not make a new key");
    let (_, _, _, spki) = cert_facts(&fs::read(tls_dir(2).join("server.crt")).unwrap());
    assert_eq!(key_public(&new_key), spki);
    assert!(!pki.join("server/db2/server.key").exists());
    assert_eq!(
        times(2).split(' ').next(),
        start2.split(' ').next(),
        "db2 was restarted"
    );
    let (c, kf) = client("postgres");
    assert!(psql(2, "postgres", &ca, &c, &kf).0);
    host_keys.push(new_key);

    // The keys born on the hosts never appeared: not their bytes, not their SHA-256, in no
    // output of any run and in no file of the control node's PKI.
    let pki_bytes = text(&every_byte(&pki));
    for key in &host_keys {
        let digest = sha256_hex(key);
        let body = text(key)
            .lines()
            .nth(1)
            .expect("a PEM body line")
            .to_string();
        assert!(!outputs.contains(&digest), "a key's SHA-256 was printed");
        assert!(!outputs.contains(&body), "key material was printed");
        assert!(!pki_bytes.contains(&digest) && !pki_bytes.contains(&body));
    }

    // Acceptance 4: revoke agent1's certificate and publish the CRL (root.crl, ssl_crl_file):
    // that certificate is refused ("certificate revoked"), agent2's accepted. agent1 gets a new
    // certificate under a new name (a revoked name is never issued again).
    let old = tmp.path().join("agent1-old");
    fs::create_dir_all(&old).unwrap();
    for f in ["agent1.crt", "agent1.key"] {
        fs::copy(root(1).join("pem").join(f), old.join(f)).unwrap();
    }
    let renamed = tmp.path().join("renamed.yml");
    fs::write(
        &renamed,
        "all:\n  hosts:\n    db1:\n      pem_agent_cert_name: pem-agent-db1-2\n",
    )
    .unwrap();
    let run = playbook(
        &[&models, &renamed],
        &pki,
        &[
            "-e",
            r#"{"pg_tls_crl": true, "pg_tls_revoke": ["pem-agent-db1"]}"#,
        ],
    );
    outputs.push_str(&run.all_text());
    assert_eq!(run.code(), Some(0), "{}", run.all_text());
    for k in 1..=3 {
        assert_eq!(
            owner_mode(&tls_dir(k).join("root.crl")).2,
            0o600,
            "db{k} root.crl"
        );
        assert_eq!(
            sql(k, "SHOW ssl_crl_file"),
            tls_dir(k).join("root.crl").display().to_string()
        );
    }
    let (ok, out) = psql(
        1,
        "agent1",
        &ca,
        &old.join("agent1.crt"),
        &old.join("agent1.key"),
    );
    assert!(
        !ok && out.contains("certificate revoked"),
        "revoked agent1: {out}"
    );
    let pem2 = root(2).join("pem");
    let (ok, out) = psql(
        1,
        "agent2",
        &ca,
        &pem2.join("agent2.crt"),
        &pem2.join("agent2.key"),
    );
    assert!(ok, "agent2: {out}");
    let pem1 = root(1).join("pem");
    assert_ne!(
        fs::read(pem1.join("agent1.crt")).unwrap(),
        fs::read(old.join("agent1.crt")).unwrap()
    );
    let (ok, out) = psql(
        1,
        "agent1",
        &ca,
        &pem1.join("agent1.crt"),
        &pem1.join("agent1.key"),
    );
    assert!(ok, "agent1's new certificate: {out}");

    // Acceptance 3: external. The user's CA and its certificates, made apart from castellan's.
    let ext = tmp.path().join("ext");
    let e = ext.to_str().unwrap();
    castellan_pki(&["init-ca", "--dir", e, "--cn", "Example Corp CA"]);
    for (name, cn, sans) in [
        ("db1", dns(1), vec![dns(1), FLEET.addr(1)]),
        ("db2", dns(2), vec![dns(2)]),
        (
            "other",
            "other.example.com".to_string(),
            vec!["other.example.com".to_string()],
        ),
    ] {
        let mut args = vec!["issue", "--dir", e, "server", name, "--cn", cn.as_str()];
        for s in &sans {
            args.extend(["--san", s.as_str()]);
        }
        castellan_pki(&args);
    }
    castellan_pki(&[
        "issue", "--dir", e, "client", "postgres", "--cn", "postgres",
    ]);
    let external = tmp.path().join("external.yml");
    let write_external = |cert: &str, key: &str| {
        fs::write(
            &external,
            format!(
                "all:\n  hosts:\n    db1:\n      pg_tls_ca_mode: external\n      pg_tls_external_cert: {e}/server/{cert}/server.crt\n      pg_tls_external_key: {e}/server/{key}/server.key\n      pg_tls_external_ca: {e}/ca.crt\n      pg_tls_verify_cert: {e}/client/postgres/client.crt\n      pg_tls_verify_key: {e}/client/postgres/client.key\n"
            ),
        )
        .unwrap();
    };
    let files1 = |_: ()| {
        [
            "server.crt",
            "server.key",
            "root.crt",
            "postgresql.conf",
            "pg_hba.conf",
        ]
        .map(|f| fs::read(tls_dir(1).join(f)).unwrap())
    };
    for (cert, key, reason) in [
        ("db1", "db2", "does not match the certificate"),
        (
            "other",
            "other",
            "db1.f19.fleet.test is not in the certificate's subjectAltName",
        ),
    ] {
        write_external(cert, key);
        let before = files1(());
        let run = playbook(&[&external], &pki, &["--limit", "db1"]);
        outputs.push_str(&run.all_text());
        assert_eq!(run.code(), Some(2), "{}", run.all_text());
        let msg = run.results("pki_check", "db1")[0]["msg"].to_string();
        assert!(msg.contains(reason), "{cert}/{key}: {msg}");
        assert!(
            run.results("copy", "db1").is_empty(),
            "something was pushed"
        );
        assert_eq!(files1(()), before, "db1 changed although its check failed");
    }
    // The user's matching files pass, are pushed, and are served.
    write_external("db1", "db1");
    let run = playbook(&[&external], &pki, &["--limit", "db1"]);
    assert_eq!(run.code(), Some(0), "{}", run.all_text());
    assert_eq!(
        fs::read(tls_dir(1).join("server.crt")).unwrap(),
        fs::read(ext.join("server/db1/server.crt")).unwrap()
    );
    let (ok, out) = psql(
        1,
        "postgres",
        &ext.join("ca.crt"),
        &ext.join("client/postgres/client.crt"),
        &ext.join("client/postgres/client.key"),
    );
    assert!(ok, "db1 with the user's certificates: {out}");
}
