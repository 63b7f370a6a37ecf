//! Secrets stay out of what castellan prints, on local hosts (issue 8, defects 3, 7 and 13):
//! binary and PEM keys are never diffed, private destinations are redacted, loop items holding
//! keys are not printed, and shell text never appears in the process table.
mod secret_scan;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use secret_scan::ps::PsWatch;
use secret_scan::Needles;

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

/// A PKI with two client certificates (alice, bob) made by castellan itself.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(base: &Path) -> Pki {
        let dir = base.join("pki");
        let d = dir.to_str().unwrap();
        let out = castellan(&["pki", "init-ca", "--dir", d, "--cn", "secrets test CA"]);
        assert!(out.status.success(), "{out:?}");
        for u in ["alice", "bob"] {
            let out = castellan(&["pki", "issue", "--dir", d, "client", u]);
            assert!(out.status.success(), "{out:?}");
        }
        Pki { dir }
    }

    fn file(&self, user: &str, name: &str) -> PathBuf {
        self.dir.join("client").join(user).join(name)
    }

    fn read(&self, user: &str, name: &str) -> Vec<u8> {
        std::fs::read(self.file(user, name)).unwrap()
    }

    /// Certificates: public, their windows are not secret.
    fn public(&self) -> Vec<Vec<u8>> {
        let mut v = vec![std::fs::read(self.dir.join("ca.crt")).unwrap()];
        for u in ["alice", "bob"] {
            v.push(self.read(u, "client.crt"));
        }
        v
    }

    fn needles(&self) -> Needles {
        let mut n = Needles::new();
        for p in self.public() {
            n.add_public(&p);
        }
        for u in ["alice", "bob"] {
            let pem = String::from_utf8(self.read(u, "client.key")).unwrap();
            n.add_pem(&format!("{u}/client.key"), &pem);
            n.add_der(&format!("{u}/client.pk8"), &self.read(u, "client.pk8"));
        }
        let ca = String::from_utf8(std::fs::read(self.dir.join("ca.key")).unwrap()).unwrap();
        n.add_pem("ca.key", &ca);
        n
    }
}

fn write_playbook(dir: &Path, body: &str) -> (String, String) {
    let inv = dir.join("inventory.yml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    h1: {ansible_connection: local}\n",
    )
    .unwrap();
    let pb = dir.join("site.yml");
    std::fs::write(&pb, body).unwrap();
    (pb.display().to_string(), inv.display().to_string())
}

/// Scan every capture; panic with the first hits.
fn assert_no_leak(needles: &Needles, captures: &[(&str, &[u8])]) {
    let mut hits = Vec::new();
    for (name, data) in captures {
        hits.extend(needles.scan_capture(name, data));
    }
    println!(
        "{} windows checked ({:?}; {} windows shared with public certificates left out) in {} captures: {} hits",
        needles.count(),
        needles.per_kind,
        needles.public_overlap,
        captures.len(),
        hits.len()
    );
    assert!(
        hits.is_empty(),
        "{} secret windows leaked, first ones: {:#?}",
        hits.len(),
        &hits[..hits.len().min(5)]
    );
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The results of the task named `name` on h1.
fn task_result<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| &t["results"]["h1"])
        .unwrap_or_else(|| panic!("no task {name} in {doc}"))
}

/// Defect 3: a DER key (client.pk8) and a PEM key copied over other keys with --diff print
/// none of their bytes, neither does a binary file that is no key, nor a 0600 destination.
#[test]
fn keys_binary_files_and_private_destinations_are_never_diffed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let pki = Pki::new(base);
    // A binary file that is no key: never diffed either, only sizes and checksums.
    let blob: Vec<u8> = (0..600u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();
    std::fs::write(base.join("blob.bin"), &blob).unwrap();
    for run in ["json", "text"] {
        let out_dir = base.join(format!("out-{run}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        // The destinations hold bob's keys: the old content is a secret too.
        std::fs::write(out_dir.join("client.pk8"), pki.read("bob", "client.pk8")).unwrap();
        std::fs::write(out_dir.join("client.key"), pki.read("bob", "client.key")).unwrap();
        std::fs::write(out_dir.join("blob.bin"), b"old text\n").unwrap();
        let body = format!(
            r#"- hosts: all
  tasks:
    - name: der key
      copy: {{src: "{pk8}", dest: "{o}/client.pk8", mode: "0644"}}
    - name: pem key
      copy: {{src: "{key}", dest: "{o}/client.key", mode: "0644"}}
    - name: binary
      copy: {{src: "{blob}", dest: "{o}/blob.bin", mode: "0644"}}
    - name: private destination
      copy: {{content: "password=hunter2-private-dest\n", dest: "{o}/pgpass", mode: "0600"}}
    - name: public destination
      copy: {{content: "listen=public-dest-line\n", dest: "{o}/app.conf", mode: "0644"}}
"#,
            pk8 = pki.file("alice", "client.pk8").display(),
            key = pki.file("alice", "client.key").display(),
            blob = base.join("blob.bin").display(),
            o = out_dir.display(),
        );
        let (pb, inv) = write_playbook(base, &body);
        let out = if run == "json" {
            castellan(&[
                "playbook", &pb, "-i", &inv, "--diff", "-vvv", "--output", "json",
            ])
        } else {
            castellan(&["playbook", &pb, "-i", &inv, "--diff", "-vvv"])
        };
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(
            std::fs::read(out_dir.join("client.pk8")).unwrap(),
            pki.read("alice", "client.pk8")
        );
        let mut needles = pki.needles();
        needles.add_der("blob.bin", &blob);
        needles.add_literal("0600 content", "hunter2-private-dest");
        let found = secret_scan::self_check(
            &needles,
            "alice/client.pk8",
            &pki.read("alice", "client.pk8"),
            &pki.public(),
        );
        assert_eq!(found, 7);
        assert_no_leak(
            &needles,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        // Diffs still work where they may.
        assert!(text.contains("+listen=public-dest-line"), "{text}");
        if run == "json" {
            let doc = stdout_json(&out);
            for t in ["der key", "pem key", "private destination"] {
                let d = task_result(&doc, t)["diff"].as_str().unwrap_or_default();
                assert!(d.contains("<redacted>"), "{t}: {d}");
            }
            let d = task_result(&doc, "binary")["diff"]
                .as_str()
                .unwrap_or_default();
            assert!(
                d.contains("binary") && d.contains("600 bytes") && d.contains("9 bytes"),
                "{d}"
            );
        }
    }
}

/// Defect 7: loop items holding key material are not printed in `(item=...)`, in
/// `items[].item` or in the registered `results[].item`, but the registered variable still
/// holds them for later tasks; a `no_log` loop prints nothing of its items.
#[test]
fn loop_items_holding_keys_are_redacted() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let pki = Pki::new(base);
    let key = String::from_utf8(pki.read("alice", "client.key")).unwrap();
    let pk8_b64 = base64::engine::general_purpose::STANDARD.encode(pki.read("alice", "client.pk8"));
    let mut vars = String::from("alice_key: |\n");
    for l in key.lines() {
        vars.push_str(&format!("  {l}\n"));
    }
    vars.push_str(&format!("alice_pk8_b64: \"{pk8_b64}\"\n"));
    std::fs::write(base.join("keys.yml"), vars).unwrap();
    let marker = "nolog-item-4f1d9a7c2e";
    for run in ["json", "text"] {
        let o = base.join(format!("out-{run}"));
        std::fs::create_dir_all(&o).unwrap();
        let body = format!(
            r#"- hosts: all
  vars_files: [{vars}]
  tasks:
    - name: keys in a loop
      copy:
        content: "{{{{ item }}}}"
        dest: "{o}/k{{{{ ansible_loop.index }}}}"
        mode: "0644"
      loop: ["{{{{ alice_key }}}}", "{{{{ alice_pk8_b64 }}}}", "plain-item"]
      register: written
    - name: show the registered result
      debug: {{var: written}}
    - name: the registered items still hold the keys
      copy: {{content: "{{{{ written.results[0].item }}}}", dest: "{o}/again.key", mode: "0600"}}
    - name: a no_log loop
      debug: {{msg: "{{{{ item }}}}"}}
      loop: ["{marker}"]
      loop_control: {{label: "label {{{{ item }}}}"}}
      no_log: true
"#,
            vars = base.join("keys.yml").display(),
            o = o.display(),
        );
        let (pb, inv) = write_playbook(base, &body);
        let out = if run == "json" {
            castellan(&[
                "playbook", &pb, "-i", &inv, "--diff", "-vvv", "--output", "json",
            ])
        } else {
            castellan(&["playbook", &pb, "-i", &inv, "--diff", "-vvv"])
        };
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(std::fs::read_to_string(o.join("again.key")).unwrap(), key);
        let mut needles = pki.needles();
        needles.add_literal("no_log item", marker);
        assert_no_leak(
            &needles,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("plain-item"),
            "a plain item is still shown: {text}"
        );
        if run == "text" {
            assert!(text.contains("(item=<redacted>)"), "{text}");
        } else {
            let doc = stdout_json(&out);
            let items = &task_result(&doc, "keys in a loop")["items"];
            assert_eq!(items[0]["item"], "<redacted>", "{items}");
            assert_eq!(items[1]["item"], "<redacted>", "{items}");
            assert_eq!(items[2]["item"], "plain-item", "{items}");
        }
    }
}

/// Defect 13 on the local connection: the text of a `shell` task (here a `no_log` one with a
/// secret in it) is not on any command line while it runs; stdin, `executable` and become work.
#[test]
fn shell_text_is_not_in_the_process_table() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let marker = "shellsecret-8c41e07d93";
    let body = format!(
        r#"- hosts: all
  tasks:
    - name: a secret in the script text
      shell: "x='{marker}'; sleep 1.5; test -n \"$x\" && printf '%s' \"$x\" > {o}/from-shell"
      no_log: true
    - name: stdin still reaches the command
      shell: "cat > {o}/stdin.txt"
      args: {{stdin: "fed over stdin"}}
    - name: command with stdin
      command: "tee {o}/tee.txt"
      args: {{stdin: "to tee"}}
    - name: another shell
      shell: "printf '%s' \"$BASH_VERSION\" > {o}/bash; printf 'trailing\n\n'"
      args: {{executable: /bin/bash}}
      register: b
    - name: trailing newlines of the script are kept
      shell: |
        cat > {o}/heredoc <<EOF
        a line
        EOF
    - name: become
      shell: "id -un > {o}/who-$(id -un)"
      become: yes
      become_user: nobody
      ignore_errors: yes
"#,
        o = base.display()
    );
    std::fs::set_permissions(base, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (pb, inv) = write_playbook(base, &body);
    let watch = PsWatch::start();
    let out = castellan(&["playbook", &pb, "-i", &inv, "-vvv"]);
    let seen = watch.finish();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let read = |n: &str| std::fs::read_to_string(base.join(n)).unwrap_or_default();
    assert_eq!(read("from-shell"), marker);
    assert_eq!(read("stdin.txt"), "fed over stdin\n");
    assert_eq!(read("tee.txt"), "to tee\n");
    assert!(
        !read("bash").is_empty(),
        "executable: /bin/bash did not run bash"
    );
    assert_eq!(read("heredoc"), "a line\n");
    assert_eq!(read("who-nobody"), "nobody\n");
    // The watcher saw the task running (its `sleep`), so it would have seen its shell.
    assert!(
        seen.saw(&["sleep", "1.5"]),
        "the process watcher never saw the task's sleep ({} snapshots)",
        seen.snapshots
    );
    let mut needles = Needles::new();
    needles.add_literal("shell no_log text", marker);
    println!(
        "{} process-table snapshots, {} distinct command lines",
        seen.snapshots,
        seen.lines.len()
    );
    assert_no_leak(
        &needles,
        &[
            ("process table", &seen.text()),
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
        ],
    );
}
