//! `pg_facts` and `pg_service` on a Windows host (`ansible_shell_type: powershell|cmd`): CAST
//! Storage Service, a Windows service (`pg_win_service`, default `CASTStorageService4`) whose
//! `psql.exe` (`bin_dir` / `pg_bin_dir` / `pg_win_bin_dir`) is reached over TCP
//! (`pg_win_host`, default `localhost`) as the SSH login. The scripts are
//! [`crate::postgres::win_scripts`].
//!
//! Facts: the same facts query as on Linux, plus the service's account (the owner the key
//! files' ACL grants: `pg_win_service_account`, else the service's StartName), its state and
//! command line; `service.method` is `win_service`, `service.unit` the service name.
//!
//! Control: `reloaded` = `SELECT pg_reload_conf()` then the server's own verdict on its files
//! (`pg_hba_file_rules`, `pg_file_settings`); `restarted` = `Restart-Service` waiting until
//! Running, then the server must answer within `timeout`; `applied` = reload, restart only if a
//! setting is `pending_restart`. A rejected reload or a restart after which the server does not
//! answer rolls back as on Linux: the first backup of each file under the config or data folder
//! moved back, the server reloaded (or the service restarted when it does not answer), its
//! health checked, the task failed with what was restored. Unlike Linux, the server log is not
//! read (no log lines in the message).
use serde_json::{json, Map, Value};

use super::target::{self, var_string};
use crate::connection::{Backup, ExecOutput, ExecRequest};
use crate::modules::{Action, ActionCtx, ActionOutput, Args, ModuleCtx, ModuleError, Plan};
use crate::os::win_service::{change_script, Change};
use crate::postgres::facts::build_facts;
use crate::postgres::service::{parse_check, rollback_summary, select_backups, CheckState};
use crate::postgres::target::{sections, DEFAULT_SOCKET_DIR};
use crate::postgres::win_scripts::{account_owner, restore_script, WinPg};

/// The defaults of role postgres_tls, for a play without it.
pub const DEFAULT_SERVICE: &str = "CASTStorageService4";
pub const DEFAULT_BIN_DIR: &str = "C:\\Program Files\\CAST\\CASTStorageService4\\bin";

/// The cluster to reach: arguments, then the `pg_*` / `pg_win_*` variables, then the defaults.
pub fn resolve(args: &Args, vars: &tera::Context) -> Result<WinPg, String> {
    let t = target::resolve(args, vars, None)?;
    let host = args
        .string("socket_dir")
        .or_else(|| var_string(vars, "pg_win_host"))
        .filter(|h| h != DEFAULT_SOCKET_DIR)
        .unwrap_or_else(|| "localhost".into());
    Ok(WinPg {
        bin_dir: t
            .bin_dir
            .or_else(|| var_string(vars, "pg_win_bin_dir"))
            .unwrap_or_else(|| DEFAULT_BIN_DIR.into()),
        host,
        port: t.port,
        user: t.login_user,
        service: var_string(vars, "pg_win_service").unwrap_or_else(|| DEFAULT_SERVICE.into()),
    })
}

/// The `pg_facts` value from the facts script's output.
pub fn win_facts(stdout: &str, w: &WinPg, account: Option<&str>) -> Result<Value, String> {
    let sec = sections(stdout);
    let json_line = sec.get("json").map(|s| s.trim()).unwrap_or("");
    let start = sec.get("account").map(|s| s.trim()).unwrap_or("");
    let owner = account
        .map(str::to_string)
        .unwrap_or_else(|| account_owner(start));
    let t = crate::postgres::target::PgTarget {
        socket_dir: w.host.clone(),
        port: w.port,
        os_user: owner.clone(),
        login_user: w.user.clone(),
        bin_dir: Some(w.bin_dir.clone()),
    };
    let mut v = build_facts(
        &format!("@@json\n{json_line}\n@@owner\n{owner}\n"),
        &t,
        None,
    )?;
    let state = sec.get("state").map(|s| s.trim()).unwrap_or("");
    if let Some(svc) = v.get_mut("service").and_then(Value::as_object_mut) {
        svc.insert("method".into(), json!("win_service"));
        svc.insert("unit".into(), json!(w.service));
        svc.insert("bin_dir".into(), json!(w.bin_dir));
        svc.insert("stderr_log".into(), Value::Null);
        svc.insert("state".into(), json!(state));
        svc.insert("account".into(), json!(start));
    }
    if let Some(m) = v.as_object_mut() {
        m.insert("windows".into(), json!(true));
    }
    Ok(v)
}

/// `pg_facts` on a Windows host.
pub async fn facts_plan(ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let w = resolve(args, ctx.vars)?;
    let req = ExecRequest {
        shell: Some(w.facts_script()?),
        ..ExecRequest::default()
    };
    let out = ctx.host.query(&req).await?;
    if out.rc != 0 {
        let mut result = Map::new();
        result.insert("rc".into(), json!(out.rc));
        return Err(ModuleError::failed_with(
            format!(
                "cannot query PostgreSQL with {} on {}:{} as database user {} (service {}): {} \
                 (is the service running? are pg_win_bin_dir, pg_port and the login right? \
                 pg_hba.conf must let this login in without a password prompt)",
                w.psql_exe(),
                w.host,
                w.port,
                w.user,
                w.service,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            result,
        ));
    }
    let account = var_string(ctx.vars, "pg_win_service_account");
    let facts = win_facts(
        &String::from_utf8_lossy(&out.stdout),
        &w,
        account.as_deref(),
    )?;
    let mut plan = Plan::ok()
        .with("pg_facts", facts.clone())
        .with("ansible_facts", json!({ "pg_facts": facts.clone() }));
    plan.facts.insert("pg_facts".into(), facts);
    Ok(plan)
}

/// The reload/restart (and rollback) of a Windows service, deferred like the Linux one.
#[derive(Debug)]
pub struct WinControl {
    pub state: String,
    pub w: WinPg,
    /// The config and data folders (where a rollback looks for backups).
    pub roots: Vec<String>,
    pub timeout: u64,
    pub rollback: bool,
}

/// `pg_service` on a Windows host.
pub fn service_plan(ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
    let facts = ctx.vars.get("pg_facts").cloned().filter(Value::is_object);
    let svc = args
        .get("service")
        .cloned()
        .or_else(|| facts.as_ref().and_then(|f| f.get("service").cloned()))
        .ok_or("pg_service needs `service` (pg_facts.service): run pg_facts first")?;
    let s = |k: &str| svc.get(k).and_then(Value::as_str).map(str::to_string);
    let fact = |k: &str| facts.as_ref().and_then(|f| f.get(k)).cloned();
    let mut w = resolve(args, ctx.vars)?;
    if let Some(u) = s("unit") {
        w.service = u;
    }
    if let Some(b) = s("bin_dir").filter(|_| args.string("bin_dir").is_none()) {
        w.bin_dir = b;
    }
    if args.string("socket_dir").is_none() {
        if let Some(Value::String(h)) = fact("socket_dir") {
            w.host = h;
        }
    }
    if args.string("port").is_none() {
        if let Some(p) = fact("port").and_then(|p| p.as_u64()) {
            w.port = u16::try_from(p).map_err(|_| format!("pg_facts.port {p} is not a port"))?;
        }
    }
    if args.string("login_user").is_none() {
        if let Some(Value::String(u)) = fact("login_user") {
            w.user = u;
        }
    }
    let data_dir = s("data_dir").ok_or("`service.data_dir` is missing")?;
    let mut roots = vec![s("config_dir").unwrap_or_else(|| data_dir.clone())];
    if roots[0] != data_dir {
        roots.push(data_dir);
    }
    let state = args.req("state")?;
    Ok(Plan::action(WinControl {
        state: state.clone(),
        w,
        roots,
        timeout: args.int("timeout").unwrap_or(30).clamp(1, 3600) as u64,
        rollback: args.bool("rollback", true),
    })
    .with("state", state)
    .with("method", "win_service"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

/// Backups under the roots, paths compared in `/` form (PostgreSQL reports `C:/...`).
pub fn win_backups(backups: &[Backup], roots: &[String]) -> Vec<(String, String)> {
    let norm: Vec<Backup> = backups
        .iter()
        .map(|b| Backup {
            path: b.path.replace('\\', "/"),
            backup: b.backup.clone(),
        })
        .collect();
    let roots: Vec<String> = roots.iter().map(|r| r.replace('\\', "/")).collect();
    select_backups(&norm, &roots, &[])
}

/// The errors the server reports about its files.
fn rejections(c: &CheckState) -> Vec<String> {
    c.hba_errors
        .iter()
        .chain(&c.settings_errors)
        .cloned()
        .collect()
}

impl WinControl {
    async fn exec(&self, ctx: &ActionCtx<'_>, script: String) -> Result<ExecOutput, ModuleError> {
        let req = ExecRequest {
            shell: Some(script),
            ..ExecRequest::default()
        };
        Ok(ctx.conn.exec(&req).await?)
    }

    /// Health within `timeout`: the check, or psql's last error.
    async fn health(
        &self,
        ctx: &ActionCtx<'_>,
        timeout: u64,
    ) -> Result<Result<CheckState, String>, ModuleError> {
        let out = self.exec(ctx, self.w.health_script(timeout)?).await?;
        let sec = sections(&text(&out.stdout));
        Ok(
            match sec
                .get("check")
                .and_then(|c| parse_check(c))
                .filter(|_| out.rc == 0)
            {
                Some(c) => Ok(c),
                None => Err(sec
                    .get("error")
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| text(&out.stderr))),
            },
        )
    }

    /// Undo the files, bring the server back on them, and fail with `reason` and what was done.
    async fn roll_back(&self, ctx: &ActionCtx<'_>, reason: String) -> ModuleError {
        if !self.rollback {
            return ModuleError::failed(format!("{reason} (rollback: no, nothing restored)"));
        }
        match self.try_roll_back(ctx).await {
            Ok(summary) => ModuleError::failed(format!("{reason}. {summary}")),
            Err(e) => ModuleError::failed(format!("{reason}. Rollback failed: {e}")),
        }
    }

    async fn try_roll_back(&self, ctx: &ActionCtx<'_>) -> Result<String, String> {
        let pairs = win_backups(ctx.backups, &self.roots);
        let mut restored = Vec::new();
        let mut problem = String::new();
        if !pairs.is_empty() {
            let out = self
                .exec(ctx, restore_script(&pairs)?)
                .await
                .map_err(|e| e.to_string())?;
            let sec = sections(&text(&out.stdout));
            restored = sec
                .get("restored")
                .map(|r| {
                    r.lines()
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if out.rc != 0 {
                problem = format!(" ({})", text(&out.stderr));
            }
        }
        let quick = self.health(ctx, 5).await.map_err(|e| e.to_string())?;
        let did = if quick.is_ok() {
            let out = self
                .exec(ctx, self.w.reload_script(self.timeout)?)
                .await
                .map_err(|e| e.to_string())?;
            if out.rc == 0 {
                "reloaded"
            } else {
                "not reloaded"
            }
        } else {
            let out = self
                .exec(
                    ctx,
                    change_script(&self.w.service, Change::Restart, self.timeout)?,
                )
                .await
                .map_err(|e| e.to_string())?;
            if out.rc == 0 {
                "restarted"
            } else {
                "not restarted"
            }
        };
        let health = match self
            .health(ctx, self.timeout)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(c) if rejections(&c).is_empty() => "answers".to_string(),
            Ok(c) => format!("reports {}", rejections(&c).join("; ")),
            Err(e) => format!("does not answer ({e})"),
        };
        Ok(format!(
            "{}{problem}",
            rollback_summary(&restored, &self.roots, did, &health)
        ))
    }
}

#[async_trait::async_trait]
impl Action for WinControl {
    fn describe(&self) -> String {
        let svc = &self.w.service;
        match self.state.as_str() {
            "restarted" => format!("restart the PostgreSQL server (Restart-Service {svc})"),
            "applied" => format!(
                "reload the PostgreSQL server (pg_reload_conf), Restart-Service {svc} if a setting then needs it"
            ),
            _ => "reload the PostgreSQL server (pg_reload_conf)".to_string(),
        }
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let mut result = Map::new();
        let mut action = "none";
        let mut pending = Vec::new();
        if self.state != "restarted" {
            let out = self.exec(ctx, self.w.reload_script(self.timeout)?).await?;
            if out.rc != 0 {
                return Err(ModuleError::failed(format!(
                    "cannot reload the PostgreSQL server of service {}: {}",
                    self.w.service,
                    text(&out.stderr)
                )));
            }
            let sec = sections(&text(&out.stdout));
            let check = sec
                .get("check")
                .and_then(|c| parse_check(c))
                .ok_or("the server gave no answer to the check after the reload")?;
            let bad = rejections(&check);
            if !bad.is_empty() {
                return Err(self
                    .roll_back(
                        ctx,
                        format!("the server rejected its files: {}", bad.join("; ")),
                    )
                    .await);
            }
            action = "reloaded";
            pending = check.pending_restart;
        }
        if self.state == "restarted" || (self.state == "applied" && !pending.is_empty()) {
            let out = self
                .exec(
                    ctx,
                    change_script(&self.w.service, Change::Restart, self.timeout)?,
                )
                .await?;
            if out.rc != 0 {
                let why = format!(
                    "Restart-Service {} failed: {}",
                    self.w.service,
                    text(&out.stderr)
                );
                return Err(self.roll_back(ctx, why).await);
            }
            match self.health(ctx, self.timeout).await? {
                Ok(c) if rejections(&c).is_empty() => pending = c.pending_restart,
                Ok(c) => {
                    let why = format!(
                        "after the restart the server reports {}",
                        rejections(&c).join("; ")
                    );
                    return Err(self.roll_back(ctx, why).await);
                }
                Err(e) => {
                    let why = format!(
                        "the server did not answer within {} s of the restart: {e}",
                        self.timeout
                    );
                    return Err(self.roll_back(ctx, why).await);
                }
            }
            action = "restarted";
        }
        result.insert("action".into(), json!(action));
        result.insert("pending_restart".into(), json!(pending));
        Ok(ActionOutput {
            changed: action != "none",
            result,
            backups: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn css() -> WinPg {
        WinPg {
            bin_dir: DEFAULT_BIN_DIR.into(),
            host: "localhost".into(),
            port: 2284,
            user: "operator".into(),
            service: DEFAULT_SERVICE.into(),
        }
    }

    #[test]
    fn facts_of_a_css_host() {
        let j = json!({
            "server_version": "13.12", "server_version_num": 130012,
            "config_file": "C:/Program Files/CAST/CASTStorageService4/db_data/postgresql.conf",
            "hba_file": "C:/Program Files/CAST/CASTStorageService4/db_data/pg_hba.conf",
            "ident_file": "C:/Program Files/CAST/CASTStorageService4/db_data/pg_ident.conf",
            "data_directory": "C:/Program Files/CAST/CASTStorageService4/db_data",
            "cluster_name": "", "port": 2284, "ssl_settings": {"ssl": "off"},
            "pending_restart": [], "in_recovery": false, "current_logfile": "log/postgresql.log"
        });
        let out = format!(
            "@@json\n{j}\r\n@@account\r\nLocalSystem\r\n@@state\r\nRunning\r\n@@exe\r\n\"C:\\Program Files\\CAST\\CASTStorageService4\\bin\\pg_ctl.exe\" runservice\r\n"
        );
        let f = win_facts(&out, &css(), None).unwrap();
        assert_eq!(f["major"], 13);
        assert_eq!(
            f["config_dir"],
            "C:/Program Files/CAST/CASTStorageService4/db_data"
        );
        assert_eq!(f["data_owner"], "SYSTEM");
        assert_eq!(f["socket_dir"], "localhost");
        assert_eq!(f["login_user"], "operator");
        assert_eq!(f["service"]["method"], "win_service");
        assert_eq!(f["service"]["unit"], "CASTStorageService4");
        assert_eq!(f["service"]["state"], "Running");
        assert_eq!(f["service"]["bin_dir"], DEFAULT_BIN_DIR);
        assert_eq!(f["manager"], "none");
        let g = win_facts(&out, &css(), Some("CORP\\css-svc")).unwrap();
        assert_eq!(g["data_owner"], "CORP\\css-svc");
        assert!(win_facts("@@json\n\n", &css(), None).is_err());
    }

    #[test]
    fn backups_match_in_either_slash_form() {
        let b = [
            Backup {
                path: "C:\\Program Files\\CAST\\CASTStorageService4\\db_data\\pg_hba.conf".into(),
                backup: "C:\\x\\pg_hba.conf.1~".into(),
            },
            Backup {
                path: "C:/Program Files/CAST/CASTStorageService4/db_data/pg_hba.conf".into(),
                backup: "C:\\x\\pg_hba.conf.2~".into(),
            },
            Backup {
                path: "C:/CAST/ssl/client.key".into(),
                backup: "C:\\x\\client.key.1~".into(),
            },
        ];
        let roots = ["C:/Program Files/CAST/CASTStorageService4/db_data".to_string()];
        assert_eq!(
            win_backups(&b, &roots),
            vec![(
                "C:/Program Files/CAST/CASTStorageService4/db_data/pg_hba.conf".to_string(),
                "C:\\x\\pg_hba.conf.1~".to_string()
            )]
        );
    }
}
