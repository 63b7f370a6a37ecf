//! Issue 10 end to end: `playbooks/cast-imaging.yml` against a fleet of 2 PostgreSQL hosts and one
//! CAST Imaging component node (`tests/fleet/up.sh 2 --cast 1`, net 17). Checks what the node
//! holds afterwards with real clients run as the service user `castsvc`: psql (libpq) and pgjdbc
//! (`tests/fixtures/jdbc/PgLogin.java`, with `client.pk8`), `openssl pkcs12` on the PKCS#12
//! bundle; the systemd calls through the recording fixture `tests/fixtures/cast/systemctl`. One
//! test drives the steps in order: they share one fleet.
mod fleet_common;

use fleet_common::FleetDef;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const NET: &str = "17";
const DIR: &str = "/tmp/castellan-cast-test-fleet";
const DBS: usize = 2;

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The node's work directory (its `fleet_root`).
fn root() -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/cast1/root"))
}

fn ini() -> PathBuf {
    root().join("etc/cast-imaging/SSLParameters.ini")
}

fn ssl() -> PathBuf {
    root().join("etc/cast-imaging/ssl")
}

fn dns(k: usize) -> String {
    format!("db{k}.f{NET}.fleet.test")
}

/// Run the playbook with `--output json`; `extra` are more arguments (`-e`, `-i`, `--check`).
fn play(extra: &[&str]) -> (Output, serde_json::Value, f64) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            repo("playbooks/cast-imaging.yml").to_str().unwrap(),
        ])
        .args(["-i", &FLEET.inventory(), "--output", "json"])
        .args(extra)
        .output()
        .expect("run castellan");
    let secs = started.elapsed().as_secs_f64();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc, secs)
}

fn stat(doc: &serde_json::Value, host: &str, key: &str) -> u64 {
    doc["stats"][host][key].as_u64().unwrap_or(u64::MAX)
}

/// Every message of a host's failed results, for assertions on the reason.
fn messages(doc: &serde_json::Value, host: &str) -> String {
    let mut m = Vec::new();
    for p in doc["plays"].as_array().into_iter().flatten() {
        for t in p["tasks"].as_array().into_iter().flatten() {
            let r = &t["results"][host];
            if let Some(s) = r["msg"].as_str() {
                m.push(s.to_string());
            }
            m.push(r["result"].to_string());
        }
    }
    m.join("\n")
}

/// A program run as the component nodes' service user.
fn as_castsvc(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "castsvc", "--", program])
        .args(args)
        .env_remove("PGSSLMODE")
        .current_dir("/")
        .output()
        .expect("run as castsvc")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file and directory under `dir`: mode, owner, mtime (ns) and content.
type Snapshot = BTreeMap<PathBuf, (u32, u32, i128, Vec<u8>)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(p, (m.mode(), m.uid(), mtime, content));
        }
    }
    out
}

/// The lines of section `[name]` of an INI text (up to the next section).
fn section(ini: &str, name: &str) -> Vec<String> {
    let head = format!("[{name}]");
    ini.lines()
        .skip_while(|l| l.trim() != head)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn value<'a>(lines: &'a [String], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// The calls the systemctl fixture recorded, one a line.
fn systemctl_calls() -> Vec<String> {
    std::fs::read_to_string(root().join("bin/systemctl.calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

const INI_BEFORE: &str = "\
# CAST Imaging: database connections (edited by hand before castellan)
; the share's copy is at \\\\files\\cast
[legacy.example.com:5433]
ssl=true
sslmode=require

";

const UNITS: [&str; 2] = ["imaging-services.service", "analysis-node.service"];

/// The installer's `.conf` as the installer shipped it and a person edited it.
const CONF_BEFORE: &str = "\
# CAST Imaging installer configuration (edited by hand)
export INSTALL_DIR=\"/opt/cast imaging\"
CSS_HOST=db1.f17.fleet.test
CSS_PORT=5432
CSS_SSL_ENABLED=\"false\"   # TLS to the database
CSS_SSL_MODE='disable'

# end of the CSS settings
";

/// The seven variables the installer reads for certificate authentication.
const CSS: [&str; 7] = [
    "CSS_SSL_ENABLED",
    "CSS_SSL_MODE",
    "CSS_SSL_ROOT_CERT",
    "CSS_SSL_CERT",
    "CSS_SSL_KEY",
    "CSS_SSL_KEY_PEM",
    "CSS_INI_FILE_PATH",
];

/// The values of `keys` after a POSIX shell sources `file` (as an installer would), in order.
fn sourced(file: &Path, keys: &[&str]) -> Vec<String> {
    let vars: Vec<String> = keys.iter().map(|k| format!("\"${k}\"")).collect();
    let script = format!(". \"$1\"; printf '%s\\n' {}", vars.join(" "));
    let o = Command::new("env")
        .args(["-i", "/bin/sh", "-c", &script, "sh"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "sh . {}: {}", file.display(), text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The lines of a KEY=VALUE text that do not assign one of `keys`.
fn other_lines<'a>(text: &'a str, keys: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix("export ").unwrap_or(t);
            !keys
                .iter()
                .any(|k| t.strip_prefix(k).is_some_and(|r| r.starts_with('=')))
        })
        .collect()
}

/// The assignments of `key` in a KEY=VALUE text.
fn assignments<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    text.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// The PKCS#12 password (a secret: never in castellan's output).
const PFX_PASSWORD: &str = "pfx-Secret-4711";

/// A certificate as DER, read by openssl from PEM text (the first certificate in `pem`).
fn der_of(pem: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["x509", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl x509: {}", text(&out));
    out.stdout
}

#[test]
fn cast_imaging_node_on_a_fleet() {
    FLEET.script("up.sh", &[&DBS.to_string(), "--cast", "1"]);
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");

    // The node as a CAST install left it: an .ini with another section and comments, the
    // installer's .conf; and the systemctl fixture.
    let _ = std::fs::remove_dir_all(root().join("etc"));
    std::fs::create_dir_all(ini().parent().unwrap()).unwrap();
    std::fs::write(ini(), INI_BEFORE).unwrap();
    std::fs::create_dir_all(root().join("bin")).unwrap();
    let systemctl = root().join("bin/systemctl");
    std::fs::copy(repo("tests/fixtures/cast/systemctl"), &systemctl).unwrap();
    let _ = std::fs::remove_file(root().join("bin/systemctl.calls"));
    let conf = root().join("opt/cast-imaging/installer/cast-imaging.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, CONF_BEFORE).unwrap();
    let vars = tmp.path().join("vars.json");
    std::fs::write(
        &vars,
        serde_json::json!({
            "pki_dir": pki,
            "cast_systemctl": systemctl,
            "cast_systemd_units": UNITS,
            "cast_pfx_password": PFX_PASSWORD,
            "cast_installer_conf": conf,
        })
        .to_string(),
    )
    .unwrap();
    let vars_arg = format!("@{}", vars.display());
    let base = ["-e", vars_arg.as_str()];

    // A dry run changes nothing on the node and creates no PKI.
    let before = snapshot(&root());
    let (out, _, _) = play(&[&base[..], &["--check"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(snapshot(&root()), before, "--check changed the node");
    assert!(!pki.exists(), "--check created the PKI");

    // Acceptance 1: the playbook exits 0 ...
    let (out, doc, first_secs) = play(&base);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !text(&out).contains(PFX_PASSWORD),
        "the PKCS#12 password is in castellan's output"
    );
    eprintln!(
        "first run: {first_secs:.2} s, changed: {}",
        serde_json::to_string(&doc["stats"]).unwrap()
    );

    // ... the .ini has a [name:5432] section per database with ssl=true, sslmode=verify-full and
    // paths that exist; the other section and the comments are kept, in order.
    let ini_text = std::fs::read_to_string(ini()).unwrap();
    assert!(
        ini_text.starts_with(INI_BEFORE),
        "the existing lines changed:\n{ini_text}"
    );
    for k in 1..=DBS {
        let s = section(&ini_text, &format!("{}:5432", dns(k)));
        assert_eq!(value(&s, "ssl"), Some("true"), "{ini_text}");
        assert_eq!(value(&s, "sslmode"), Some("verify-full"), "{ini_text}");
        for key in ["sslcert", "sslkey", "sslrootcert"] {
            let p = value(&s, key).unwrap_or_else(|| panic!("no {key}: {ini_text}"));
            assert!(Path::new(p).is_file(), "{key}={p} does not exist");
        }
        assert_eq!(
            value(&s, "sslkey"),
            Some(ssl().join("client.pk8").to_str().unwrap())
        );
    }

    // ... keys 0600 and certificates 0644, owned by the service user.
    let castsvc = nix::unistd::User::from_name("castsvc").unwrap().unwrap();
    for (f, mode) in [
        ("client.key", 0o600),
        ("client.pk8", 0o600),
        ("client.pem.pk8", 0o600),
        ("client.pfx", 0o600),
        ("client.crt", 0o644),
        ("root.crt", 0o644),
    ] {
        let m = std::fs::metadata(ssl().join(f)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, mode, "{f}");
        assert_eq!(m.uid(), castsvc.uid.as_raw(), "{f}");
    }

    let f = |n: &str| ssl().join(n).display().to_string();

    // ... CASTCONNECTIONEXTRAPARAMETERS names the .ini in the environment file.
    let env_file = root().join("etc/environment");
    assert_eq!(
        sourced(&env_file, &["CASTCONNECTIONEXTRAPARAMETERS"]),
        [ini().display().to_string()]
    );
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    assert_eq!(
        assignments(&env_text, "CASTCONNECTIONEXTRAPARAMETERS"),
        [format!("CASTCONNECTIONEXTRAPARAMETERS={}", ini().display())]
    );

    // Acceptance 3: the installer's .conf gets exactly the seven variables (each line that set one
    // keeps its quoting), every other line byte-identical and in order.
    let conf_after = std::fs::read_to_string(&conf).unwrap();
    assert_eq!(
        other_lines(&conf_after, &CSS),
        other_lines(CONF_BEFORE, &CSS),
        "{conf_after}"
    );
    assert_eq!(
        sourced(&conf, &CSS),
        [
            "true".to_string(),
            "verify-full".into(),
            f("root.crt"),
            f("client.crt"),
            f("client.pk8"),
            f("client.pem.pk8"),
            ini().display().to_string(),
        ],
        "{conf_after}"
    );
    for k in CSS {
        assert_eq!(assignments(&conf_after, k).len(), 1, "{k}: {conf_after}");
    }
    assert_eq!(
        assignments(&conf_after, "CSS_SSL_ENABLED"),
        ["CSS_SSL_ENABLED=\"true\"   # TLS to the database"]
    );
    assert_eq!(
        assignments(&conf_after, "CSS_SSL_MODE"),
        ["CSS_SSL_MODE='verify-full'"]
    );

    // Acceptance 5: the PKCS#12 bundle opens with `openssl pkcs12 -info -nokeys` (with the
    // password, not without) and holds the node's certificate.
    let pfx = ssl().join("client.pfx");
    let pkcs12 = |pass: &str| {
        Command::new("openssl")
            .args(["pkcs12", "-info", "-nokeys", "-clcerts", "-in"])
            .arg(&pfx)
            .args(["-passin", &format!("pass:{pass}")])
            .output()
            .unwrap()
    };
    let o = pkcs12(PFX_PASSWORD);
    assert!(o.status.success(), "openssl pkcs12: {}", text(&o));
    assert_eq!(
        der_of(&o.stdout),
        der_of(&std::fs::read(ssl().join("client.crt")).unwrap()),
        "client.pfx holds another certificate"
    );
    assert!(
        !pkcs12("").status.success(),
        "client.pfx opens without its password"
    );

    // ... psql, run as the service user with the delivered files, logs in to every database over
    // TLS; so does pgjdbc with client.pk8.
    let java_src = root().join("PgLogin.java");
    std::fs::copy(repo("tests/fixtures/jdbc/PgLogin.java"), &java_src).unwrap();
    for k in 1..=DBS {
        let conninfo = format!(
            "host={} port=5432 dbname=postgres user=postgres sslmode=verify-full sslcert={} sslkey={} sslrootcert={} connect_timeout=10",
            dns(k),
            f("client.crt"),
            f("client.key"),
            f("root.crt")
        );
        let o = as_castsvc(
            "psql",
            &[
                "-XAt",
                "-c",
                "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &conninfo,
            ],
        );
        assert_eq!(text(&o).trim(), "postgres|t", "psql to db{k}: {}", text(&o));
        let o = as_castsvc(
            "java",
            &[
                "-cp",
                "/usr/share/java/postgresql.jar",
                java_src.to_str().unwrap(),
                &dns(k),
                "5432",
                "postgres",
                "postgres",
                &f("client.crt"),
                &f("client.pk8"),
                &f("root.crt"),
            ],
        );
        assert!(o.status.success(), "pgjdbc to db{k}: {}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "current_user=postgres\nssl=true\n",
            "pgjdbc to db{k}"
        );
    }

    // The systemd drop-ins: one per unit, then one daemon-reload and a restart of each unit.
    for u in UNITS {
        let d = std::fs::read_to_string(root().join(format!(
            "etc/systemd/system/{u}.d/cast-imaging-connection.conf"
        )))
        .unwrap();
        assert!(
            d.contains(&format!(
                "\n[Service]\nEnvironment=\"CASTCONNECTIONEXTRAPARAMETERS={}\"\n",
                ini().display()
            )),
            "{d}"
        );
    }
    let mut want = vec!["daemon-reload".to_string()];
    want.extend(UNITS.iter().map(|u| format!("restart {u}")));
    assert_eq!(systemctl_calls(), want);

    // A second run changes nothing and calls systemctl for nothing.
    let (out, doc, second_secs) = play(&base);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for h in ["db1", "db2", "cast1"] {
        assert_eq!(stat(&doc, h, "changed"), 0, "{h}: {}", doc["stats"]);
    }
    eprintln!("second run: {second_secs:.2} s, changed=0 on every host");
    assert_eq!(systemctl_calls(), want);

    // One drop-in edited by hand: the next run rewrites it, reloads once, restarts that unit only.
    let dropin = root().join(format!(
        "etc/systemd/system/{}.d/cast-imaging-connection.conf",
        UNITS[1]
    ));
    std::fs::write(
        &dropin,
        "[Service]\nEnvironment=CASTCONNECTIONEXTRAPARAMETERS=/old.ini\n",
    )
    .unwrap();
    let (out, _, _) = play(&base);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    want.push("daemon-reload".into());
    want.push(format!("restart {}", UNITS[1]));
    assert_eq!(systemctl_calls(), want);

    // The check of the served certificate can fail: a fingerprint that is not the server's.
    let (out, doc, _) = play(&[
        &base[..],
        &[
            "-e",
            r#"{"cast_server_fingerprints": {"db2": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}}"#,
        ],
    ]
    .concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = messages(&doc, "cast1");
    assert!(
        msg.contains(&format!(
            "{}:5432 serves the certificate with SHA-256",
            dns(2)
        )) && msg.contains("not the PKI's 00112233"),
        "{msg}"
    );

    // Acceptance 2: `require` on a fresh node directory: only ssl=true and sslmode=require, no
    // client files; stale certificate lines of a section are removed.
    let fresh = root().join("require");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).unwrap();
    let fresh_ini = fresh.join("SSLParameters.ini");
    std::fs::write(
        &fresh_ini,
        format!(
            "[{}:5432]\nssl=true\nsslmode=verify-full\nsslcert=/x/client.crt\nsslkey=/x/client.pk8\nsslrootcert=/x/root.crt\n",
            dns(1)
        ),
    )
    .unwrap();
    let fresh_conf = fresh.join("cast-imaging.conf");
    std::fs::write(&fresh_conf, CONF_BEFORE).unwrap();
    let require_vars = serde_json::json!({
        "cast_installer_conf": [fresh_conf],
        "cast_ssl_mode": "require",
        "cast_ssl_dir": fresh.join("ssl"),
        "cast_ini_path": fresh_ini,
        "cast_environment_file": fresh.join("environment"),
        "cast_systemd_units": [],
    })
    .to_string();
    let (out, _, _) = play(&[&base[..], &["-e", &require_vars]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let text_req = std::fs::read_to_string(&fresh_ini).unwrap();
    for k in 1..=DBS {
        assert_eq!(
            section(&text_req, &format!("{}:5432", dns(k))),
            ["ssl=true", "sslmode=require"],
            "{text_req}"
        );
    }
    assert!(
        !fresh.join("ssl").exists(),
        "require mode wrote client files"
    );
    assert_eq!(
        sourced(&fresh_conf, &CSS),
        [
            "true",
            "require",
            "",
            "",
            "",
            "",
            fresh_ini.to_str().unwrap()
        ],
        "no client files in require mode"
    );
    assert_eq!(
        sourced(
            &fresh.join("environment"),
            &["CASTCONNECTIONEXTRAPARAMETERS"]
        ),
        [fresh_ini.display().to_string()]
    );

    // Acceptance 4: the control_panel database is CAST's bundled Docker container: the node fails
    // before any change (not a file of it touched, no certificate issued), exit 2, with the reason;
    // the check play comes first, so the databases are not touched either.
    let bundled = tmp.path().join("bundled.yml");
    std::fs::write(
        &bundled,
        "all:\n  hosts:\n    db1:\n      cast_database_kind: docker-bundled\n",
    )
    .unwrap();
    let before = snapshot(&root());
    let pki_before = snapshot(&pki);
    let (out, doc, _) = play(&[&base[..], &["-i", bundled.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(stat(&doc, "cast1", "failed"), 1);
    assert_eq!(stat(&doc, "cast1", "changed"), 0);
    let msg = messages(&doc, "cast1");
    assert!(
        msg.contains("cannot be configured for certificate authentication")
            && msg.contains("control_panel")
            && msg.contains("extra PostgreSQL instance for analysis data"),
        "{msg}"
    );
    assert_eq!(snapshot(&root()), before, "a file of the node changed");
    assert_eq!(snapshot(&pki), pki_before, "the PKI changed");
    for h in ["db1", "db2"] {
        assert!(
            doc["stats"][h].is_null() || stat(&doc, h, "ok") == 0,
            "{h} was touched: {}",
            doc["stats"]
        );
    }
}
