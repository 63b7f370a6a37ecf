//! SysV's plan, for `service` on a host without systemd: where the init script is, its
//! `status` (LSB exit codes: 0 running, 1-3 not running; anything else fails the task when the
//! state depends on it), the boot links, in one query; then `service NAME start|stop|restart|
//! reload [arguments]` (the script itself when there is no `service`) and `update-rc.d` or
//! `chkconfig` for `enabled`. `restarted` with `sleep` is a stop, a pause and a start.
use serde_json::{json, Map};

use super::run::{Cmd, ServiceRun};
use super::SvcState;
use crate::connection::ExecRequest;
use crate::modules::{ModuleCtx, ModuleError, Plan};
use crate::os::sysv::{self, Running, Sysv};

/// What a SysV service task asks for.
#[derive(Debug, Clone, Default)]
pub struct SysvReq {
    pub name: String,
    pub state: Option<SvcState>,
    pub enabled: Option<bool>,
    /// Seconds between stop and start for `restarted`.
    pub sleep: Option<u64>,
    pub arguments: Vec<String>,
}

fn commands(req: &SysvReq, sv: &Sysv) -> Result<Vec<Cmd>, ModuleError> {
    let name = req.name.as_str();
    let mut cmds = Vec::new();
    if let Some(e) = req.enabled {
        if e != sv.enabled() {
            let what = if e { "enable" } else { "disable" };
            for argv in sysv::enable_argvs(sv, name, e)? {
                cmds.push(Cmd::run(argv, format!("Unable to {what} service {name}")));
            }
        }
    }
    let Some(state) = req.state else {
        return Ok(cmds);
    };
    let running = match (state, sv.running()) {
        (SvcState::Restarted, _) => false,
        (_, Running::Yes) => true,
        (_, Running::No) => false,
        (_, Running::Unknown(rc)) => {
            return Err(ModuleError::failed(format!(
                "cannot tell whether service {name} runs: its status action exited {rc}: {}",
                sv.status_out.trim()
            )))
        }
    };
    let act = |verb: &str| {
        Cmd::run(
            sysv::action_argv(sv, name, verb, &req.arguments),
            format!("Unable to {verb} service {name}"),
        )
    };
    match state {
        SvcState::Started if !running => cmds.push(act("start")),
        SvcState::Stopped if running => cmds.push(act("stop")),
        SvcState::Reloaded if !running => cmds.push(act("start")),
        SvcState::Reloaded => cmds.push(act("reload")),
        SvcState::Restarted => match req.sleep {
            Some(s) if s > 0 => {
                cmds.push(act("stop"));
                cmds.push(Cmd::Sleep(s));
                cmds.push(act("start"));
            }
            _ => cmds.push(act("restart")),
        },
        _ => {}
    }
    Ok(cmds)
}

/// Plan SysV init for this request.
pub async fn plan(ctx: &ModuleCtx<'_>, req: &SysvReq) -> Result<Plan, ModuleError> {
    let q = ExecRequest {
        shell: Some(sysv::query_script(&req.name)?),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    let out = ctx.host.query(&q).await?;
    let sv = sysv::parse(&String::from_utf8_lossy(&out.stdout));
    if sv.script.is_none() {
        return Err(ModuleError::failed(format!(
            "cannot find an init script for service {} (/etc/init.d/{0}) on {}: possible typo in \
             the service name?",
            req.name, ctx.inventory_hostname
        )));
    }
    let cmds = commands(req, &sv)?;
    let mut result = Map::new();
    result.insert("name".into(), json!(req.name));
    if let Some(e) = req.enabled {
        result.insert("enabled".into(), json!(e));
    }
    if let Some(s) = req.state {
        result.insert("state".into(), json!(s.word()));
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

    fn sv(rc: i32, links: &[&str]) -> Sysv {
        Sysv {
            script: Some("/etc/init.d/a".into()),
            service: true,
            enabler: Some(sysv::Enabler::UpdateRcD),
            links: links.iter().map(|s| s.to_string()).collect(),
            status_rc: Some(rc),
            ..Sysv::default()
        }
    }

    fn shown(cmds: &[Cmd]) -> Vec<String> {
        cmds.iter()
            .map(|c| match c {
                Cmd::Run { argv, .. } => argv.join(" "),
                Cmd::Sleep(s) => format!("sleep {s}"),
                Cmd::Script { label, .. } => label.clone(),
            })
            .collect()
    }

    #[test]
    fn lsb_status_decides() {
        let req = |state, enabled| SysvReq {
            name: "a".into(),
            state: Some(state),
            enabled,
            ..SysvReq::default()
        };
        use SvcState::*;
        assert!(commands(&req(Started, None), &sv(0, &[]))
            .unwrap()
            .is_empty());
        assert_eq!(
            shown(&commands(&req(Started, Some(true)), &sv(3, &[])).unwrap()),
            [
                "update-rc.d a defaults",
                "update-rc.d a enable",
                "service a start"
            ]
        );
        assert_eq!(
            shown(&commands(&req(Stopped, Some(false)), &sv(0, &["/etc/rc2.d/S01a"])).unwrap()),
            ["update-rc.d a disable", "service a stop"]
        );
        assert!(commands(&req(Stopped, None), &sv(1, &[]))
            .unwrap()
            .is_empty());
        let e = commands(&req(Started, None), &sv(4, &[])).unwrap_err();
        assert!(e.to_string().contains("exited 4"), "{e}");
        // A restart needs no status.
        let restart = SysvReq {
            sleep: Some(2),
            arguments: vec!["-v".into()],
            ..req(Restarted, None)
        };
        assert_eq!(
            shown(&commands(&restart, &sv(4, &[])).unwrap()),
            ["service a stop -v", "sleep 2", "service a start -v"]
        );
    }
}
