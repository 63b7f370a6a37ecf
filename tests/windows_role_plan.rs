//! Issue 17: role postgres_tls planned for a Windows host (CAST Storage Service) without one.
//! `playbooks/enable-mtls.yml --check` runs through the engine on a host with
//! `ansible_shell_type: powershell` whose connection is a recording one: the facts query of
//! pg_facts (the PowerShell script of src/postgres/win_scripts.rs, recognised by its
//! `Win32_Service` query) is answered with `WIN_FACTS`, a hand-written answer in the form that
//! script prints (never captured from a Windows host: none is reachable here); a stat of a path
//! under CAST's db_data folder reads tests/fixtures/windows/db_data (a postgresql.conf and
//! pg_hba.conf as the CAST Storage Service installer leaves them); the control node's reads go
//! to the real local connection; every exec and apply is recorded and refused. The run must
//! take the Windows path of every task (facts from the script, Windows paths, ACL owner from the
//! service account, pg_service through Restart-Service/pg_reload_conf) and act on nothing.
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
use castellan::report::{HostResult, Reporter, Stats, Status};
use serde_json::json;

const DB_DATA: &str = "C:/Program Files/CAST/CASTStorageService4/db_data";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the facts script prints on a CAST Storage Service 4 host (PostgreSQL 13, port 2284,
/// service running as LocalSystem), written by hand in the script's format.
fn win_facts() -> String {
    let j = json!({
        "server_version": "13.12", "server_version_num": 130012,
        "config_file": format!("{DB_DATA}/postgresql.conf"),
        "hba_file": format!("{DB_DATA}/pg_hba.conf"),
        "ident_file": format!("{DB_DATA}/pg_ident.conf"),
        "data_directory": DB_DATA, "cluster_name": "", "port": 2284,
        "listen_addresses": "*", "unix_socket_directories": "", "logging_collector": "on",
        "current_logfile": "log/postgresql-2026-11-29.log", "in_recovery": false,
        "ssl_settings": {"ssl": "off"}, "pending_restart": []
    });
    format!(
        "@@json\r\n{j}\r\n@@account\r\nLocalSystem\r\n@@state\r\nRunning\r\n@@exe\r\n\"C:\\Program Files\\CAST\\CASTStorageService4\\bin\\pg_ctl.exe\" runservice -N \"CASTStorageService4\"\r\n"
    )
}

struct WinRecording {
    inner: LocalConnection,
    db_data: PathBuf,
    effects: Mutex<Vec<String>>,
    queries: Mutex<Vec<String>>,
}

impl WinRecording {
    fn refuse(&self, what: String) -> ConnError {
        self.effects.lock().unwrap().push(what.clone());
        ConnError::Failed(format!("recorded and refused: {what}"))
    }
}

#[async_trait]
impl Connection for WinRecording {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        Err(self.refuse(format!("exec {}", req.display())))
    }

    async fn query(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        let script = req.shell.clone().unwrap_or_default();
        self.queries.lock().unwrap().push(script.clone());
        if script.contains("Get-CimInstance -ClassName Win32_Service") {
            return Ok(ExecOutput {
                rc: 0,
                stdout: win_facts().into_bytes(),
                stderr: Vec::new(),
            });
        }
        Err(self.refuse(format!("query {}", req.display())))
    }

    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        let p = path.replace('\\', "/");
        match p.strip_prefix(DB_DATA) {
            Some(rest) => {
                let local = format!("{}{rest}", self.db_data.display());
                self.inner.stat(&local, want, None).await
            }
            None if p.starts_with("C:") => Err(self.refuse(format!("stat {path}"))),
            None => self.inner.stat(path, want, become_user).await,
        }
    }

    async fn apply(&self, op: &Op, _become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        Err(self.refuse(format!("apply {}", op.describe())))
    }
}

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

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn enable_mtls_plans_the_windows_path_for_a_css_host() {
    let tmp = tempfile::tempdir().unwrap();
    let db_data = tmp.path().join("db_data");
    copy_dir(&root().join("tests/fixtures/windows/db_data"), &db_data);
    let before: Vec<_> = ["postgresql.conf", "pg_hba.conf"]
        .iter()
        .map(|f| fs::read(db_data.join(f)).unwrap())
        .collect();
    let inv = tmp.path().join("hosts.yml");
    fs::write(
        &inv,
        "all:\n  children:\n    postgres:\n      hosts:\n        css-win1:\n          \
         ansible_connection: local\n          ansible_shell_type: powershell\n          \
         pg_dns_name: css-win1.example.com\n          pg_port: 2284\n",
    )
    .unwrap();
    let args = PlaybookArgs {
        playbooks: vec![root().join("playbooks/enable-mtls.yml")],
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
    let conn = Arc::new(WinRecording {
        inner: LocalConnection::new(),
        db_data: db_data.clone(),
        effects: Mutex::new(Vec::new()),
        queries: Mutex::new(Vec::new()),
    });
    let reporter = Collect::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut runner = Runner::new(&loaded.inventory, &opts, &loaded.templar, &reporter);
        runner.pool = Arc::new(Pool::with_local(false, conn.clone()));
        runner.run(&loaded.playbooks).await;
    });

    let results = reporter.results.lock().unwrap().clone();
    let summary: Vec<String> = results
        .iter()
        .map(|(n, m, r)| {
            format!(
                "{m} [{n}]: {:?} {}",
                r.status,
                r.msg.clone().unwrap_or_default()
            )
        })
        .collect();
    let effects = conn.effects.lock().unwrap().clone();
    assert!(
        effects.is_empty(),
        "acted on the host: {effects:#?}\n{summary:#?}"
    );
    for (_, m, r) in &results {
        assert!(
            !matches!(r.status, Status::Failed | Status::Unreachable),
            "{m} failed: {summary:#?}"
        );
    }
    let find = |module: &str, name_part: &str| {
        results
            .iter()
            .find(|(n, m, _)| m == module && n.contains(name_part))
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| panic!("no {module} [{name_part}] task ran: {summary:#?}"))
    };
    // pg_facts took the PowerShell path: one facts script, Windows facts.
    let queries = conn.queries.lock().unwrap().clone();
    assert!(
        queries.iter().all(|q| !q.contains("/.s.PGSQL")),
        "{queries:#?}"
    );
    assert!(queries[0].contains("psql.exe"), "{}", queries[0]);
    // The TLS settings and rules would change the CSS files, with the files next to
    // postgresql.conf (CAST's guide), and nothing was written.
    let conf = find("pg_conf", "TLS settings");
    assert_eq!(conf.status, Status::Changed, "{summary:#?}");
    let diff = format!("{}{}", conf.diff.clone().unwrap_or_default(), conf.detail);
    assert!(diff.contains(&format!("{DB_DATA}/server.crt")), "{diff}");
    assert_eq!(find("pg_hba", "hostssl").status, Status::Changed);
    // The key's ACL owner: SYSTEM (the service's LocalSystem account). In check mode the
    // certificate is not issued, so the copy of the files is skipped (nothing to copy yet).
    let facts = find("pg_facts", "discover the server");
    assert_eq!(
        facts.detail["pg_facts"]["data_owner"], "SYSTEM",
        "{}",
        facts.detail
    );
    assert_eq!(facts.detail["pg_facts"]["config_dir"], DB_DATA);
    assert_eq!(
        facts.detail["pg_facts"]["service"]["unit"],
        "CASTStorageService4"
    );
    assert_eq!(
        find("copy", "server certificate, key and CA").status,
        Status::Skipped
    );
    // The handler: the Windows control (pg_reload_conf, Restart-Service if needed).
    let handler = find("pg_service", "apply postgresql tls");
    assert_eq!(handler.status, Status::Changed, "{summary:#?}");
    assert_eq!(
        handler.detail["method"], "win_service",
        "{}",
        handler.detail
    );
    for (f, b) in ["postgresql.conf", "pg_hba.conf"].iter().zip(before) {
        assert_eq!(fs::read(db_data.join(f)).unwrap(), b, "{f} changed");
    }
}
