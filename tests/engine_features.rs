//! Task keywords end to end on local hosts: retries/until, tags, run_once, delegate_to,
//! omit, index_var, include_role, ignore_errors, end_host, listen, max_fail_percentage.
use std::path::Path;
use std::process::{Command, Output};

fn run(playbook: &str, base: &Path, extra: &[&str]) -> Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/features");
    let b = format!("base={}", base.display());
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["playbook", dir.join(playbook).to_str().unwrap(), "-i"])
        .arg(dir.join("inventory.yml"))
        .args(["-e", &b])
        .args(extra)
        .output()
        .expect("run castellan")
}

fn names(base: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn until_retries_until_the_condition_holds() {
    let t = tempfile::tempdir().unwrap();
    let out = run("retries.yml", t.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("tries"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn tags_select_and_skip() {
    let t = tempfile::tempdir().unwrap();
    assert_eq!(run("tags.yml", t.path(), &[]).status.code(), Some(0));
    assert_eq!(
        names(t.path()),
        ["tag-a", "tag-always", "tag-b", "tag-none"]
    );

    let t = tempfile::tempdir().unwrap();
    assert_eq!(
        run("tags.yml", t.path(), &["--tags", "a"]).status.code(),
        Some(0)
    );
    assert_eq!(names(t.path()), ["tag-a", "tag-always"]);

    let t = tempfile::tempdir().unwrap();
    assert_eq!(
        run(
            "tags.yml",
            t.path(),
            &["-t", "debug", "--skip-tags", "always"]
        )
        .status
        .code(),
        Some(0)
    );
    assert_eq!(names(t.path()), ["tag-never"]);

    let t = tempfile::tempdir().unwrap();
    assert_eq!(
        run("tags.yml", t.path(), &["--skip-tags", "a,b"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(names(t.path()), ["tag-always", "tag-none"]);
}

#[test]
fn keywords_behave_like_ansible() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let out = run("misc.yml", base, &[]);
    // ignore_errors: the failure is reported but the run succeeds.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let read = |f: &str| std::fs::read_to_string(base.join(f)).unwrap();
    assert_eq!(read("once"), "w1\n", "run_once runs on the first host only");
    for h in ["w1", "w2", "w3", "w4"] {
        assert_eq!(read(&format!("delegated-{h}")), format!("{h}\n"));
        assert!(base.join(format!("omit-{h}")).exists());
    }
    assert_eq!(read("dir-w2/hello.txt"), "hello\n");
    assert_eq!(read("w1-x"), "0=x\n");
    assert_eq!(read("w1-y"), "1=y\n");
    assert!(!base.join("w2-x").exists());
    assert_eq!(read("w2.role"), "hi\n");
    assert!(!base.join("w1.role").exists());
    assert!(
        !base.join("after-end-w3").exists(),
        "end_host stops that host"
    );
    assert!(base.join("after-end-w4").exists());
    assert_eq!(read("heard-w1"), "heard\n", "handlers answer to `listen`");
    assert!(!base.join("heard-w3").exists());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("...ignoring"));
    assert!(text.contains("ignored=1"));
}

#[test]
fn max_fail_percentage_stops_the_rollout() {
    let t = tempfile::tempdir().unwrap();
    let out = run("budget.yml", t.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    // w2 failed in the first batch: nothing more runs, the second batch never starts.
    assert!(names(t.path()).is_empty(), "{:?}", names(t.path()));
}
