//! The malformed input corpus (issue 8): every case under `tests/fixtures/malformed/<case>/` is a
//! broken playbook, inventory, role, template or vars file. The real binary must refuse each one
//! with exit 4 and a `file:line:column` that points where the case's `expect` file says, quickly,
//! without a panic, without printing raw control bytes, and without contacting any host.
//!
//! A case directory holds its files and `expect`: the first line is the location fragment
//! (`playbook.yml:6:14`, relative to the case directory; a fragment ending in `:` accepts any
//! column or line after it), every further line a text the error must contain. `args`, when
//! present, replaces the default command line (`playbook PLAYBOOK -i INVENTORY`), one argument
//! a line, `{case}` and `{common}` standing for the case and `_common` directories. Files a case
//! lacks come from `_common/` (a valid playbook, and an inventory of SSH hosts at 127.14.0.1).
//!
//! "No host contacted" is checked twice: a TCP listener on 127.14.0.1:22 (where every host of the
//! corpus points) counts connections, and `ssh` on the PATH is a tripwire script that records any
//! call. Both must stay at zero.
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where every corpus host points; nothing may connect here.
const TRAP_ADDR: &str = "127.14.0.1:22";
/// A case taking longer than this is a failure (the binary is a debug build on a shared machine).
const SLOW: Duration = Duration::from_secs(5);

static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Start (once) the listener that counts connections to the corpus hosts.
fn trap_listener() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        // Another run of this test may hold the address for a few seconds: wait for it.
        let deadline = Instant::now() + Duration::from_secs(60);
        let l = loop {
            match TcpListener::bind(TRAP_ADDR) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for {TRAP_ADDR}: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("bind the trap listener on {TRAP_ADDR}: {e}"),
            }
        };
        std::thread::spawn(move || {
            for c in l.incoming() {
                if c.is_ok() {
                    CONNECTIONS.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    });
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/malformed")
}

/// A directory with a tripwire `ssh` first on the PATH; returns (tempdir, marker file).
fn tripwire() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let marker = t.path().join("ssh-called");
    let bin = t.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexit 255\n",
            marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    (t, marker)
}

struct Run {
    out: Output,
    elapsed: Duration,
}

/// Run the binary under a 1 GiB address-space limit, killed after 30 s.
fn run_castellan(args: &[String], path_dir: &Path, cwd: &Path) -> Run {
    let path = format!(
        "{}:{}",
        path_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = Instant::now();
    let mut child = Command::new("prlimit")
        .arg("--as=1073741824")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .env_remove("CASTELLAN_ROLES_PATH")
        .env_remove("ANSIBLE_ROLES_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run castellan");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Run {
        out: Output {
            status,
            stdout: t_out.join().unwrap(),
            stderr: t_err.join().unwrap(),
        },
        elapsed,
    }
}

/// The arguments for a case: its `args` file, or `playbook PLAYBOOK -i INVENTORY`.
fn case_args(case: &Path, common: &Path) -> Vec<String> {
    let subst = |s: &str| {
        s.replace("{case}", &case.display().to_string())
            .replace("{common}", &common.display().to_string())
    };
    if let Ok(text) = std::fs::read_to_string(case.join("args")) {
        return text.lines().filter(|l| !l.is_empty()).map(subst).collect();
    }
    let pick = |name: &str| {
        let p = case.join(name);
        if p.exists() {
            p
        } else {
            common.join(name)
        }
    };
    vec![
        "playbook".into(),
        pick("playbook.yml").display().to_string(),
        "-i".into(),
        pick("inventory.yml").display().to_string(),
    ]
}

/// Everything wrong with one case's run (empty when it behaved).
fn check_case(case: &Path, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let expect = std::fs::read_to_string(case.join("expect")).unwrap();
    let mut lines = expect.lines();
    let loc = lines.next().unwrap_or_default();
    let needles: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let code = run.out.status.code();
    let err = match String::from_utf8(run.out.stderr.clone()) {
        Ok(s) => s,
        Err(_) => {
            problems.push("stderr is not valid UTF-8 (raw bytes printed)".into());
            String::from_utf8_lossy(&run.out.stderr).into_owned()
        }
    };
    if code != Some(4) {
        problems.push(format!("exit {code:?}, expected 4"));
    }
    if err.contains("panicked") || code == Some(101) {
        problems.push("panicked".into());
    }
    if let Some(c) = err
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        problems.push(format!("stderr holds control character {c:?}"));
    }
    let want = format!("{}/{loc}", case.display());
    if !err.contains(&want) {
        problems.push(format!("no `{want}` in stderr"));
    }
    for n in needles {
        if !err.contains(n) {
            problems.push(format!("`{n}` not in stderr"));
        }
    }
    if run.elapsed > SLOW {
        problems.push(format!("took {:.1?}", run.elapsed));
    }
    if !problems.is_empty() {
        problems.push(format!("stderr: {}", err.trim_end()));
    }
    problems
}

#[test]
fn every_malformed_input_exits_4_with_its_location_and_contacts_no_host() {
    trap_listener();
    let (trip, marker) = tripwire();
    let root = std::fs::canonicalize(corpus_dir()).unwrap();
    let common = root.join("_common");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 60,
        "the corpus must hold at least 60 cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let run = run_castellan(&case_args(case, &common), &trip.path().join("bin"), case);
        if run.elapsed > slowest.0 {
            slowest = (run.elapsed, name.clone());
        }
        let problems = check_case(case, &run);
        if !problems.is_empty() {
            failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
        }
    }
    println!(
        "{} cases in {:.2?}, slowest {} ({:.2?})",
        cases.len(),
        started.elapsed(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        !marker.exists(),
        "ssh was run: {}",
        std::fs::read_to_string(&marker).unwrap_or_default()
    );
    assert_eq!(
        CONNECTIONS.load(Ordering::SeqCst),
        0,
        "a connection reached {TRAP_ADDR}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Defect 9: `delay: .inf` was accepted, the command ran, then the retry sleep panicked (101).
#[test]
fn infinite_delay_is_refused_before_any_command_runs() {
    let t = tempfile::tempdir().unwrap();
    let inv = write(
        t.path(),
        "inventory.yml",
        "all:\n  hosts:\n    local1: {ansible_connection: local}\n",
    );
    let ran = t.path().join("ran");
    let pb = write(
        t.path(),
        "play.yml",
        &format!(
            "- hosts: all\n  tasks:\n    - command: touch {}\n      register: r\n      \
             until: r.rc == 1\n      retries: 1\n      delay: .inf\n",
            ran.display()
        ),
    );
    let (trip, _) = tripwire();
    let args: Vec<String> = [
        "playbook",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_castellan(&args, &trip.path().join("bin"), t.path());
    let err = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("{}:7:14", pb.display())), "{err}");
    assert!(
        !ran.exists(),
        "the command ran before the bad delay was found"
    );
}

/// Defect 10: one host with `ansible_connection: sssh` let the other hosts change first (exit 3).
#[test]
fn a_bad_connection_variable_on_one_host_stops_the_run_before_any_host_changes() {
    let t = tempfile::tempdir().unwrap();
    let inv = write(
        t.path(),
        "inventory.yml",
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n    web1:\n      \
         ansible_connection: sssh\n",
    );
    let pb = write(
        t.path(),
        "play.yml",
        "- hosts: all\n  tasks:\n    - copy:\n        content: x\n        \
         dest: \"{{ base }}/{{ inventory_hostname }}\"\n",
    );
    let (trip, marker) = tripwire();
    let base = format!("base={}", t.path().display());
    let args: Vec<String> = [
        "playbook",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &base,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_castellan(&args, &trip.path().join("bin"), t.path());
    let err = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("{}:6:27", inv.display())), "{err}");
    assert!(
        !t.path().join("local1").exists(),
        "local1 was changed before the bad host was found"
    );
    assert!(!marker.exists());
}

/// The connection check covers the hosts the run targets, no more: a broken host that `--limit`
/// leaves out does not stop the run, and a value that needs run-time data is left to the run.
#[test]
fn only_targeted_hosts_and_statically_known_values_are_checked() {
    let t = tempfile::tempdir().unwrap();
    let inv = write(
        t.path(),
        "inventory.yml",
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n      \
         ansible_become_user: \"{{ later }}\"\n    web1:\n      ansible_connection: sssh\n",
    );
    let pb = write(
        t.path(),
        "play.yml",
        "- hosts: all\n  tasks:\n    - set_fact:\n        later: nobody\n    - copy:\n        \
         content: x\n        dest: \"{{ base }}/{{ inventory_hostname }}\"\n",
    );
    let (trip, marker) = tripwire();
    let base = format!("base={}", t.path().display());
    let args: Vec<String> = [
        "playbook",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &base,
        "--limit",
        "local1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_castellan(&args, &trip.path().join("bin"), t.path());
    let err = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(0), "{err}");
    assert!(t.path().join("local1").exists());
    assert!(!marker.exists());
}

/// Numbers on the command line have bounds too: out of range is a usage error (exit 5).
#[test]
fn out_of_range_command_line_numbers_are_usage_errors() {
    let root = std::fs::canonicalize(corpus_dir()).unwrap();
    let pb = root.join("_common/playbook.yml").display().to_string();
    let inv = root.join("_common/inventory.yml").display().to_string();
    let (trip, marker) = tripwire();
    for args in [
        vec!["playbook", &pb, "-i", &inv, "-f", "0"],
        vec!["playbook", &pb, "-i", &inv, "-f", "5000"],
        vec!["playbook", &pb, "-i", &inv, "-f", "99999999999999999999"],
        vec!["certs", "status", "-i", &inv, "--timeout", "0"],
        vec![
            "certs",
            "status",
            "-i",
            &inv,
            "--timeout",
            "18446744073709551615",
        ],
    ] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let run = run_castellan(&args, &trip.path().join("bin"), &root);
        assert_eq!(
            run.out.status.code(),
            Some(5),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.out.stderr)
        );
    }
    assert!(!marker.exists());
}
