//! The secret-leak test (issue 8): `playbooks/enable-mtls.yml` on a fleet of real sshd +
//! PostgreSQL hosts with `--diff -vvv --output json`, then a playbook that copies a DER key
//! (`client.pk8`) and a PEM key over other keys with `--diff`, writes and prints a `no_log`
//! value, loops over key content and runs `no_log` shell tasks with a secret in their text,
//! in the text and the JSON output, then a run that fails with a handler pending (so that
//! `.castellan/` holds state). Everything they produced is scanned: stdout, stderr, the
//! JSON reports, every file under the `.castellan/` state directories, the hosts' sshd and
//! PostgreSQL logs, and the process table watched every 5 ms during the runs (the hosts are on
//! this machine). No window of any private key of the PKI and no `no_log` value may appear.
//!
//! Fleet: net 12, dir /tmp/castellan-fleet-secrets (tests/fleet/README.md).
mod fleet_common;

use fleet_common::FleetDef;
mod secret_scan;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use secret_scan::ps::PsWatch;
use secret_scan::Needles;

const NET: &str = "12";
const DIR: &str = "/tmp/castellan-fleet-secrets";
const HOSTS: usize = 2;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn fleet(script: &str, args: &[&str]) -> Output {
    FLEET.script(script, args)
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

fn ok(what: &str, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every regular file under `dir` (recursively), with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) if m.is_file() => {
                    if let Ok(b) = std::fs::read(&p) {
                        out.push((p, b));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Every `.castellan` directory under `dir`.
fn state_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            if e.file_name() == ".castellan" {
                found.push(p);
            } else if e.file_name() != "target" && e.file_name() != ".git" {
                state_dirs(&p, found);
            }
        }
    }
}

/// A run that fails after a key was pushed and a handler notified: the notification (and
/// whatever a rollback needs) is kept in `.castellan/` for the next run; it must hold no secret.
const PENDING_PLAYBOOK: &str = r#"- name: pending
  hosts: postgres
  vars_files: [keys.yml]
  tasks:
    - name: a key pushed, a handler notified
      copy: {src: "{{ pki_dir }}/client/postgres/client.key", dest: "{{ fleet_root }}/pending.key", mode: "0600", backup: yes}
      notify: reload with a secret
    - name: a no_log value pushed, a handler notified
      copy: {content: "{{ nolog_value }}", dest: "{{ fleet_root }}/pending.token", mode: "0600", backup: yes}
      notify: reload with a secret
      no_log: true
    - name: the host fails before the handler runs
      fail: {msg: "stop here"}
  handlers:
    - name: reload with a secret
      shell: "echo '{{ nolog_value }}' > /dev/null"
      no_log: true
"#;

const SECRETS_PLAYBOOK: &str = r#"# Everything here handles a secret; nothing of it may be printed.
- name: secrets
  hosts: postgres
  vars_files: [keys.yml]
  vars:
    out: "{{ fleet_root }}/secrets-{{ run }}"
  tasks:
    - name: a directory for the run
      file: {path: "{{ out }}", state: directory, mode: "0755"}
    - name: the old keys are there (another client's)
      copy: {src: "{{ pki_dir }}/client/alice/{{ item }}", dest: "{{ out }}/{{ item }}", mode: "0644"}
      loop: [client.pk8, client.key]
    - name: DER key over a DER key, world-readable destination
      copy: {src: "{{ pki_dir }}/client/postgres/client.pk8", dest: "{{ out }}/client.pk8", mode: "0644"}
    - name: PEM key over a PEM key
      copy: {src: "{{ pki_dir }}/client/postgres/client.key", dest: "{{ out }}/client.key", mode: "0644"}
    - name: a no_log value written
      copy: {content: "token={{ nolog_value }}\n", dest: "{{ out }}/token", mode: "0644"}
      no_log: true
    - name: a no_log value printed
      debug: {msg: "{{ nolog_value }}"}
      no_log: true
    - name: a no_log value registered
      set_fact: {hidden: "{{ nolog_value }}"}
      no_log: true
    - name: a loop over key content
      copy:
        content: "{{ item }}"
        dest: "{{ out }}/loop-{{ ansible_loop.index }}"
        mode: "0644"
      loop: ["{{ postgres_key }}", "{{ postgres_pk8_b64 }}"]
      register: looped
    - name: the registered loop
      debug: {var: looped}
    - name: a no_log shell with a secret in its text, as another user
      shell: "secret='{{ shell_secret }}'; sleep 1; test -n \"$secret\" && echo done"
      become: yes
      become_user: postgres
      no_log: true
    - name: a no_log secret on stdin
      shell: "cat > {{ out }}/from-stdin"
      args: {stdin: "{{ nolog_value }}"}
      no_log: true
"#;

#[test]
fn nothing_secret_leaks_on_a_fleet() {
    fleet("up.sh", &[&HOSTS.to_string()]);
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let pki = base.join("pki");
    let pki_s = pki.display().to_string();
    let inv = format!("{DIR}/inventory.yml");
    let pki_var = format!("pki_dir={pki_s}");
    let watch = PsWatch::start();

    // 1. Turn on mutual TLS: CA, server and client keys made and pushed, with --diff -vvv.
    let mtls = castellan(&[
        "playbook",
        repo("playbooks/enable-mtls.yml").to_str().unwrap(),
        "-i",
        &inv,
        "-e",
        &pki_var,
        "--diff",
        "-vvv",
        "--output",
        "json",
    ]);
    ok("enable-mtls", &mtls);

    // 2. The secrets playbook, in text and in JSON.
    let out = castellan(&["pki", "issue", "--dir", &pki_s, "client", "alice"]);
    ok("pki issue alice", &out);
    let key = std::fs::read_to_string(pki.join("client/postgres/client.key")).unwrap();
    let pk8 = std::fs::read(pki.join("client/postgres/client.pk8")).unwrap();
    let nolog_value = "nolog-3b9e51d0c7a2";
    let shell_secret = "shellsecret-e27c04a9f1";
    let mut vars = String::from("postgres_key: |\n");
    for l in key.lines() {
        vars.push_str(&format!("  {l}\n"));
    }
    vars.push_str(&format!(
        "postgres_pk8_b64: \"{}\"\nnolog_value: \"{nolog_value}\"\nshell_secret: \"{shell_secret}\"\n",
        base64::engine::general_purpose::STANDARD.encode(&pk8)
    ));
    std::fs::write(base.join("keys.yml"), vars).unwrap();
    let pb = base.join("secrets.yml");
    std::fs::write(&pb, SECRETS_PLAYBOOK).unwrap();
    let pb = pb.display().to_string();
    let mut runs = Vec::new();
    for (run, extra) in [("text", &[][..]), ("json", &["--output", "json"][..])] {
        let run_var = format!("run={run}");
        let mut args = vec![
            "playbook", &pb, "-i", &inv, "-e", &pki_var, "-e", &run_var, "--diff", "-vvv",
        ];
        args.extend_from_slice(extra);
        let out = castellan(&args);
        ok(&format!("secrets playbook ({run})"), &out);
        runs.push((run, out));
    }
    // 3. A failed run that leaves a pending handler in its playbook's `.castellan/`.
    let pending = base.join("pending.yml");
    std::fs::write(&pending, PENDING_PLAYBOOK).unwrap();
    let out = castellan(&[
        "playbook",
        pending.to_str().unwrap(),
        "-i",
        &inv,
        "-e",
        &pki_var,
        "--diff",
        "-vvv",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    runs.push(("pending", out));
    let seen = watch.finish();

    // The runs did what they say (so that there was something to leak).
    for k in 1..=HOSTS {
        let root = format!("{DIR}/hosts/db{k}/root");
        for run in ["text", "json"] {
            let o = format!("{root}/secrets-{run}");
            assert_eq!(std::fs::read(format!("{o}/client.pk8")).unwrap(), pk8);
            assert_eq!(std::fs::read_to_string(format!("{o}/loop-1")).unwrap(), key);
            assert_eq!(
                std::fs::read_to_string(format!("{o}/from-stdin")).unwrap(),
                format!("{nolog_value}\n")
            );
        }
    }
    assert!(
        seen.saw(&["sleep", "1"]),
        "the process watcher never saw the no_log shell task's sleep ({} snapshots)",
        seen.snapshots
    );
    // What to look for: every private key of the PKI (PEM and DER), the no_log values.
    let all = files_under(&pki);
    let mut needles = Needles::new();
    let mut public = Vec::new();
    for (p, b) in &all {
        let name = p.display().to_string();
        if name.ends_with(".crt") || name.ends_with("crl.pem") {
            needles.add_public(b);
            public.push(b.clone());
        }
    }
    let mut keys = Vec::new();
    for (p, b) in &all {
        let name = p.strip_prefix(&pki).unwrap().display().to_string();
        // client.pem.pk8 is PKCS#8 PEM (the same key as client.key), client.pk8 its DER.
        if name.ends_with(".key") || name.ends_with(".pem.pk8") {
            let pem = String::from_utf8(b.clone()).unwrap();
            needles.add_pem(&name, &pem);
            keys.push((name, secret_scan::pem_der(&pem)));
        } else if name.ends_with(".pk8") {
            needles.add_der(&name, b);
            keys.push((name, b.clone()));
        }
    }
    // ca.key, two server keys, two client keys with their .pk8 and .pem.pk8.
    assert_eq!(
        keys.len(),
        1 + HOSTS + 2 * 3,
        "{:?}",
        keys.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    needles.add_literal("no_log value", nolog_value);
    needles.add_literal("no_log shell text", shell_secret);
    let mut planted = 0;
    for (name, der) in &keys {
        planted += secret_scan::self_check(&needles, name, der, &public);
    }

    // Where to look.
    let mut captures: Vec<(String, Vec<u8>)> = vec![
        (
            "enable-mtls stdout (JSON report)".into(),
            mtls.stdout.clone(),
        ),
        ("enable-mtls stderr".into(), mtls.stderr.clone()),
    ];
    for (run, out) in &runs {
        captures.push((format!("{run} run stdout"), out.stdout.clone()));
        captures.push((format!("{run} run stderr"), out.stderr.clone()));
    }
    let mut dirs = Vec::new();
    state_dirs(&repo("playbooks"), &mut dirs);
    state_dirs(base, &mut dirs);
    for d in &dirs {
        for (p, b) in files_under(d) {
            captures.push((format!("state file {}", p.display()), b));
        }
    }
    let state_files = captures
        .iter()
        .filter(|(n, _)| n.starts_with("state file"))
        .count();
    assert!(
        state_files > 0,
        "the failed run left no state in {}/.castellan",
        base.display()
    );
    for k in 1..=HOSTS {
        for log in ["sshd.log", "postgresql.log"] {
            let p = format!("{DIR}/hosts/db{k}/{log}");
            if let Ok(b) = std::fs::read(&p) {
                captures.push((p, b));
            }
        }
    }
    captures.push(("process table".into(), seen.text()));

    let mut hits = Vec::new();
    let mut bytes = 0;
    for (name, data) in &captures {
        bytes += data.len();
        hits.extend(needles.scan_capture(name, data));
    }
    println!(
        "secret-leak: {} windows checked ({:?}; {} shared with certificates left out) over {} keys \
         and 2 no_log values, in {} captures ({bytes} bytes; {state_files} state files in {} \
         .castellan dirs; {} process-table snapshots, {} distinct command lines); scanner \
         self-check found {planted} planted leaks; {} hits",
        needles.count(),
        needles.per_kind,
        needles.public_overlap,
        keys.len(),
        captures.len(),
        dirs.len(),
        seen.snapshots,
        seen.lines.len(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "{} leaks, first ones: {:#?}",
        hits.len(),
        &hits[..hits.len().min(5)]
    );
    // And the key copies say so.
    let json_doc: serde_json::Value = serde_json::from_slice(&runs[1].1.stdout).unwrap();
    let diff_of = |task: &str| -> String {
        json_doc["plays"][0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == task)
            .map(|t| {
                t["results"]["db1"]["diff"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    for t in [
        "DER key over a DER key, world-readable destination",
        "PEM key over a PEM key",
    ] {
        assert!(diff_of(t).contains("<redacted>"), "{t}: {}", diff_of(t));
    }
}
