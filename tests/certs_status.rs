//! Issue 13, `castellan certs status` as the monitoring entry point, on a fleet of real sshd +
//! PostgreSQL 15 hosts (net 23): the servers' certificates as served and the client certificate
//! files on the hosts (PEM agents written by `playbooks/pem-backend.yml`, a CAST Imaging node's
//! files, files listed in `castellan_cert_files`), read on the host over SSH. inotifywait (the
//! kernel's record of every open) proves no key file is opened; the real `prometheus-client`
//! parser reads the metrics (acceptance 5); a certificate of another CA or an older one exits 2,
//! an unreachable host 3. One test drives the steps in order: they share one fleet.
mod fleet_common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use fleet_common::FleetDef;
use serde_json::Value;

const NET: &str = "23";
const DIR: &str = "/tmp/castellan-certs-status-fleet";

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn root(k: usize) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/db{k}/root"))
}

/// (python of the prometheus-client venv, inotifywait), installed by the project's script.
fn tools() -> (String, String) {
    let out = Command::new("bash")
        .arg(repo("tests/monitoring/tools.sh"))
        .output()
        .expect("run tests/monitoring/tools.sh");
    assert!(out.status.success(), "tools.sh: {}", text(&out.stderr));
    let t = text(&out.stdout);
    let mut lines = t.lines();
    (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    )
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

fn pki_cmd(args: &[&str]) {
    let out = castellan(args);
    assert!(
        out.status.success(),
        "castellan {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `certs status` over the fleet and the holders' inventory, with `extra` arguments.
fn status(inv: &Path, pki: &Path, extra: &[&str]) -> Output {
    let fleet_inv = FLEET.inventory();
    let inv_s = inv.display().to_string();
    let pki_s = pki.display().to_string();
    let mut args = vec![
        "certs",
        "status",
        "-i",
        &fleet_inv,
        "-i",
        &inv_s,
        "--pki-dir",
        &pki_s,
    ];
    args.extend(extra);
    castellan(&args)
}

fn json_status(inv: &Path, pki: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut a = vec!["--output", "json"];
    a.extend(extra);
    let out = status(inv, pki, &a);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

/// The entry of the file `path` in host `h`'s `files`.
fn file_entry<'a>(doc: &'a Value, h: &str, path: &Path) -> &'a Value {
    doc["hosts"][h]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files for {h}: {doc}"))
        .iter()
        .find(|f| f["file"] == path.display().to_string())
        .unwrap_or_else(|| panic!("{} not reported for {h}: {doc}", path.display()))
}

/// The metrics as the prometheus-client parser understood them.
fn parse_metrics(python: &str, metrics: &str) -> Value {
    use std::io::Write;
    let mut child = Command::new(python)
        .arg(repo("tests/monitoring/parse_prom.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus-client rejects the metrics: {}\n{metrics}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn family<'a>(parsed: &'a Value, name: &str) -> &'a Value {
    parsed
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name} in {parsed}"))
}

/// inotifywait watching `dirs` for opens and reads, ready when it says so.
struct Watch {
    child: Child,
}

impl Watch {
    fn start(inotifywait: &str, dirs: &[PathBuf]) -> Watch {
        let mut child = Command::new(inotifywait)
            .args([
                "-m", "-r", "-e", "open", "-e", "access", "--format", "%e %w%f",
            ])
            .args(dirs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run inotifywait");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "inotifywait ended");
            if line.contains("Watches established") {
                break;
            }
        }
        Watch { child }
    }

    /// Every path opened or read while watching.
    fn stop(mut self) -> BTreeSet<String> {
        // Let the last events reach the pipe, then end our own child.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = self.child.kill();
        let out = self.child.wait_with_output().unwrap();
        text(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, p)| p.to_string()))
            .collect()
    }
}

#[test]
fn client_files_and_servers_reported_matched_and_parsed_no_key_opened() {
    let (python, inotifywait) = tools();
    FLEET.script("down.sh", &["--purge"]);
    FLEET.script("up.sh", &["3"]);
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let pki_s = pki.display().to_string();

    // The holders: db1 a PEM agent (its files written by the role), db3 a CAST Imaging node
    // (the role's files, copied here: cast_ssl_dir), db2 two files listed in castellan_cert_files.
    let pem = root(1).join("pem");
    let cast = root(3).join("cast-ssl");
    let extra = root(2).join("extra");
    fs::write(root(1).join("agent.cfg"), "[PEM/agent]\nagent_id=1\n").unwrap();
    let holders = tmp.path().join("holders.yml");
    fs::write(
        &holders,
        format!(
            "all:
  children:
    pem_agents:
      hosts:
        db1: {{pem_agent_ssl_dir: {pem}, pem_agent_cfg: {cfg}}}
    cast_imaging:
      hosts:
        db3: {{cast_ssl_dir: {cast}}}
  hosts:
    db2:
      castellan_cert_files:
        - {extra}/app.crt
        - {{path: {extra}/chain.crt, name: app2}}
",
            pem = pem.display(),
            cfg = root(1).join("agent.cfg").display(),
            cast = cast.display(),
            extra = extra.display(),
        ),
    )
    .unwrap();
    let run = castellan(&[
        "playbook",
        repo("playbooks/pem-backend.yml").to_str().unwrap(),
        "-i",
        &FLEET.inventory(),
        "-i",
        holders.to_str().unwrap(),
        "-e",
        &format!("pki_dir={pki_s}"),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert!(pem.join("agent1.crt").is_file() && pem.join("agent1.key").is_file());

    // db3's CAST files (every file of the bundle: keys next to the certificate), db2's files.
    pki_cmd(&[
        "pki",
        "issue",
        "--dir",
        &pki_s,
        "client",
        "operator.db3",
        "--cn",
        "operator",
    ]);
    fs::create_dir_all(&cast).unwrap();
    for f in [
        "client.crt",
        "client.key",
        "client.pk8",
        "client.pem.pk8",
        "client.pfx",
        "root.crt",
    ] {
        fs::copy(pki.join("client/operator.db3").join(f), cast.join(f)).unwrap();
    }
    for name in ["app", "app2"] {
        pki_cmd(&["pki", "issue", "--dir", &pki_s, "client", name]);
    }
    fs::create_dir_all(&extra).unwrap();
    fs::copy(pki.join("client/app/client.crt"), extra.join("app.crt")).unwrap();
    fs::copy(pki.join("client/app/client.key"), extra.join("app.key")).unwrap();
    let chain = [
        fs::read(pki.join("client/app2/client.crt")).unwrap(),
        fs::read(pki.join("ca.crt")).unwrap(),
    ]
    .concat();
    fs::write(extra.join("chain.crt"), chain).unwrap();
    // A key no one may read, named like the others.
    fs::copy(pki.join("client/app2/client.key"), extra.join("chain.key")).unwrap();
    fs::set_permissions(extra.join("chain.key"), fs::Permissions::from_mode(0o000)).unwrap();
    let certs: BTreeSet<String> = [
        pem.join("agent1.crt"),
        extra.join("app.crt"),
        extra.join("chain.crt"),
        cast.join("client.crt"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();

    // 1. Everything current: exit 0, each file read on its host and matched; the kernel saw
    //    castellan open the four certificates and nothing else in those folders.
    let watch = Watch::start(&inotifywait, &[pem.clone(), extra.clone(), cast.clone()]);
    let (code, doc) = json_status(&holders, &pki, &[]);
    let opened = watch.stop();
    assert_eq!(code, Some(0), "{doc:#}");
    assert_eq!(opened, certs, "files opened on the hosts");
    for k in 1..=3 {
        let h = &doc["hosts"][format!("db{k}")];
        assert_eq!(h["matches_pki"], true, "served by db{k}: {h}");
        assert!(h["days_left"].as_i64().unwrap() >= 823, "{h}");
        // DESIGN.md's contract for a server, as before: its SANs, issuer, not_after, sha256.
        let ip = serde_json::json!(format!("IP:127.{NET}.1.{k}"));
        assert!(h["sans"].as_array().unwrap().contains(&ip), "{h}");
        for key in ["subject", "issuer", "not_after", "sha256"] {
            assert!(h[key].is_string(), "{key}: {h}");
        }
    }
    let agent = file_entry(&doc, "db1", &pem.join("agent1.crt"));
    assert_eq!(agent["name"], "pem-agent-db1");
    assert_eq!(agent["kind"], "client");
    assert!(
        agent["subject"].as_str().unwrap().contains("CN=agent1"),
        "{agent}"
    );
    let op = file_entry(&doc, "db3", &cast.join("client.crt"));
    assert_eq!(op["name"], "operator.db3");
    assert_eq!(op["matches_pki"], true, "{op}");
    assert_eq!(op["sha256"].as_str().unwrap().len(), 64);
    assert!(op["days_left"].as_i64().unwrap() >= 823, "{op}");
    assert!(op["not_after"].as_str().unwrap().ends_with('Z'), "{op}");
    assert!(op["issuer"].as_str().unwrap().contains("CN="), "{op}");
    let chain = file_entry(&doc, "db2", &extra.join("chain.crt"));
    assert_eq!(
        (
            chain["certificates"].as_u64(),
            chain["matches_pki"].as_bool()
        ),
        (Some(2), Some(true))
    );
    assert_eq!(
        file_entry(&doc, "db2", &extra.join("app.crt"))["matches_pki"],
        true
    );
    let all = text(&serde_json::to_vec(&doc).unwrap());
    assert!(!all.contains("PRIVATE KEY"));

    // 2. Acceptance 5: Prometheus text, written atomically to the textfile collector's folder
    //    and printed, parsed by prometheus-client: one days_left series per certificate.
    let prom_dir = tmp.path().join("textfile");
    fs::create_dir(&prom_dir).unwrap();
    let prom = prom_dir.join("castellan.prom");
    let prom_s = prom.display().to_string();
    let out = status(
        &holders,
        &pki,
        &["--output", "prometheus", "--prometheus-file", &prom_s],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = fs::read_to_string(&prom).unwrap();
    assert_eq!(written, text(&out.stdout));
    assert_eq!(fs::metadata(&prom).unwrap().mode() & 0o777, 0o644);
    let names: Vec<_> = fs::read_dir(&prom_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["castellan.prom"], "a temporary file was left");
    let parsed = parse_metrics(&python, &written);
    let days = family(&parsed, "castellan_cert_days_left");
    assert_eq!(days["type"], "gauge");
    let samples = days["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3 + certs.len(), "{days}");
    let keys: BTreeSet<(String, String)> = samples
        .iter()
        .map(|s| {
            (
                s["labels"]["host"].as_str().unwrap().to_string(),
                s["labels"]["file"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        keys.len(),
        samples.len(),
        "two series for one certificate: {days}"
    );
    for s in samples {
        assert!(s["value"].as_f64().unwrap() >= 823.0, "{s}");
        assert!(
            s["labels"]["subject"].as_str().unwrap().contains("CN="),
            "{s}"
        );
    }
    for s in family(&parsed, "castellan_cert_matches_pki")["samples"]
        .as_array()
        .unwrap()
    {
        assert_eq!(s["value"], 1.0, "{s}");
    }
    assert_eq!(
        family(&parsed, "castellan_cert_status_exit_code")["samples"][0]["value"],
        0.0
    );
    // Replaced by a rename, never rewritten in place: a new inode each time.
    let inode = fs::metadata(&prom).unwrap().ino();
    let out = status(&holders, &pki, &["--prometheus-file", &prom_s]);
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(fs::metadata(&prom).unwrap().ino(), inode);
    assert!(
        text(&out.stdout).contains("HOST"),
        "--output text still prints the table"
    );

    // 3. A certificate from another CA on the CAST node: exit 2, that file differs.
    let original = fs::read(cast.join("client.crt")).unwrap();
    let other = tmp.path().join("other-pki");
    let other_s = other.display().to_string();
    pki_cmd(&["pki", "init-ca", "--dir", &other_s, "--cn", "Another CA"]);
    pki_cmd(&[
        "pki",
        "issue",
        "--dir",
        &other_s,
        "client",
        "operator.db3",
        "--cn",
        "operator",
    ]);
    fs::copy(
        other.join("client/operator.db3/client.crt"),
        cast.join("client.crt"),
    )
    .unwrap();
    let (code, doc) = json_status(&holders, &pki, &[]);
    assert_eq!(code, Some(2), "{doc:#}");
    let op = file_entry(&doc, "db3", &cast.join("client.crt"));
    assert_eq!(op["matches_pki"], false, "{op}");
    assert!(
        op["issuer"].as_str().unwrap().contains("Another CA"),
        "{op}"
    );
    assert_eq!(
        file_entry(&doc, "db1", &pem.join("agent1.crt"))["matches_pki"],
        true
    );
    let out = status(&holders, &pki, &["--output", "prometheus"]);
    assert_eq!(out.status.code(), Some(2));
    let parsed = parse_metrics(&python, &text(&out.stdout));
    let differs: Vec<&Value> = family(&parsed, "castellan_cert_matches_pki")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["value"] == 0.0)
        .collect();
    assert_eq!(differs.len(), 1, "{differs:?}");
    assert_eq!(differs[0]["labels"]["host"], "db3");
    assert_eq!(
        family(&parsed, "castellan_cert_status_exit_code")["samples"][0]["value"],
        2.0
    );

    //    The node's own certificate again, but the PKI renewed it since: an older certificate.
    fs::write(cast.join("client.crt"), &original).unwrap();
    assert_eq!(json_status(&holders, &pki, &[]).0, Some(0));
    pki_cmd(&[
        "pki",
        "issue",
        "--dir",
        &pki_s,
        "client",
        "operator.db3",
        "--cn",
        "operator",
        "--key-type",
        "ecdsa-p384",
    ]);
    let (code, doc) = json_status(&holders, &pki, &[]);
    assert_eq!(code, Some(2), "{doc:#}");
    assert_eq!(
        file_entry(&doc, "db3", &cast.join("client.crt"))["matches_pki"],
        false
    );
    fs::copy(
        pki.join("client/operator.db3/client.crt"),
        cast.join("client.crt"),
    )
    .unwrap();
    assert_eq!(json_status(&holders, &pki, &[]).0, Some(0));

    // 4. Renewal due: every certificate expires within 900 days.
    let (code, doc) = json_status(&holders, &pki, &["--warn-days", "900"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        file_entry(&doc, "db1", &pem.join("agent1.crt"))["expiring"],
        true
    );

    // 5. db2's sshd gone (its server still serves): its files cannot be read, exit 3.
    FLEET.script("kill.sh", &["db2"]);
    let (code, doc) = json_status(&holders, &pki, &[]);
    assert_eq!(code, Some(3), "{doc:#}");
    let h = &doc["hosts"]["db2"];
    assert_eq!(h["unreachable"], true, "{h}");
    assert!(h["files_error"].as_str().is_some(), "{h}");
    assert_eq!(h["matches_pki"], true, "the server still answers: {h}");
    let out = status(&holders, &pki, &["--output", "prometheus"]);
    assert_eq!(out.status.code(), Some(3));
    let parsed = parse_metrics(&python, &text(&out.stdout));
    let up = family(&parsed, "castellan_cert_status_up")["samples"]
        .as_array()
        .unwrap()
        .clone();
    let down: Vec<_> = up.iter().filter(|s| s["value"] == 0.0).collect();
    assert_eq!(down.len(), 1, "{up:?}");
    assert_eq!(
        (
            down[0]["labels"]["host"].as_str(),
            down[0]["labels"]["kind"].as_str()
        ),
        (Some("db2"), Some("client"))
    );
    FLEET.script("up.sh", &["3"]);
    assert_eq!(json_status(&holders, &pki, &[]).0, Some(0));
}

/// A key file's name in `castellan_cert_files` is refused with its place, before any host is
/// contacted (listeners on the host's SSH and PostgreSQL ports see no connection): exit 4.
#[test]
fn a_key_file_in_castellan_cert_files_is_refused_before_any_host() {
    let ssh = TcpListener::bind("127.23.9.9:22").unwrap();
    let pg = TcpListener::bind("127.23.9.9:5432").unwrap();
    ssh.set_nonblocking(true).unwrap();
    pg.set_nonblocking(true).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inventory.yml");
    fs::write(
        &inv,
        "all:\n  children:\n    postgres:\n      hosts:\n        h1:\n          ansible_host: 127.23.9.9\n          castellan_cert_files:\n            - /etc/ssl/h1/client.crt\n            - /etc/ssl/h1/client.key\n",
    )
    .unwrap();
    let out = castellan(&["certs", "status", "-i", inv.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("{}:8:", inv.display())), "{err}");
    assert!(
        err.contains("client.key") && err.contains("never a key file"),
        "{err}"
    );
    for l in [&ssh, &pg] {
        assert_eq!(
            l.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "a host was contacted"
        );
    }
}
