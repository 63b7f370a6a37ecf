//! systemd's plan, shared by `systemd` and `service` on a systemd host: `systemctl show` and
//! `is-enabled` in one query, then Ansible's decisions: `started` starts a unit that is not
//! `active`/`activating`, `stopped` stops one that is (or is `deactivating`), `restarted` and
//! `reloaded` always act (`start` for a unit that is not running), `enabled`/`masked` change only
//! what differs; `daemon_reload`/`daemon_reexec` run first and are not changes.
use serde_json::{json, Map};

use super::run::{Cmd, ServiceRun};
use super::SvcState;
use crate::connection::ExecRequest;
use crate::modules::{ModuleCtx, ModuleError, Plan};
use crate::os::systemctl::{self, Unit};

/// What a systemd task asks for.
#[derive(Debug, Clone, Default)]
pub struct SystemdReq {
    pub name: Option<String>,
    pub state: Option<SvcState>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub no_block: bool,
    pub force: bool,
}

/// The commands for `unit` in state `u`.
fn commands(req: &SystemdReq, name: &str, u: &Unit, host: &str) -> Result<Vec<Cmd>, ModuleError> {
    let mut cmds = Vec::new();
    let verb = |v: &str| systemctl::argv(v, name, req.no_block, req.force && v == "enable");
    if let Some(m) = req.masked {
        if m != u.masked() {
            let v = if m { "mask" } else { "unmask" };
            cmds.push(Cmd::run(verb(v), format!("Unable to {v} service {name}")));
        }
    }
    if req.enabled.is_none() && req.state.is_none() {
        return Ok(cmds);
    }
    // After a daemon-reload the unit may exist: decide from what is known now.
    if !u.found() && !req.daemon_reload && req.masked != Some(false) {
        return Err(ModuleError::failed(format!(
            "Could not find the requested service {name}: host {host}"
        )));
    }
    if let Some(e) = req.enabled {
        if e != u.enabled() {
            let v = if e { "enable" } else { "disable" };
            cmds.push(Cmd::run(verb(v), format!("Unable to {v} service {name}")));
        }
    }
    let action = match req.state {
        Some(SvcState::Started) if !u.running() => Some("start"),
        Some(SvcState::Stopped) if u.running() || u.deactivating() => Some("stop"),
        Some(SvcState::Restarted | SvcState::Reloaded) if !u.running() => Some("start"),
        Some(SvcState::Restarted) => Some("restart"),
        Some(SvcState::Reloaded) => Some("reload"),
        _ => None,
    };
    if let Some(a) = action {
        cmds.push(Cmd::run(verb(a), format!("Unable to {a} service {name}")));
    }
    Ok(cmds)
}

/// Plan systemd for this request.
pub async fn plan(ctx: &ModuleCtx<'_>, req: &SystemdReq) -> Result<Plan, ModuleError> {
    let mut cmds = Vec::new();
    if req.daemon_reexec {
        cmds.push(Cmd::quiet(
            systemctl::daemon_argv("daemon-reexec"),
            "failure during daemon-reexec",
        ));
    }
    if req.daemon_reload {
        cmds.push(Cmd::quiet(
            systemctl::daemon_argv("daemon-reload"),
            "failure during daemon-reload",
        ));
    }
    let mut result = Map::new();
    if let Some(name) = &req.name {
        let q = ExecRequest {
            shell: Some(systemctl::query_script(name)?),
            become_user: ctx.become_user.map(str::to_string),
            ..ExecRequest::default()
        };
        let out = ctx.host.query(&q).await?;
        let u = systemctl::parse(&String::from_utf8_lossy(&out.stdout));
        if let Some(e) = &u.error {
            return Err(ModuleError::failed(format!(
                "systemctl cannot read {name} on {}: {e}",
                ctx.inventory_hostname
            )));
        }
        cmds.extend(commands(req, name, &u, ctx.inventory_hostname)?);
        result.insert("name".into(), json!(name));
        result.insert("status".into(), u.status());
        if let Some(e) = req.enabled {
            result.insert("enabled".into(), json!(e));
        }
        if let Some(s) = req.state {
            result.insert("state".into(), json!(s.word()));
        }
    }
    Ok(if cmds.is_empty() {
        Plan::ok()
    } else {
        Plan::action(ServiceRun { cmds })
    }
    .with_result(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(active: &str, enabled: bool) -> Unit {
        systemctl::parse(&format!(
            "@@show\nId=a.service\nLoadState=loaded\nActiveState={active}\n@@show_rc\n0\n\
             @@enabled\n{}\n@@enabled_rc\n{}\n",
            if enabled { "enabled" } else { "disabled" },
            if enabled { 0 } else { 1 }
        ))
    }

    fn verbs(req: &SystemdReq, u: &Unit) -> Vec<String> {
        commands(req, "a", u, "h")
            .unwrap()
            .iter()
            .filter_map(|c| match c {
                Cmd::Run { argv, .. } => Some(argv[argv.len() - 2].clone()),
                Cmd::Sleep(_) | Cmd::Script { .. } => None,
            })
            .collect()
    }

    #[test]
    fn ansible_decisions() {
        let req = |state, enabled| SystemdReq {
            name: Some("a".into()),
            state: Some(state),
            enabled,
            ..SystemdReq::default()
        };
        use SvcState::*;
        assert!(verbs(&req(Started, None), &unit("active", false)).is_empty());
        assert!(verbs(&req(Started, None), &unit("activating", false)).is_empty());
        assert_eq!(
            verbs(&req(Started, Some(true)), &unit("inactive", false)),
            ["enable", "start"]
        );
        assert_eq!(
            verbs(&req(Stopped, None), &unit("deactivating", true)),
            ["stop"]
        );
        assert!(verbs(&req(Stopped, Some(true)), &unit("failed", true)).is_empty());
        assert_eq!(
            verbs(&req(Restarted, None), &unit("active", true)),
            ["restart"]
        );
        assert_eq!(
            verbs(&req(Reloaded, None), &unit("inactive", true)),
            ["start"]
        );
        assert_eq!(
            verbs(&req(Reloaded, Some(false)), &unit("active", true)),
            ["disable", "reload"]
        );
        let missing = systemctl::parse(
            "@@show\nId=a.service\nLoadState=not-found\nActiveState=inactive\n@@show_rc\n0\n",
        );
        let e = commands(&req(Started, None), "a", &missing, "db1").unwrap_err();
        assert!(e
            .to_string()
            .contains("Could not find the requested service a: host db1"));
        let reload_first = SystemdReq {
            daemon_reload: true,
            ..req(Started, None)
        };
        assert_eq!(verbs(&reload_first, &missing), ["start"]);
    }
}
