//! Windows hosts (issue 17, acceptance 2): `castellan playbook playbooks/enable-mtls.yml --check`
//! against an inventory of Windows hosts (`ansible_shell_type: powershell` and `cmd`) whose
//! address refuses connections validates and plans without error: `--syntax-check` passes, the
//! run reports the hosts unreachable (exit 3, not a validation error: exit 4) and writes nothing
//! on the control node; a shell type castellan does not know is refused before any host, with
//! where it was written.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The inventory copied into `dir` (so `pki_dir`, `{{ inventory_dir }}/pki`, is the test's own).
fn inventory_in(dir: &Path, text: Option<&str>) -> PathBuf {
    let src = root().join("tests/inventories/windows/hosts.yml");
    let inv = dir.join("hosts.yml");
    match text {
        Some(t) => std::fs::write(&inv, t).unwrap(),
        None => {
            std::fs::copy(&src, &inv).unwrap();
        }
    }
    inv
}

fn run(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .current_dir(root())
        // ssh reads ~/.ssh: the test's own empty home.
        .env("HOME", home)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn enable_mtls_validates_and_plans_for_windows_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = inventory_in(tmp.path(), None);
    let inv = inv.to_str().unwrap();
    let syntax = run(
        &[
            "playbook",
            "playbooks/enable-mtls.yml",
            "-i",
            inv,
            "--syntax-check",
        ],
        tmp.path(),
    );
    assert_eq!(syntax.status.code(), Some(0), "{}", text(&syntax));

    let t0 = std::time::Instant::now();
    let out = run(
        &[
            "playbook",
            "playbooks/enable-mtls.yml",
            "-i",
            inv,
            "--check",
        ],
        tmp.path(),
    );
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "unreachable, not invalid: {all}"
    );
    for host in ["css-win1", "css-win2"] {
        assert!(all.contains(host), "{host} is reported: {all}");
    }
    assert!(all.contains("connection refused"), "{all}");
    assert!(
        t0.elapsed().as_secs() < 60,
        "a refused port answers at once"
    );
    // Check mode: nothing written on the control node (no CA, no PKI directory).
    assert!(!tmp.path().join("pki").exists(), "check mode wrote the PKI");
}

#[test]
fn an_unknown_shell_type_is_refused_before_any_host_with_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = "all:\n  children:\n    postgres:\n      hosts:\n        css-win1:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n          ansible_shell_type: fish\n";
    let inv = inventory_in(tmp.path(), Some(bad));
    let out = run(
        &[
            "playbook",
            "playbooks/enable-mtls.yml",
            "-i",
            inv.to_str().unwrap(),
            "--check",
        ],
        tmp.path(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(
        all.contains("ansible_shell_type: `fish` is not supported"),
        "{all}"
    );
    assert!(
        all.contains("hosts.yml:8:"),
        "file:line of the value: {all}"
    );
    assert!(
        !all.contains("connection refused"),
        "no host was contacted: {all}"
    );
}
