//! Service control for `pg_service`: the commands per control method, the scripts that reload
//! or restart and then look at what the server made of its files, the rollback decision and
//! the restore script. Everything here is pure (strings in, strings out) and unit-tested; the
//! module runs the scripts.
use serde_json::Value;

use super::facts::Method;
use super::manager::Manager;
use super::target::{sh, PgTarget};
use crate::connection::Backup;

/// How a cluster is controlled, as `pg_facts` reported it (`pg_facts.service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub method: Method,
    pub version: String,
    pub cluster: Option<String>,
    pub data_dir: String,
    pub config_dir: String,
    pub bin_dir: Option<String>,
    /// Where to read the server's log lines.
    pub log_file: Option<String>,
    /// Where `pg_ctl -l` sends the postmaster's output on a (re)start.
    pub stderr_log: Option<String>,
    pub unit: String,
    pub patroni_config: Option<String>,
    pub patroni_name: Option<String>,
    /// `patronictl` (a venv's); `None`: the one on `PATH`.
    pub patronictl: Option<String>,
    /// Who else controls the server (pg_facts' `manager`): under one, castellan never
    /// restarts or stops it behind the manager's back.
    pub manager: Manager,
}

/// What to do to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reload,
    Restart,
    /// Reload when it answers, start it when it does not (bringing it back after a rollback).
    ReloadOrStart,
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Service {
    /// From the `service` dictionary of `pg_facts`.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        if !v.is_object() {
            return Err(format!(
                "`service` must be the dictionary pg_facts reports (pg_facts.service), got {v}"
            ));
        }
        let method = Method::parse(
            &opt_str(v, "method").ok_or("`service.method` is missing (run pg_facts first)")?,
        )?;
        let data_dir = opt_str(v, "data_dir").ok_or("`service.data_dir` is missing")?;
        let s = Service {
            method,
            version: opt_str(v, "version").unwrap_or_default(),
            cluster: opt_str(v, "cluster"),
            config_dir: opt_str(v, "config_dir").unwrap_or_else(|| data_dir.clone()),
            data_dir,
            bin_dir: opt_str(v, "bin_dir"),
            log_file: opt_str(v, "log_file"),
            stderr_log: opt_str(v, "stderr_log"),
            unit: opt_str(v, "unit").unwrap_or_else(|| "postgresql".into()),
            patroni_config: opt_str(v, "patroni_config"),
            patroni_name: opt_str(v, "patroni_name"),
            patronictl: opt_str(v, "patronictl"),
            manager: Manager::parse(&opt_str(v, "manager").unwrap_or_default())?,
        };
        match s.method {
            Method::PgCtlCluster if s.version.is_empty() || s.cluster.is_none() => {
                Err("pg_ctlcluster needs `service.version` and `service.cluster`".to_string())
            }
            Method::Patroni if s.patroni_config.is_none() || s.cluster.is_none() => Err(
                "patroni needs `service.patroni_config` and `service.cluster` (the scope)"
                    .to_string(),
            ),
            _ => Ok(s),
        }
    }

    /// systemctl needs root (the task's become user); everything else runs as the cluster's
    /// OS user.
    pub fn runs_as_os_user(&self) -> bool {
        self.method != Method::Systemd
    }

    fn pg_ctl(&self) -> String {
        match &self.bin_dir {
            Some(d) => format!("{}/pg_ctl", d.trim_end_matches('/')),
            None => "pg_ctl".into(),
        }
    }

    fn startup_log(&self) -> String {
        self.stderr_log
            .clone()
            .or_else(|| self.log_file.clone())
            .unwrap_or_else(|| format!("{}/castellan-startup.log", self.data_dir))
    }

    /// The shell command for one plain action (not `ReloadOrStart`).
    fn simple(&self, what: &str, timeout: u64) -> Result<String, String> {
        let t = timeout.max(1).to_string();
        let words: Vec<String> = match self.method {
            Method::PgCtlCluster => {
                let cluster = self.cluster.as_deref().unwrap_or_default();
                vec![
                    "pg_ctlcluster".into(),
                    self.version.clone(),
                    cluster.into(),
                    what.into(),
                ]
            }
            Method::PgCtl => match what {
                "reload" => vec![
                    self.pg_ctl(),
                    "-D".into(),
                    self.data_dir.clone(),
                    "reload".into(),
                ],
                "restart" => vec![
                    self.pg_ctl(),
                    "-D".into(),
                    self.data_dir.clone(),
                    "-l".into(),
                    self.startup_log(),
                    "-w".into(),
                    "-t".into(),
                    t,
                    "-m".into(),
                    "fast".into(),
                    "restart".into(),
                ],
                _ => {
                    // `pg_ctl start` does not reuse postmaster.opts (restart does): pass the
                    // options the server last ran with (socket directory, port...).
                    let opts = sh(&format!("{}/postmaster.opts", self.data_dir))?;
                    return Ok(format!(
                        "o=$(sed -n '1s/^[^\"]*\"/\"/p' {opts} 2>/dev/null); {} -D {} -l {} -w -t {t} -o \"$o\" start",
                        sh(&self.pg_ctl())?,
                        sh(&self.data_dir)?,
                        sh(&self.startup_log())?,
                    ));
                }
            },
            Method::Systemd => vec!["systemctl".into(), what.into(), self.unit.clone()],
            Method::Patroni => {
                let cfg = self.patroni_config.clone().unwrap_or_default();
                let scope = self.cluster.clone().unwrap_or_default();
                let what = if what == "start" { "restart" } else { what };
                let ctl = self
                    .patronictl
                    .clone()
                    .unwrap_or_else(|| "patronictl".into());
                let mut w = vec![ctl, "-c".into(), cfg, what.into(), scope];
                w.extend(self.patroni_name.clone());
                w.push("--force".into());
                w
            }
        };
        let q: Vec<String> = words.iter().map(|w| sh(w)).collect::<Result<_, _>>()?;
        Ok(q.join(" "))
    }

    /// The command for `action`. Its output's first line says what it did for
    /// `ReloadOrStart` (`reloaded` or `started`).
    pub fn command(&self, action: Action, timeout: u64) -> Result<String, String> {
        match action {
            Action::Reload => self.simple("reload", timeout),
            Action::Restart => self.simple("restart", timeout),
            Action::ReloadOrStart => {
                let up = match self.method {
                    Method::Systemd => format!("systemctl is-active --quiet {}", sh(&self.unit)?),
                    _ => "q 'SELECT 1' >/dev/null 2>&1".to_string(),
                };
                // Under a cluster manager the manager starts the server, castellan does not.
                let start = if self.manager == Manager::None {
                    format!("echo started; {}", self.simple("start", timeout)?)
                } else {
                    format!(
                        "echo 'not started (the {} manager starts it)'",
                        self.manager.as_str()
                    )
                };
                Ok(format!(
                    "if {up}; then echo reloaded; {}; else {start}; fi",
                    self.simple("reload", timeout)?,
                ))
            }
        }
    }

    /// Directories whose files a rollback restores.
    pub fn roots(&self) -> Vec<String> {
        let mut r = vec![self.config_dir.clone()];
        if self.data_dir != self.config_dir {
            r.push(self.data_dir.clone());
        }
        r
    }
}

/// What the server made of its files, after an action. A setting that needs a restart shows in
/// `pg_file_settings` as "setting could not be applied": that is `pending_restart`, not an error.
pub const CHECK_SQL: &str = "SELECT json_build_object(\
'conf_load_time', pg_conf_load_time(), \
'postmaster_start_time', pg_postmaster_start_time(), \
'hba_errors', (SELECT coalesce(json_agg(format('pg_hba.conf line %s: %s', line_number, coalesce(error, 'rejected (see the server log)')) ORDER BY line_number), '[]'::json) FROM pg_hba_file_rules WHERE error IS NOT NULL OR type IS NULL), \
'settings_errors', (SELECT coalesce(json_agg(format('%s line %s: %s%s', sourcefile, sourceline, coalesce(name || ': ', ''), error) ORDER BY seqno), '[]'::json) FROM pg_file_settings WHERE error IS NOT NULL AND (name IS NULL OR name NOT IN (SELECT name FROM pg_settings WHERE pending_restart))), \
'pending_restart', (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json) FROM pg_settings WHERE pending_restart))";

/// The parts of one action's script: `pre` and `post` run as the cluster's OS user, `action` as
/// whoever controls the service. When both are the same user the three are one script (one
/// round trip).
#[derive(Debug, Clone)]
pub struct Steps {
    pub pre: String,
    pub action: String,
    pub post: String,
}

impl Steps {
    /// One script (same user for everything).
    pub fn joined(&self) -> String {
        format!("{}{}{}", self.pre, self.action, self.post)
    }
    /// `post` with the values `pre` printed (`@@t0`, `@@ls0`), when it runs as its own command.
    pub fn post_alone(&self, prelude: &str, t0: &str, ls0: u64) -> Result<String, String> {
        Ok(format!("t0={}; ls0={ls0}\n{prelude}{}", sh(t0)?, self.post))
    }
}

/// Build the script for `action`. `log_from`: read the log from this byte offset (the offset
/// recorded before the first action of the task) instead of from where it is now.
pub fn steps(
    svc: &Service,
    t: &PgTarget,
    action: Action,
    timeout: u64,
    log_from: Option<u64>,
) -> Result<Steps, String> {
    let log = svc.log_file.as_deref().map(sh).transpose()?;
    let mut pre = t.prelude()?;
    match (&log, log_from) {
        (_, Some(n)) => pre.push_str(&format!("ls0={n}\n")),
        (Some(l), None) => {
            pre.push_str(&format!("ls0=$(stat -c %s -- {l} 2>/dev/null || echo 0)\n"))
        }
        (None, None) => pre.push_str("ls0=0\n"),
    }
    pre.push_str(
        "t0=$(q 'SELECT pg_conf_load_time()' 2>/dev/null)\ncase $t0 in *[!0-9:.+\\ -]*) t0='';; esac\n\
         echo @@t0; printf '%s\\n' \"$t0\"; echo @@ls0; printf '%s\\n' \"$ls0\"\n",
    );
    let action_s = format!(
        "aout=$({{ {}; }} </dev/null 2>&1); arc=$?\necho @@action_rc; echo \"$arc\"; echo @@action_out; printf '%s\\n' \"$aout\"\n",
        svc.command(action, timeout)?
    );
    let mut post = String::new();
    if action != Action::Restart {
        // Patroni reloads at the start of its next loop (`loop_wait`, 10 s by default), then
        // PostgreSQL reloads: wait up to the timeout. A plain reload is done within 5 s.
        let polls = if svc.method == Method::Patroni {
            timeout.max(1) * 20
        } else {
            100
        };
        // A reload is asynchronous: wait until a new backend sees the new load time (the
        // postmaster has then finished the whole reload, pg_hba and SSL included), or until
        // postgresql.conf shows a syntax error (a row without a name: such a file is not
        // loaded at all, the load time never moves).
        post.push_str(
            &format!("i=0\nwhile [ -n \"$t0\" ] && [ \"$i\" -lt {polls} ]; do\n  r=$(q \"SELECT pg_conf_load_time() <> '$t0'::timestamptz OR EXISTS (SELECT 1 FROM pg_file_settings WHERE error IS NOT NULL AND name IS NULL)\" 2>/dev/null)\n  [ \"$r\" = t ] && break\n  i=$((i+1)); sleep 0.05\ndone\n",
        ));
    }
    post.push_str(&format!(
        "end=$(( $(date +%s) + {} )); ok=0\nwhile :; do\n  if q 'SELECT 1' >/dev/null 2>&1; then ok=1; break; fi\n  [ \"$(date +%s)\" -ge \"$end\" ] && break\n  sleep 0.2\ndone\necho @@healthy; echo \"$ok\"\n",
        timeout.max(1)
    ));
    post.push_str(&format!("echo @@check; q {} 2>&1\n", sh(CHECK_SQL)?));
    if let Some(l) = &log {
        post.push_str(&format!(
            "echo @@log; tail -c +$((ls0+1)) -- {l} 2>/dev/null | tail -n 400\n"
        ));
    }
    post.push_str("echo @@end\n");
    Ok(Steps {
        pre,
        action: action_s,
        post,
    })
}

/// What the server said after an action.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckState {
    pub hba_errors: Vec<String>,
    pub settings_errors: Vec<String>,
    pub pending_restart: Vec<String>,
    pub postmaster_start_time: Option<String>,
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The `@@check` section: the JSON, or `None` when the server could not be queried.
pub fn parse_check(text: &str) -> Option<CheckState> {
    let line = text.lines().find(|l| l.trim_start().starts_with('{'))?;
    let v: Value = serde_json::from_str(line.trim()).ok()?;
    Some(CheckState {
        hba_errors: strings(&v, "hba_errors"),
        settings_errors: strings(&v, "settings_errors"),
        pending_restart: strings(&v, "pending_restart"),
        postmaster_start_time: v
            .get("postmaster_start_time")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Server log lines worth showing: messages with a severity, without connection chatter.
pub fn server_log_lines(delta: &str, max: usize) -> Vec<String> {
    const LEVELS: &[&str] = &[
        "FATAL:", "ERROR:", "PANIC:", "LOG:", "DETAIL:", "HINT:", "WARNING:", "CONTEXT:",
    ];
    const NOISE: &[&str] = &[
        "connection received:",
        "connection authorized:",
        "connection authenticated:",
        "disconnection:",
        "statement:",
        "duration:",
        "checkpoint starting:",
        "checkpoint complete:",
    ];
    let lines: Vec<String> = delta
        .lines()
        .filter(|l| LEVELS.iter().any(|lv| l.contains(lv)))
        .filter(|l| !NOISE.iter().any(|n| l.contains(n)))
        .map(|l| l.trim_end().to_string())
        .collect();
    let skip = lines.len().saturating_sub(max);
    lines.into_iter().skip(skip).collect()
}

/// Log lines that say a reload was refused in part (SSL context, pg_hba.conf, pg_ident.conf):
/// the server keeps running on its old settings for those. postgresql.conf errors are read from
/// `pg_file_settings` instead: its "contains errors" line is also logged for a setting that
/// merely needs a restart.
pub fn reload_rejections(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.contains("was not reloaded"))
        .cloned()
        .collect()
}

/// The first backup of each file under one of `roots` (or equal to one of `files`), in the
/// order they were made: the state of the file before this run.
pub fn select_backups(
    backups: &[Backup],
    roots: &[String],
    files: &[String],
) -> Vec<(String, String)> {
    let under = |p: &str| {
        files.iter().any(|f| f == p)
            || roots.iter().any(|r| {
                let r = r.trim_end_matches('/');
                !r.is_empty() && p.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'))
            })
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for b in backups {
        if under(&b.path) && !out.iter().any(|(q, _)| *q == b.path) {
            out.push((b.path.clone(), b.backup.clone()));
        }
    }
    out
}

/// Put each backup back in place. A backup is a hard link to the old file (connection/backup.rs),
/// so it already has the old owner, group and mode: nothing is chowned. A backup name that is now
/// a symbolic link (whoever owns the directory may have swapped it) is refused, never followed or
/// moved into place. One script; prints `@@restored` then one path per line; failures go to
/// stderr and make it exit 1.
pub fn restore_script(pairs: &[(String, String)]) -> Result<String, String> {
    let mut s = String::from("rc=0\necho @@restored\n");
    for (p, b) in pairs {
        let (p, b) = (sh(p)?, sh(b)?);
        s.push_str(&format!(
            "if [ -L {b} ]; then\n  echo \"backup \"{b}\" is a symbolic link: \"{p}\" not restored\" >&2; rc=1\nelif [ -f {b} ]; then\n  if mv -f -- {b} {p}; then printf '%s\\n' {p}; else echo \"could not move \"{b}\" over \"{p} >&2; rc=1; fi\nelse\n  echo \"backup \"{b}\" is missing: \"{p}\" not restored\" >&2; rc=1\nfi\n"
        ));
    }
    s.push_str("exit $rc\n");
    Ok(s)
}

/// What a rollback says it did, exactly: the files it restored, or that it restored none (and
/// then that the files on disk still hold the rejected configuration); `did` is what happened to
/// the server afterwards (`reloaded`, `started`, `not reloaded`), `health` how it is now.
pub fn rollback_summary(restored: &[String], roots: &[String], did: &str, health: &str) -> String {
    if restored.is_empty() {
        format!(
            "Nothing was restored: no backup of a file under {} is known for this host (the tasks \
             that change them need `backup: yes`), so the files on disk still hold the rejected \
             configuration; server {did} on them and {health}.",
            roots.join(" or ")
        )
    } else {
        format!(
            "Rolled back: restored {}; server {did} on the old configuration and {health}.",
            restored.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(method: &str) -> Service {
        Service::from_value(&json!({
            "method": method, "version": "15", "cluster": "main",
            "data_dir": "/var/lib/postgresql/15/main", "config_dir": "/etc/postgresql/15/main",
            "bin_dir": "/usr/lib/postgresql/15/bin",
            "log_file": "/var/log/postgresql/postgresql-15-main.log",
            "unit": "postgresql@15-main", "patroni_config": "/etc/patroni.yml", "patroni_name": "db1",
        }))
        .unwrap()
    }

    #[test]
    fn commands_per_method() {
        assert_eq!(
            svc("pg_ctlcluster").command(Action::Reload, 30).unwrap(),
            "pg_ctlcluster 15 main reload"
        );
        assert_eq!(
            svc("pg_ctl").command(Action::Restart, 30).unwrap(),
            "/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/15/main -l /var/log/postgresql/postgresql-15-main.log -w -t 30 -m fast restart"
        );
        assert_eq!(
            svc("systemd").command(Action::Reload, 30).unwrap(),
            "systemctl reload postgresql@15-main"
        );
        assert_eq!(
            svc("patroni").command(Action::Restart, 30).unwrap(),
            "patronictl -c /etc/patroni.yml restart main db1 --force"
        );
        let c = svc("pg_ctl").command(Action::ReloadOrStart, 30).unwrap();
        assert!(
            c.contains("postmaster.opts") && c.contains("-o \"$o\" start"),
            "{c}"
        );
        assert!(!svc("systemd").runs_as_os_user());
    }

    #[test]
    fn under_a_cluster_manager_a_rollback_never_starts_the_server() {
        let mut s = svc("pg_ctl");
        s.manager = Manager::Efm;
        let c = s.command(Action::ReloadOrStart, 30).unwrap();
        assert!(!c.contains("postmaster.opts"), "{c}");
        assert!(c.contains("not started (the efm manager starts it)"), "{c}");
        let mut p = svc("patroni");
        p.manager = Manager::Patroni;
        p.patronictl = Some("/opt/v/bin/patronictl".into());
        let c = p.command(Action::ReloadOrStart, 30).unwrap();
        assert!(!c.contains("restart"), "{c}");
        assert!(
            c.contains("/opt/v/bin/patronictl -c /etc/patroni.yml reload main db1"),
            "{c}"
        );
    }

    #[test]
    fn service_needs_what_its_method_needs() {
        assert!(
            Service::from_value(&json!({"method": "pg_ctlcluster", "data_dir": "/d"})).is_err()
        );
        assert!(Service::from_value(&json!({"method": "upstart", "data_dir": "/d"})).is_err());
        assert!(Service::from_value(&json!("pg_ctl")).is_err());
    }

    #[test]
    fn backups_under_the_cluster_dirs_first_one_wins() {
        let b: Vec<Backup> = serde_json::from_value(json!([
            {"path": "/etc/postgresql/15/main/pg_hba.conf", "backup": "/etc/postgresql/15/main/pg_hba.conf.1~"},
            {"path": "/etc/hosts", "backup": "/etc/hosts.1~"},
            {"path": "/etc/postgresql/15/main/pg_hba.conf", "backup": "/etc/postgresql/15/main/pg_hba.conf.2~"},
            {"path": "/etc/postgresql/15/mainx/x.conf", "backup": "/x~"},
            {"path": "/var/lib/postgresql/15/main/server.key", "backup": "/var/lib/postgresql/15/main/server.key.1~"},
        ]))
        .unwrap();
        let s = svc("pg_ctl");
        let got = select_backups(&b, &s.roots(), &[]);
        assert_eq!(
            got,
            vec![
                (
                    "/etc/postgresql/15/main/pg_hba.conf".to_string(),
                    "/etc/postgresql/15/main/pg_hba.conf.1~".to_string()
                ),
                (
                    "/var/lib/postgresql/15/main/server.key".to_string(),
                    "/var/lib/postgresql/15/main/server.key.1~".to_string()
                ),
            ]
        );
        assert_eq!(select_backups(&b, &[], &["/etc/hosts".into()]).len(), 1);
    }

    #[test]
    fn restore_script_moves_and_reports() {
        let s = restore_script(&[("/a b/f".into(), "/a b/f.1~".into())]).unwrap();
        assert!(s.contains("mv -f -- '/a b/f.1~' '/a b/f'"), "{s}");
        assert!(!s.contains("chown"), "{s}");
    }

    /// Issue 8: the directory's owner swaps a backup for a symlink to a file of root's; the
    /// rollback (run as root) must neither chown/overwrite that file nor install the link.
    #[test]
    fn restore_never_follows_or_installs_a_symlinked_backup() {
        use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "root only\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let before = std::fs::metadata(&victim).unwrap();
        let conf = d.path().join("pg_hba.conf");
        std::fs::write(&conf, "rejected\n").unwrap();
        let bk = d.path().join("pg_hba.conf.1.2024~");
        symlink(&victim, &bk).unwrap();
        let ok = d.path().join("postgresql.conf");
        std::fs::write(&ok, "new\n").unwrap();
        let okbk = d.path().join("postgresql.conf.1.2024~");
        std::fs::write(&okbk, "old\n").unwrap();
        let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let script = restore_script(&[(s(&conf), s(&bk)), (s(&ok), s(&okbk))]).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), "rejected\n");
        assert!(!std::fs::symlink_metadata(&conf)
            .unwrap()
            .file_type()
            .is_symlink());
        let after = std::fs::metadata(&victim).unwrap();
        assert_eq!(
            (after.uid(), after.gid(), after.mode()),
            (before.uid(), before.gid(), before.mode())
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root only\n");
        // The good pair is still restored.
        assert_eq!(std::fs::read_to_string(&ok).unwrap(), "old\n");
        assert!(String::from_utf8_lossy(&out.stdout).contains("postgresql.conf"));
    }

    #[test]
    fn log_lines_and_rejections() {
        let log = "2024-01-01 LOG:  received SIGHUP, reloading configuration files\n\
                   2024-01-01 LOG:  connection received: host=[local]\n\
                   random\n\
                   2024-01-01 LOG:  invalid connection type \"hostx\"\n\
                   2024-01-01 CONTEXT:  line 3 of configuration file \"/d/pg_hba.conf\"\n\
                   2024-01-01 LOG:  pg_hba.conf was not reloaded\n";
        let lines = server_log_lines(log, 20);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            reload_rejections(&lines),
            vec!["2024-01-01 LOG:  pg_hba.conf was not reloaded"]
        );
        assert_eq!(server_log_lines(log, 2).len(), 2);
        // Logged for a setting that only needs a restart: not a rejection.
        let restart_only = vec![
            "LOG:  configuration file \"/d/postgresql.conf\" contains errors; unaffected changes were applied".to_string(),
        ];
        assert!(reload_rejections(&restart_only).is_empty());
    }

    #[test]
    fn check_state_parses() {
        let c = parse_check("{\"hba_errors\": [\"pg_hba.conf line 3: invalid\"], \"settings_errors\": [], \"pending_restart\": [\"shared_buffers\"], \"postmaster_start_time\": \"2024\"}").unwrap();
        assert_eq!(c.hba_errors.len(), 1);
        assert_eq!(c.pending_restart, vec!["shared_buffers"]);
        assert!(parse_check("psql: error: connection refused").is_none());
    }

    #[test]
    fn steps_join_into_one_script() {
        let t = PgTarget {
            socket_dir: "/s".into(),
            port: 5432,
            os_user: "postgres".into(),
            login_user: "postgres".into(),
            bin_dir: None,
        };
        let st = steps(&svc("pg_ctlcluster"), &t, Action::Reload, 30, None).unwrap();
        let j = st.joined();
        assert!(j.contains("pg_ctlcluster 15 main reload"));
        assert!(j.contains("pg_conf_load_time() <>"));
        assert!(j.contains("@@healthy") && j.contains("@@check") && j.contains("@@log"));
        // systemctl runs as root: pre and post run as postgres, around it.
        let sd = steps(&svc("systemd"), &t, Action::Reload, 30, None).unwrap();
        assert!(sd.action.contains("systemctl reload postgresql@15-main"));
        assert!(!sd.action.contains("q '"));
        let post = sd
            .post_alone(&t.prelude().unwrap(), "2024-01-01 00:00:00.1+00", 7)
            .unwrap();
        assert!(
            post.starts_with("t0='2024-01-01 00:00:00.1+00'; ls0=7\n"),
            "{post}"
        );
        assert!(post.contains("q() {"));
        let r = steps(&svc("pg_ctl"), &t, Action::Restart, 30, Some(42)).unwrap();
        assert!(r.pre.contains("ls0=42") && !r.post.contains("pg_conf_load_time() <>"));
    }

    #[test]
    fn the_rollback_says_exactly_what_it_restored() {
        let roots = vec!["/etc/pg".to_string(), "/var/lib/pg".to_string()];
        let none = rollback_summary(&[], &roots, "reloaded", "accepts connections");
        assert!(none.starts_with("Nothing was restored"), "{none}");
        assert!(none.contains("/etc/pg or /var/lib/pg"), "{none}");
        assert!(!none.contains("old configuration"), "{none}");
        let some = rollback_summary(
            &["/etc/pg/pg_hba.conf".into()],
            &roots,
            "started",
            "accepts connections",
        );
        assert_eq!(
            some,
            "Rolled back: restored /etc/pg/pg_hba.conf; server started on the old configuration \
             and accepts connections."
        );
    }
}
