//! Issue 9, acceptance 1: no module can act in check mode. Every registered module's plan runs in
//! check mode through the engine, on a host whose every write, command and apply is recorded (a
//! recording `Connection` around the real local one: reads go through, effects are recorded and
//! refused), with realistic arguments: the record stays empty, the PKI directory used by the pki
//! modules is byte-identical afterwards, the work files are untouched, and a real PostgreSQL
//! (pg_facts, pg_conf, pg_hba, pg_service, pg_verify) is neither reloaded, restarted nor logged
//! into over TCP (its log shows only the socket sessions of pg_facts' query).
//!
//! The package and service modules read a real `.deb` built here (apt, package) and the
//! recording fixtures of tests/fixtures/recording/ put first on the PATH (dnf, yum, systemd,
//! service with `use: systemd`): there is no rpm database and no systemd as PID 1 on this
//! machine.
//!
//! A module added to the registry without a case below makes the test fail.
mod deb_common;
mod pg_common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use castellan::cli::playbook::load_and_check;
use castellan::cli::{Output, PlaybookArgs};
use castellan::connection::local::LocalConnection;
use castellan::connection::{
    ConnError, Connection, ExecOutput, ExecRequest, FileState, Op, OpOutput, Want,
};
use castellan::engine::connections::Pool;
use castellan::engine::{RunOptions, Runner};
use castellan::pki::{ensure_ca, ensure_cert, CaSpec, CertSpec};
use castellan::report::{HostResult, Reporter, Stats, Status};
use pg_common::{s, Pg};
use sha2::Digest;

/// The real local connection; `exec` and `apply` are recorded and refused, reads go through.
struct Recording {
    inner: LocalConnection,
    effects: Mutex<Vec<String>>,
}

impl Recording {
    fn refuse(&self, what: String) -> ConnError {
        self.effects.lock().unwrap().push(what.clone());
        ConnError::Failed(format!("recorded and refused: {what}"))
    }
}

#[async_trait]
impl Connection for Recording {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        Err(self.refuse(format!("exec {}", req.display())))
    }

    async fn query(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        self.inner.query(req).await
    }

    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        self.inner.stat(path, want, become_user).await
    }

    async fn apply(&self, op: &Op, _become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        Err(self.refuse(format!("apply {}", op.describe())))
    }
}

/// Keeps every task's module and every host result.
#[derive(Default)]
struct Collect {
    current: Mutex<(String, String)>,
    results: Mutex<Vec<(String, String, HostResult)>>,
}

impl Reporter for Collect {
    fn play_start(&self, _name: &str) {}
    fn task_start(&self, name: &str, module: &str, _handler: bool, _hosts: usize) {
        *self.current.lock().unwrap() = (name.to_string(), module.to_string());
    }
    fn host_result(&self, r: &HostResult) {
        let (name, module) = self.current.lock().unwrap().clone();
        self.results.lock().unwrap().push((name, module, r.clone()));
    }
    fn warn(&self, _msg: &str) {}
    fn finish(&self, _stats: &Stats, _check_mode: bool, _duration: std::time::Duration) {}
}

/// SHA-256 of every file under `dir` (and the mode of every entry), or nothing when it is absent.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                stack.push(p.clone());
                out.insert(p, format!("dir {mode:o}"));
            } else {
                let h = hex::encode(sha2::Sha256::digest(fs::read(&p).unwrap()));
                out.insert(p, format!("{h} {mode:o}"));
            }
        }
    }
    out
}

/// The task of each registered module: (task name, module, arguments, the status it must
/// report in check mode). `{W}`, `{PKI}`, `{NEWPKI}` and the PostgreSQL values are filled in.
const CASES: &[(&str, &str, &str, Status)] = &[
    ("copy", "copy", "dest: {W}/copy.txt\n        content: \"new\\n\"", Status::Changed),
    ("template", "template", "src: t.j2\n        dest: {W}/templated.txt", Status::Changed),
    ("file", "file", "path: {W}/newdir\n        state: directory", Status::Changed),
    ("stat", "stat", "path: {W}/conf.txt", Status::Ok),
    ("lineinfile", "lineinfile", "path: {W}/conf.txt\n        line: \"added = 1\"", Status::Changed),
    ("blockinfile", "blockinfile", "path: {W}/conf.txt\n        block: \"x = 1\"", Status::Changed),
    (
        "ini_file",
        "ini_file",
        "path: {W}/app.ini\n        section: s\n        option: o\n        value: v",
        Status::Changed,
    ),
    (
        "env_file",
        "env_file",
        "path: {W}/app.env\n        settings:\n          CSS_SSL_ENABLED: true\n          SECRET_KEY: \"00ff\"",
        Status::Changed,
    ),
    (
        "env_file absent",
        "env_file",
        "path: {W}/app.env\n        keys: [OLD]\n        state: absent",
        Status::Changed,
    ),
    ("command", "command", "cmd: touch {W}/commanded", Status::Skipped),
    (
        "command with creates",
        "command",
        "cmd: touch {W}/made\n        creates: {W}/made",
        Status::Changed,
    ),
    ("shell", "shell", "cmd: echo hi > {W}/shelled", Status::Skipped),
    ("debug", "debug", "msg: hello", Status::Ok),
    ("assert", "assert", "that:\n          - 1 == 1", Status::Ok),
    ("fail", "fail", "msg: failing on purpose", Status::Failed),
    // Windows hosts only: on this (POSIX) host it fails before reading anything.
    (
        "win_environment",
        "win_environment",
        "name: CASTCONNECTIONEXTRAPARAMETERS\n        value: C:\\CAST\\SSLParameters.ini",
        Status::Failed,
    ),
    ("set_fact", "set_fact", "answer: 42", Status::Ok),
    ("existing CA", "pki_ca", "dir: {PKI}\n        cn: check test CA", Status::Ok),
    ("new CA", "pki_ca", "dir: {NEWPKI}\n        cn: another CA", Status::Changed),
    (
        "new server certificate",
        "pki_cert",
        "dir: {PKI}\n        kind: server\n        name: db2\n        sans: [db2.example.com]",
        Status::Changed,
    ),
    (
        "client bundle with a new pfx password",
        "pki_cert",
        "dir: {PKI}\n        kind: client\n        name: app\n        pfx_password: check-pw",
        Status::Changed,
    ),
    (
        "forced renewal",
        "pki_cert",
        "dir: {PKI}\n        kind: server\n        name: db1\n        sans: [db1]\n        force: true",
        Status::Changed,
    ),
    ("rollover plan", "pki_rollover", "dir: {PKI}", Status::Ok),
    (
        "rollover phase 1",
        "pki_rollover",
        "dir: {PKI}\n        phase: 1",
        Status::Changed,
    ),
    (
        "rollover phase 2 before phase 1",
        "pki_rollover",
        "dir: {PKI}\n        phase: 2",
        Status::Ok,
    ),
    (
        "revoke",
        "pki_crl",
        "dir: {PKI}\n        revoke: app\n        kind: client",
        Status::Changed,
    ),
    (
        "external certificate check",
        "pki_check",
        "cert: {PKI}/server/db1/server.crt\n        key: {PKI}/server/db1/server.key\n        ca: {PKI}/ca.crt\n        names: [db1]",
        Status::Ok,
    ),
    (
        "key made on the host",
        "pki_csr",
        "dir: {PKI}\n        name: db3\n        sans: [db3.example.com]\n        key: {W}/db3.key\n        cert: {W}/db3.crt",
        Status::Changed,
    ),
    (
        "request of the host's key signed",
        "pki_csr",
        "dir: {PKI}\n        name: db4\n        sans: [db4.example.com]\n        key: {W}/host.key\n        cert: {W}/host.crt",
        Status::Changed,
    ),
    (
        "new secret",
        "secret",
        "path: {W}/secrets/session_key\n        bytes: 32",
        Status::Changed,
    ),
    ("pg_facts", "pg_facts", "", Status::Ok),
    (
        "pg_conf",
        "pg_conf",
        "path: \"{{ pg_facts.config_file }}\"\n        settings:\n          work_mem: 8MB",
        Status::Changed,
    ),
    (
        "pg_hba",
        "pg_hba",
        "path: \"{{ pg_facts.hba_file }}\"\n        type: hostssl\n        database: all\n        user: app\n        address: 10.0.0.0/8\n        method: cert",
        Status::Changed,
    ),
    ("pg_service", "pg_service", "state: restarted", Status::Changed),
    (
        "patroni_config",
        "patroni_config",
        "patronictl: {W}/patronictl-fixture\n        config: {W}/patroni.yml\n        scope: fixture\n        parameters:\n          ssl: \"on\"",
        Status::Changed,
    ),
    (
        "pg_verify",
        "pg_verify",
        "port: {PORT}\n        ca_file: {PKI}/ca.crt\n        cert_file: {PKI}/client/postgres/client.crt\n        key_file: {PKI}/client/postgres/client.key",
        Status::Skipped,
    ),
    ("apt", "apt", "deb: {DEB}", Status::Changed),
    (
        "package",
        "package",
        "name: {DEB}\n        state: present\n        use: apt",
        Status::Changed,
    ),
    ("dnf", "dnf", "name: demo-tool", Status::Changed),
    ("yum", "yum", "name: demo-lib\n        state: latest", Status::Changed),
    (
        "service",
        "service",
        "name: demo\n        state: started\n        use: systemd",
        Status::Changed,
    ),
    (
        "systemd",
        "systemd",
        "name: demo\n        state: restarted\n        enabled: true",
        Status::Changed,
    ),
    ("systemd daemon_reload", "systemd", "daemon_reload: true", Status::Ok),
    ("wait_for", "wait_for", "path: {W}/never\n        timeout: 1", Status::Skipped),
];

/// The recording fixtures' state: `demo-tool` available, `demo-lib` 1.0 installed with 1.1
/// available, unit `demo` known and stopped. Returns the state directory.
fn fixture_state(root: &Path) -> PathBuf {
    let st = root.join("fixture-state");
    for d in ["rpmdb", "repo", "units"] {
        fs::create_dir_all(st.join(d)).unwrap();
    }
    fs::write(st.join("repo/demo-tool"), "0:2.0-1 noarch\n").unwrap();
    fs::write(st.join("rpmdb/demo-lib"), "0:1.0-1 noarch\n").unwrap();
    fs::write(st.join("repo/demo-lib"), "0:1.1-1 noarch\n").unwrap();
    fs::write(st.join("units/demo.service"), "").unwrap();
    st
}

/// Lines of the server log after `from` bytes.
fn log_after(log: &Path, from: usize) -> Vec<String> {
    let all = fs::read(log).unwrap();
    String::from_utf8_lossy(&all[from.min(all.len())..])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn no_registered_module_acts_in_check_mode() {
    // Every line names its client: `[local]` for a socket session (pg_facts' query), an address
    // for a TCP login; the postmaster's own lines (reload, shutdown) have none.
    let pg = Pg::start_with(
        "log_connections = on\nlog_disconnections = on\nlog_line_prefix = '%m [%p] <%h> '",
    );
    let root = pg.root.join("check");
    let w = root.join("work");
    fs::create_dir_all(&w).unwrap();
    fs::write(w.join("conf.txt"), "a = 1\n").unwrap();
    fs::write(w.join("app.ini"), "[s]\nother = 1\n").unwrap();
    fs::write(w.join("app.env"), "# app\nOLD=1\nCSS_SSL_ENABLED=false\n").unwrap();
    fs::write(w.join("copy.txt"), "old\n").unwrap();
    // A key already on the host: pki_csr's plan makes a request from it (openssl req, read-only).
    let host_key = castellan::pki::KeyType::EcdsaP256.generate().unwrap();
    fs::write(
        w.join("host.key"),
        castellan::pki::key::private_key_pem(&host_key),
    )
    .unwrap();
    // A fixture standing in for patronictl (no Patroni cluster here): it answers
    // show-config, the plan's one read, and refuses anything else; edit-config, an exec, would
    // be recorded and refused by the connection anyway.
    {
        use std::os::unix::fs::PermissionsExt;
        let f = w.join("patronictl-fixture");
        fs::write(
            &f,
            "#!/bin/sh\ncase \" $* \" in *\" show-config \"*) printf 'postgresql:\\n  parameters:\\n    ssl: \"off\"\\n' ;; \
             *) echo \"fixture: only show-config\" >&2; exit 1 ;; esac\n",
        )
        .unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(w.join("patroni.yml"), "scope: fixture\nname: db1\n").unwrap();
    }
    fs::create_dir_all(root.join("templates")).unwrap();
    fs::write(
        root.join("templates/t.j2"),
        "host {{ inventory_hostname }}\n",
    )
    .unwrap();

    // The PKI the modules read: a CA, a server certificate, a client `app` (and the test
    // cluster's own PKI for pg_verify's client certificate).
    let pki = root.join("pki");
    ensure_ca(
        &pki,
        &CaSpec {
            cn: Some("check test CA".into()),
            ..CaSpec::default()
        },
    )
    .unwrap();
    ensure_cert(&pki, &CertSpec::server("db1", "db1", vec!["db1".into()])).unwrap();
    ensure_cert(&pki, &CertSpec::client("app", "app")).unwrap();
    let new_pki = root.join("new-pki");
    // A real package, never installed here (its name is this test's own).
    let deb = deb_common::Deb::new("castellan-check-mode-pure", "1.0").build(&w);
    deb_common::purge("castellan-check-mode-pure");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recording");
    let state = fixture_state(&root);
    // This test binary has this one test: the PATH and the fixtures' state are its own.
    std::env::set_var(
        "PATH",
        format!(
            "{}:{}",
            s(&fixtures),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    std::env::set_var("CASTELLAN_FIXTURE_STATE", &state);
    let fixture_before = hashes(&state.join("rpmdb"));

    let registered: BTreeSet<&str> = castellan::modules::registry::names().collect();
    let covered: BTreeSet<&str> = CASES.iter().map(|c| c.1).collect();
    let missing: Vec<&&str> = registered.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "modules without a check-mode case in tests/check_mode_pure.rs: {missing:?}"
    );

    let mut tasks = String::new();
    for (name, module, args, status) in CASES {
        let args = args
            .replace("{W}", s(&w))
            .replace("{NEWPKI}", s(&new_pki))
            .replace(
                "{PKI}",
                s(if module == &"pg_verify" {
                    &pg.pki
                } else {
                    &pki
                }),
            )
            .replace("{PORT}", &pg.port.to_string())
            .replace("{DEB}", s(&deb));
        tasks.push_str(&format!(
            "    - name: {name}\n      {module}:\n        {args}\n"
        ));
        if *status == Status::Failed {
            tasks.push_str("      ignore_errors: true\n");
        }
    }
    let play = root.join("play.yml");
    fs::write(&play, format!("- hosts: db1\n  tasks:\n{tasks}")).unwrap();
    let inv = root.join("inventory.yml");
    fs::write(
        &inv,
        format!(
            "all:\n  hosts:\n    db1:\n      ansible_connection: local\n      ansible_host: 127.0.0.1\n      \
             pg_socket_dir: {}\n      pg_port: {}\n      pg_dns_name: localhost\n",
            s(&pg.sock),
            pg.port
        ),
    )
    .unwrap();

    let started = pg.start_time();
    let loaded_at = pg.sql("SELECT pg_conf_load_time()");
    let work_before = hashes(&w);
    let pki_before = hashes(&pki);
    let data_before = hashes(&pg.data);
    let log_from = fs::metadata(&pg.log).unwrap().len() as usize;

    let args = PlaybookArgs {
        playbooks: vec![play],
        inventory: vec![inv],
        limit: None,
        tags: Vec::new(),
        skip_tags: Vec::new(),
        check: true,
        diff: true,
        extra_vars: Vec::new(),
        forks: 5,
        max_connections: 256,
        output: Output::Json,
        syntax_check: false,
        accept_new_host_keys: false,
        verbose: 0,
        vault: Default::default(),
    };
    let loaded = load_and_check(&args, &Default::default(), &Default::default())
        .unwrap_or_else(|e| panic!("the playbook does not load: {e}"));
    let opts = RunOptions {
        check: true,
        diff: true,
        ..RunOptions::default()
    };
    let recording = Arc::new(Recording {
        inner: LocalConnection::new(),
        effects: Mutex::new(Vec::new()),
    });
    let reporter = Collect::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut runner = Runner::new(&loaded.inventory, &opts, &loaded.templar, &reporter);
        runner.pool = Arc::new(Pool::with_local(false, recording.clone()));
        runner.run(&loaded.playbooks).await;
    });

    let effects = recording.effects.lock().unwrap().clone();
    assert!(
        effects.is_empty(),
        "check mode acted on the host: {effects:#?}"
    );
    assert_eq!(hashes(&w), work_before, "check mode changed the work files");
    assert_eq!(
        hashes(&pki),
        pki_before,
        "check mode changed the PKI directory"
    );
    assert!(!new_pki.exists(), "check mode created a PKI directory");
    assert_eq!(
        deb_common::installed("castellan-check-mode-pure"),
        None,
        "check mode installed a package"
    );
    assert_eq!(
        hashes(&state.join("rpmdb")),
        fixture_before,
        "check mode changed the fixture's rpm database"
    );
    for d in ["active", "enabled", "masked"] {
        assert!(
            fs::read_dir(state.join(d)).map_or(true, |mut r| r.next().is_none()),
            "check mode changed the fixture's units ({d})"
        );
    }
    let calls = fs::read_to_string(state.join("calls.log")).unwrap_or_default();
    for changing in [
        " install",
        " update",
        " upgrade",
        "systemctl start",
        "systemctl restart",
        "systemctl enable",
        "daemon-reload",
    ] {
        assert!(
            !calls.contains(changing),
            "check mode ran `{changing}`: {calls}"
        );
    }
    assert!(
        calls.contains("systemctl show") && calls.contains("rpm -q"),
        "the plans read through the fixtures: {calls}"
    );
    assert_eq!(
        hashes(&pg.data),
        data_before,
        "check mode changed the data directory"
    );
    let foreign: Vec<String> = log_after(&pg.log, log_from)
        .into_iter()
        .filter(|l| !l.contains("<[local]>"))
        .collect();
    assert!(
        foreign.is_empty(),
        "check mode reached the server (reload, restart or a TCP login): {foreign:#?}"
    );
    // Every case ran and reported what it would do.
    let results = reporter.results.lock().unwrap();
    let mut seen = BTreeSet::new();
    for (name, module, _, want) in CASES {
        let (_, _, r) = results
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("task {name} did not run"));
        assert_eq!(
            r.status, *want,
            "{name} ({module}) in check mode: {:?} {}",
            r.msg, r.detail
        );
        seen.insert(*module);
    }
    assert_eq!(seen, registered);

    assert_eq!(pg.start_time(), started, "check mode restarted the server");
    assert_eq!(
        pg.sql("SELECT pg_conf_load_time()"),
        loaded_at,
        "check mode reloaded the server"
    );
}
