//! `patroni_config`: PostgreSQL parameters and `pg_hba` rules in Patroni's dynamic
//! configuration (the one every member of the cluster shares), never in the `postgresql.conf`
//! or `pg_hba.conf` Patroni writes. The plan reads the configuration with `patronictl
//! show-config` on the host (with the member's own configuration file, whose
//! `postgresql.parameters`/`postgresql.pg_hba` would override the dynamic ones, and its current
//! `pg_hba.conf`, the starting point when the dynamic configuration has no `pg_hba` list) and
//! merges; the change is one deferred action, `patronictl edit-config --apply -` with the patch
//! on stdin, then read back. Patroni applies it on every member at its next loop; the reload
//! and any restart are `pg_service`'s (`state: applied`).
//!
//! | argument | |
//! |---|---|
//! | `parameters` | mapping of PostgreSQL parameters to set |
//! | `rules`, `position`, `block_plain`, `server_version` | as `pg_hba` (`block_plain` drops plain `host` rules but replication ones) |
//! | `patronictl`, `config`, `scope` | default: pg_facts' `patroni.patronictl`, `patroni.config`, `patroni.scope` |
//! | `os_user` | who runs patronictl (default: pg_facts' `os_user`, else `postgres`) |
//!
//! Result keys: `msg`, `parameters` (names changed), `restart_parameters` (those PostgreSQL reads
//! only at start), `hba_added`, `hba_blocked`, `hba_seeded_from_file`.
use async_trait::async_trait;
use serde_json::{json, Value};

use super::pg_hba::hba_edit;
use crate::connection::ExecRequest;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, Diff, Kind, Module, ModuleCtx, ModuleError, Plan,
    Step,
};
use crate::postgres::hba::{HbaEdit, Position, Want};
use crate::postgres::manager::merge;
use crate::postgres::patroni::{merge_config, ConfigChange, Ctl};
use crate::postgres::target::{sections, sh};

pub struct PatroniConfig;

const ARGS: &[Arg] = &[
    Arg::new("parameters", Kind::Dict),
    Arg::new("rules", Kind::List),
    Arg::new("position", Kind::Raw),
    Arg::new("block_plain", Kind::Bool),
    Arg::new("server_version", Kind::Int),
    Arg::new("patronictl", Kind::Str),
    Arg::new("config", Kind::Str),
    Arg::new("scope", Kind::Str),
    Arg::new("os_user", Kind::Str),
];

/// The parameters as (name, value) text.
fn parameters(args: &Args) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    if let Some(Value::Object(m)) = args.get("parameters") {
        for (k, v) in m {
            if !crate::postgres::conf::is_valid_name(k) {
                return Err(format!("parameters: `{k}` is not a parameter name"));
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
                other => return Err(format!("parameters: `{k}` must be a scalar, got {other}")),
            };
            out.push((k.clone(), text));
        }
    }
    Ok(out)
}

fn edit(args: &Args) -> Result<HbaEdit, String> {
    if args.has("rules") || args.bool("block_plain", false) {
        hba_edit(args)
    } else {
        Ok(HbaEdit {
            rules: Vec::new(),
            state: Want::Present,
            position: Position::BeforeFirstHost,
            block_plain: false,
            server_version: args.int("server_version"),
        })
    }
}

/// The plan's one read: `@@show` (show-config's output), `@@rc`, `@@local:N` (the member's
/// configuration files without password lines), `@@hba` (its current pg_hba.conf).
fn read_script(ctl: &Ctl, hba_file: Option<&str>) -> Result<String, String> {
    let cfg = sh(&ctl.config)?;
    let mut s = format!(
        "echo @@show; {} 2>&1; echo @@rc; echo $?\n\
         nopw() {{ sed '/[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]/d' \"$1\" 2>/dev/null; }}\n\
         if [ -d {cfg} ]; then i=0; for y in {cfg}/*.yml {cfg}/*.yaml; do [ -f \"$y\" ] || continue; \
         i=$((i+1)); echo \"@@local:$i\"; nopw \"$y\"; done; else echo @@local:1; nopw {cfg}; fi\n",
        ctl.show_config()?
    );
    if let Some(h) = hba_file {
        s.push_str(&format!("echo @@hba; cat {} 2>/dev/null\n", sh(h)?));
    }
    Ok(s)
}

fn fact<'a>(vars: &'a tera::Context, path: &[&str]) -> Option<&'a str> {
    let mut cur = vars.get(path[0])?;
    for p in &path[1..] {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Runs the patch through `patronictl edit-config --apply -` and reads the result back.
struct EditConfig {
    ctl: Ctl,
    user: String,
    patch: String,
    /// What the plan merged, to check the configuration afterwards.
    params: Vec<(String, String)>,
    edit: HbaEdit,
    hba_after: Vec<String>,
}

#[async_trait]
impl Action for EditConfig {
    fn describe(&self) -> String {
        format!(
            "patronictl edit-config {} (Patroni's dynamic configuration, every member)",
            self.ctl.scope
        )
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let req = ExecRequest {
            shell: Some(self.ctl.edit_config_stdin()?),
            stdin: Some(self.patch.clone().into_bytes()),
            become_user: Some(self.user.clone()),
            ..ExecRequest::default()
        };
        let out = ctx.conn.exec(&req).await?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.rc != 0 {
            return Err(ModuleError::failed(format!(
                "patronictl edit-config failed (exit {}): {}",
                out.rc,
                said.trim()
            )));
        }
        // Read it back: the wanted values must now be there.
        let req = ExecRequest {
            shell: Some(self.ctl.show_config()?),
            become_user: Some(self.user.clone()),
            ..ExecRequest::default()
        };
        let back = ctx.conn.exec(&req).await?;
        let now: Value = serde_yaml::from_slice(&back.stdout).unwrap_or(Value::Null);
        let again = merge_config(&now, &json!({}), "", &self.params, &self.edit, "")
            .map_err(ModuleError::failed)?;
        if !again.parameters.is_empty() || again.hba_before != self.hba_after {
            return Err(ModuleError::failed(format!(
                "Patroni's configuration does not hold the change after edit-config: {}",
                String::from_utf8_lossy(&back.stdout).trim()
            )));
        }
        Ok(ActionOutput {
            changed: true,
            ..ActionOutput::default()
        })
    }
}

fn summary(c: &ConfigChange) -> String {
    let mut parts = Vec::new();
    if !c.parameters.is_empty() {
        let names: Vec<&str> = c.parameters.iter().map(|(n, _, _)| n.as_str()).collect();
        parts.push(format!("parameters {}", names.join(", ")));
    }
    if c.hba_before != c.hba_after {
        parts.push(format!(
            "pg_hba: {} added, {} plain rule(s) dropped",
            c.hba_report.added.len() + c.hba_report.moved.len() + c.hba_report.updated.len(),
            c.hba_report.blocked.len()
        ));
    }
    if !c.restart.is_empty() {
        parts.push(format!(
            "a restart is needed for {} (PostgreSQL reads it only at start)",
            c.restart.join(", ")
        ));
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join("; ")
    }
}

#[async_trait]
impl Module for PatroniConfig {
    fn name(&self) -> &'static str {
        "patroni_config"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        let templated = args
            .map
            .values()
            .any(|v| crate::template::is_template(&v.to_string()));
        if templated {
            return Ok(());
        }
        let e = edit(args)?;
        for r in &e.rules {
            crate::postgres::hba::normalize(r, e.server_version)?;
        }
        let p = parameters(args)?;
        if p.is_empty() && e.rules.is_empty() && !e.block_plain {
            return Err("give `parameters`, `rules` or `block_plain: yes`".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        self.validate(args)?;
        let v = ctx.vars;
        let from = |arg: &str, path: &[&str]| -> Option<String> {
            args.string(arg)
                .or_else(|| fact(v, path).map(str::to_string))
        };
        let missing = |what: &str| {
            ModuleError::InvalidArgs(format!(
                "patroni_config needs `{what}` (or pg_facts of a Patroni member: run pg_facts first)"
            ))
        };
        let ctl = Ctl {
            patronictl: from("patronictl", &["pg_facts", "patroni", "patronictl"])
                .unwrap_or_else(|| "patronictl".into()),
            config: from("config", &["pg_facts", "patroni", "config"])
                .ok_or_else(|| missing("config"))?,
            scope: from("scope", &["pg_facts", "patroni", "scope"])
                .ok_or_else(|| missing("scope"))?,
        };
        let user = from("os_user", &["pg_facts", "os_user"]).unwrap_or_else(|| "postgres".into());
        let hba_file = fact(v, &["pg_facts", "hba_file"]);
        let req = ExecRequest {
            shell: Some(read_script(&ctl, hba_file)?),
            become_user: Some(user.clone()),
            ..ExecRequest::default()
        };
        let out = ctx.host.query(&req).await?;
        let sec = sections(&String::from_utf8_lossy(&out.stdout));
        let show = sec.get("show").cloned().unwrap_or_default();
        if sec.get("rc").map(|s| s.trim()) != Some("0") {
            return Err(ModuleError::failed(format!(
                "patronictl show-config {} failed: {}",
                ctl.scope,
                show.trim()
            )));
        }
        let dynamic: Value = serde_yaml::from_str(&show).map_err(|e| {
            ModuleError::failed(format!("cannot read patronictl show-config's YAML: {e}"))
        })?;
        let mut local = Value::Null;
        let mut locals: Vec<(&String, &String)> = sec
            .iter()
            .filter(|(k, _)| k.starts_with("local:"))
            .collect();
        locals.sort();
        for (_, text) in locals {
            if let Ok(doc) = serde_yaml::from_str::<Value>(text) {
                if local.is_null() {
                    local = doc;
                } else {
                    merge(&mut local, doc);
                }
            }
        }
        let params = parameters(args)?;
        let e = edit(args)?;
        let hba_text = sec.get("hba").cloned().unwrap_or_default();
        let change = merge_config(&dynamic, &local, &hba_text, &params, &e, &ctl.config)
            .map_err(ModuleError::failed)?;
        let msg = summary(&change);
        let names: Vec<&str> = change
            .parameters
            .iter()
            .map(|(n, _, _)| n.as_str())
            .collect();
        let result_keys = |p: Plan| {
            p.with("msg", msg.clone())
                .with("parameters", json!(names))
                .with("restart_parameters", json!(change.restart))
                .with("hba_added", json!(change.hba_report.added))
                .with("hba_blocked", json!(change.hba_report.blocked))
                .with("hba_seeded_from_file", json!(change.hba_seeded_from_file))
                .with("scope", json!(ctl.scope))
        };
        if !change.changed() {
            return Ok(result_keys(Plan::ok()));
        }
        // JSON is YAML that every YAML reader takes the same way: `on` stays a string for
        // Patroni's PyYAML (YAML 1.1 would read a bare `on` as a boolean).
        let patch = serde_json::to_string_pretty(&change.patch)
            .map_err(|e| ModuleError::failed(format!("cannot write the patch: {e}")))?;
        let diff = Diff {
            path: format!("patroni dynamic configuration ({})", ctl.scope),
            before: change.view(false),
            after: change.view(true),
            secret: false,
        };
        let action = EditConfig {
            ctl: ctl.clone(),
            user,
            patch,
            params,
            edit: e,
            hba_after: change.hba_after.clone(),
        };
        Ok(result_keys(Plan::steps(
            vec![Step::Action(Box::new(action))],
            Some(diff),
        )))
    }
}
