//! `pg_service`: reload or restart a cluster through whatever controls it, check what the server
//! made of its files, restart only when a setting needs it, and roll back when the server
//! rejects the new configuration.
//!
//! Its plan only resolves the cluster and how it is controlled; the reload or restart is a
//! deferred [`Action`] the engine runs outside check mode (check mode reports `changed` with the
//! action's description).
//!
//! Rollback: when the reload reports errors (`pg_hba_file_rules`/`pg_file_settings` errors, or a
//! log line saying part of the configuration "was not reloaded"), or a restart does not bring
//! the server back within `timeout`, the first backup of each file under the cluster's config or
//! data directory (from the typed backup records the engine keeps for the host, given in
//! [`ActionCtx::backups`]: the backups this run's writes made, after those an earlier run left
//! with the handler it still owed, see `engine/pending.rs`) is moved back over its file,
//! the server is reloaded (or started when it is down), its health is checked, and the task
//! fails with the server's own log lines, which stops a `serial` rollout with
//! `max_fail_percentage: 0`. The message names every file restored, or says that none was (the
//! files on disk then still hold the rejected configuration).
//!
//! Under a cluster manager (`service.manager` from pg_facts: `patroni`, `efm`, `unknown`) it never
//! runs `pg_ctl restart`/`stop`, and a rollback never starts a stopped server. A Patroni member is
//! reloaded with `patronictl reload` (Patroni rewrites its files first); a restart that is due
//! fails the task with the reason unless `allow_restart: yes` (default: yes without a manager, no
//! under one), and then only under Patroni: the members it flags `pending restart` are restarted
//! one at a time with `patronictl restart`, replicas first, the leader last (result
//! `restarted_members`). See `manager_restart.rs`.
use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::manager_restart;
use super::target;
use crate::connection::{ExecOutput, ExecRequest};
use crate::modules::args::PORT_RANGE;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan,
};
use crate::postgres::manager::Manager;
use crate::postgres::patroni::Member;
use crate::postgres::service::{
    parse_check, reload_rejections, restore_script, rollback_summary, select_backups,
    server_log_lines, steps, Action as Step, Service, Steps,
};
use crate::postgres::target::{sections, PgTarget};

pub struct PgService;

const ARGS: &[Arg] = &[
    Arg::new("state", Kind::Str)
        .required()
        .choices(&["reloaded", "restarted", "applied"]),
    Arg::new("service", Kind::Dict),
    Arg::new("socket_dir", Kind::Str),
    Arg::new("port", Kind::Int).range(PORT_RANGE.0, PORT_RANGE.1),
    Arg::new("os_user", Kind::Str),
    Arg::new("login_user", Kind::Str),
    Arg::new("bin_dir", Kind::Str),
    Arg::new("timeout", Kind::Int).range(1, 3600),
    Arg::new("rollback", Kind::Bool),
    Arg::new("allow_restart", Kind::Bool),
];

/// Server log lines shown in a failure message.
const LOG_LINES: usize = 20;

/// The reload/restart (and rollback) the plan defers to the engine.
struct Control {
    state: String,
    svc: Service,
    t: PgTarget,
    facts: Option<Value>,
    timeout: u64,
    rollback: bool,
    /// Under a cluster manager: whether a restart may be done (Patroni only, through
    /// `patronictl restart`). Without a manager a restart is always allowed.
    allow_restart: bool,
}

struct Run<'a> {
    ctx: &'a ActionCtx<'a>,
    svc: &'a Service,
    t: &'a PgTarget,
    facts: Option<&'a Value>,
    timeout: u64,
    rollback: bool,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

impl Run<'_> {
    async fn exec(&self, script: String, user: Option<&str>) -> Result<ExecOutput, ModuleError> {
        let req = ExecRequest {
            shell: Some(script),
            become_user: user.map(str::to_string),
            ..ExecRequest::default()
        };
        Ok(self.ctx.conn.exec(&req).await?)
    }

    /// Run one action's script: one round trip, or three when the action needs another user
    /// than the cluster's (systemctl as root).
    async fn steps(&self, st: &Steps) -> Result<HashMap<String, String>, ModuleError> {
        let os_user = Some(self.t.os_user.as_str());
        if self.svc.runs_as_os_user() || self.ctx.become_user == os_user {
            let out = self.exec(st.joined(), os_user).await?;
            return Ok(sections(&text(&out.stdout)));
        }
        let pre = sections(&text(&self.exec(st.pre.clone(), os_user).await?.stdout));
        let mut all = sections(&text(
            &self
                .exec(st.action.clone(), self.ctx.become_user)
                .await?
                .stdout,
        ));
        let t0 = pre.get("t0").cloned().unwrap_or_default();
        let ls0 = pre
            .get("ls0")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let post = st.post_alone(&self.t.prelude()?, t0.trim(), ls0)?;
        all.extend(sections(&text(&self.exec(post, os_user).await?.stdout)));
        all.extend(pre);
        Ok(all)
    }

    async fn act(&self, action: Step, log_from: Option<u64>) -> Result<Outcome, ModuleError> {
        let st = steps(self.svc, self.t, action, self.timeout, log_from)?;
        let sec = self.steps(&st).await?;
        let get = |k: &str| sec.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
        let check_text = get("check");
        let log = server_log_lines(sec.get("log").map(String::as_str).unwrap_or(""), 400);
        Ok(Outcome {
            ls0: get("ls0").parse().ok(),
            action_rc: get("action_rc").parse().unwrap_or(-1),
            action_out: get("action_out"),
            healthy: get("healthy") == "1",
            check: parse_check(&check_text),
            check_text,
            log,
        })
    }

    fn tail(lines: &[String]) -> Vec<String> {
        let skip = lines.len().saturating_sub(LOG_LINES);
        lines[skip..].to_vec()
    }

    /// Restore the backups known for this host, bring the server back, and fail.
    async fn rollback(
        &self,
        errors: Vec<String>,
        first: &Outcome,
        mut result: Map<String, Value>,
    ) -> ModuleError {
        let log_from = first.ls0;
        let errors_text = errors.join("; ");
        if !self.rollback {
            let lines = Self::tail(&first.log);
            result.insert("action".into(), json!("failed"));
            result.insert("errors".into(), json!(errors));
            result.insert("log_lines".into(), json!(lines));
            let msg = format!(
                "PostgreSQL rejected the new configuration on {}: {errors_text}. rollback is off: \
                 nothing was restored. Server log:\n{}",
                self.ctx.inventory_hostname,
                lines.join("\n")
            );
            return ModuleError::failed_with(msg, result);
        }
        let files: Vec<String> = ["config_file", "hba_file", "ident_file"]
            .iter()
            .filter_map(|k| {
                self.facts
                    .and_then(|f| f.get(*k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        let pairs = select_backups(self.ctx.backups, &self.svc.roots(), &files);
        let mut problems: Vec<String> = Vec::new();
        let mut restored: Vec<String> = Vec::new();
        if !pairs.is_empty() {
            match restore_script(&pairs) {
                Ok(script) => match self.exec(script, self.ctx.become_user).await {
                    Ok(out) => {
                        let sec = sections(&text(&out.stdout));
                        restored = sec
                            .get("restored")
                            .map(|s| s.lines().map(str::to_string).collect())
                            .unwrap_or_default();
                        if out.rc != 0 {
                            problems.push(text(&out.stderr));
                        }
                    }
                    Err(e) => problems.push(format!("restore failed: {e}")),
                },
                Err(e) => problems.push(e),
            }
        }
        let back = self.act(Step::ReloadOrStart, log_from).await;
        let (did, healthy, still, lines) = match &back {
            Ok(o) => {
                let did = o
                    .action_out
                    .lines()
                    .next()
                    .unwrap_or("reloaded")
                    .to_string();
                let still: Vec<String> = o
                    .check
                    .as_ref()
                    .map(|c| {
                        c.hba_errors
                            .iter()
                            .chain(&c.settings_errors)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                (did, o.healthy, still, Self::tail(&o.log))
            }
            Err(e) => {
                problems.push(format!("could not bring the server back: {e}"));
                (
                    "not reloaded".into(),
                    false,
                    Vec::new(),
                    Self::tail(&first.log),
                )
            }
        };
        let health = if healthy {
            "accepts connections".to_string()
        } else {
            format!(
                "DOES NOT ACCEPT CONNECTIONS within {}s: fix it by hand",
                self.timeout
            )
        };
        let mut msg = format!(
            "PostgreSQL rejected the new configuration on {}: {errors_text}. {}",
            self.ctx.inventory_hostname,
            rollback_summary(&restored, &self.svc.roots(), &did, &health)
        );
        if !still.is_empty() {
            msg.push_str(&format!(
                " The configuration still has errors: {}.",
                still.join("; ")
            ));
        }
        if !problems.is_empty() {
            msg.push_str(&format!(" Rollback problems: {}.", problems.join("; ")));
        }
        msg.push_str(&format!(" Server log:\n{}", lines.join("\n")));
        result.insert("action".into(), json!("rolled_back"));
        result.insert("errors".into(), json!(errors));
        result.insert("restored".into(), json!(restored));
        result.insert("healthy".into(), json!(healthy));
        result.insert("log_lines".into(), json!(lines));
        ModuleError::failed_with(msg, result)
    }
}

struct Outcome {
    ls0: Option<u64>,
    action_rc: i32,
    action_out: String,
    healthy: bool,
    check: Option<crate::postgres::service::CheckState>,
    check_text: String,
    log: Vec<String>,
}

#[async_trait]
impl Module for PgService {
    fn name(&self) -> &'static str {
        "pg_service"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        if crate::modules::services::win_plan::is_windows(ctx) {
            return super::pg_win::service_plan(ctx, args);
        }
        let facts = ctx.vars.get("pg_facts").cloned().filter(Value::is_object);
        let svc_value = args
            .get("service")
            .cloned()
            .or_else(|| facts.as_ref().and_then(|f| f.get("service").cloned()))
            .ok_or("pg_service needs `service` (pg_facts.service): run pg_facts first")?;
        let svc = Service::from_value(&svc_value)?;
        let t = target::resolve(args, ctx.vars, facts.as_ref())?;
        let timeout = args.int("timeout").unwrap_or(30).clamp(1, 3600) as u64;
        let state = args.req("state")?;
        let method = svc.method.as_str();
        let allow_restart = args.bool("allow_restart", svc.manager == Manager::None);
        Ok(Plan::action(Control {
            state: state.clone(),
            svc,
            t,
            facts,
            timeout,
            rollback: args.bool("rollback", true),
            allow_restart,
        })
        .with("state", state)
        .with("method", method))
    }
}

impl Control {
    /// A server a cluster manager runs: a restart only through Patroni and only when allowed;
    /// otherwise fail with the reason, nothing restarted. Returns the members restarted (in
    /// order) and the members as Patroni last listed them.
    async fn under_manager(
        &self,
        ctx: &ActionCtx<'_>,
        state: &str,
        pending: &[String],
        result: &mut Map<String, Value>,
    ) -> Result<(Vec<String>, Vec<Member>), ModuleError> {
        let user = Some(self.t.os_user.as_str());
        let ctl = manager_restart::ctl(&self.svc);
        let mut members = Vec::new();
        if let (Manager::Patroni, Some(c)) = (self.svc.manager, &ctl) {
            members = manager_restart::members(ctx.conn, user, c)
                .await
                .map_err(ModuleError::failed)?;
        }
        let me = self.svc.patroni_name.as_deref();
        let flagged = members
            .iter()
            .any(|m| Some(m.name.as_str()) == me && m.pending_restart);
        // `reloaded` asks for a reload only: a pending restart is reported, as without a manager.
        if state == "reloaded" || (state != "restarted" && pending.is_empty() && !flagged) {
            return Ok((Vec::new(), members));
        }
        let c = match (self.svc.manager, &ctl) {
            (Manager::Patroni, Some(c)) if self.allow_restart => c,
            _ => {
                result.insert("action".into(), json!("failed"));
                result.insert("pending_restart".into(), json!(pending));
                return Err(ModuleError::failed_with(
                    manager_restart::refusal(&self.svc, pending, &members),
                    result.clone(),
                ));
            }
        };
        if state == "restarted" {
            let name = me.unwrap_or_default();
            let req = ExecRequest {
                shell: Some(c.restart(name)?),
                become_user: user.map(str::to_string),
                ..ExecRequest::default()
            };
            let out = ctx.conn.exec(&req).await?;
            if out.rc != 0 {
                return Err(ModuleError::failed_with(
                    format!(
                        "patronictl restart {name} failed (exit {}): {}",
                        out.rc,
                        text(&out.stdout)
                    ),
                    result.clone(),
                ));
            }
            let after = manager_restart::members(ctx.conn, user, c)
                .await
                .map_err(ModuleError::failed)?;
            return Ok((vec![name.to_string()], after));
        }
        let r = manager_restart::rolling_restart(ctx.conn, user, c, self.timeout)
            .await
            .map_err(|e| ModuleError::failed_with(e, result.clone()))?;
        let left: Vec<String> = r
            .after
            .iter()
            .filter(|m| m.pending_restart)
            .map(|m| m.name.clone())
            .collect();
        if !left.is_empty() {
            result.insert("restarted_members".into(), json!(r.restarted));
            return Err(ModuleError::failed_with(
                format!(
                    "after restarting {} through Patroni, {} still pending restart",
                    r.restarted.join(", "),
                    left.join(", ")
                ),
                result.clone(),
            ));
        }
        Ok((r.restarted, r.after))
    }
}

#[async_trait]
impl Action for Control {
    fn describe(&self) -> String {
        let how = self.svc.method.as_str();
        match self.state.as_str() {
            "restarted" => format!("restart the PostgreSQL server ({how})"),
            "applied" => format!(
                "reload the PostgreSQL server ({how}), restart it if a setting then needs it"
            ),
            _ => format!("reload the PostgreSQL server ({how})"),
        }
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let state = self.state.as_str();
        let timeout = self.timeout;
        let mut result = Map::new();
        let run = Run {
            ctx,
            svc: &self.svc,
            t: &self.t,
            facts: self.facts.as_ref(),
            timeout,
            rollback: self.rollback,
        };
        let started = Instant::now();
        let mut action = "none";
        let mut pending: Vec<String> = Vec::new();
        let mut log_from: Option<u64> = None;
        let mut lines: Vec<String> = Vec::new();
        let mut reload_ms = None;
        if state != "restarted" {
            let o = run.act(Step::Reload, None).await?;
            reload_ms = Some(started.elapsed().as_millis() as u64);
            log_from = o.ls0;
            action = "reloaded";
            let mut errors = Vec::new();
            if o.action_rc != 0 {
                errors.push(format!(
                    "the reload command failed (exit {}): {}",
                    o.action_rc, o.action_out
                ));
            }
            match &o.check {
                Some(c) => {
                    errors.extend(c.hba_errors.iter().cloned());
                    errors.extend(c.settings_errors.iter().cloned());
                    pending = c.pending_restart.clone();
                }
                None => errors.push(format!(
                    "the server does not answer after the reload: {}",
                    o.check_text
                )),
            }
            errors.extend(reload_rejections(&o.log));
            if !o.healthy {
                errors.push(format!(
                    "the server did not accept connections within {timeout}s after the reload"
                ));
            }
            lines = o.log.clone();
            if !errors.is_empty() {
                result.insert("pending_restart".into(), json!(pending));
                return Err(run.rollback(errors, &o, result).await);
            }
        }
        let restart_for = pending.clone();
        if self.svc.manager != Manager::None {
            let (restarted, members) = self
                .under_manager(ctx, state, &pending, &mut result)
                .await?;
            if !restarted.is_empty() {
                action = "restarted";
                pending.clear();
            }
            result.insert("restarted_members".into(), json!(restarted));
            result.insert(
                "members".into(),
                json!(members
                    .iter()
                    .map(|m| json!({"name": m.name, "role": m.role, "state": m.state,
                        "pending_restart": m.pending_restart}))
                    .collect::<Vec<_>>()),
            );
        } else if state == "restarted" || (state == "applied" && !pending.is_empty()) {
            let o = run.act(Step::Restart, log_from).await?;
            action = "restarted";
            let mut errors = Vec::new();
            if o.action_rc != 0 {
                errors.push(format!(
                    "the restart failed (exit {}): {}",
                    o.action_rc, o.action_out
                ));
            }
            if !o.healthy {
                errors.push(format!(
                    "the server did not come back within {timeout}s after the restart"
                ));
            }
            if let Some(c) = &o.check {
                pending = c.pending_restart.clone();
                result.insert(
                    "postmaster_start_time".into(),
                    json!(c.postmaster_start_time),
                );
            }
            lines = o.log.clone();
            if !errors.is_empty() {
                result.insert("pending_restart".into(), json!(restart_for));
                let first = Outcome {
                    ls0: log_from.or(o.ls0),
                    ..o
                };
                return Err(run.rollback(errors, &first, result).await);
            }
        }
        result.insert("action".into(), json!(action));
        result.insert("pending_restart".into(), json!(pending));
        result.insert("restarted_for".into(), json!(restart_for));
        result.insert("errors".into(), json!([]));
        result.insert("log_lines".into(), json!(Run::tail(&lines)));
        if let Some(ms) = reload_ms {
            result.insert("reload_ms".into(), json!(ms));
        }
        result.insert(
            "duration_ms".into(),
            json!(started.elapsed().as_millis() as u64),
        );
        Ok(ActionOutput {
            changed: action != "none",
            result,
            ..ActionOutput::default()
        })
    }
}
