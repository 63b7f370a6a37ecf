//! `service` on a Windows host (`ansible_shell_type: powershell|cmd`): Ansible's `win_service`
//! semantics ([`crate::os::win_service`]): the service's status and start type in one query,
//! then `Set-Service`, `Start-Service`/`Stop-Service`/`Restart-Service` each waiting until the
//! service is `Running` (or `Stopped`), deferred to [`ServiceRun`] like the Linux paths.
use serde_json::{json, Map};

use super::run::{Cmd, ServiceRun};
use super::SvcState;
use crate::connection::ExecRequest;
use crate::modules::{ModuleCtx, ModuleError, Plan};
use crate::os::win_service::{self, Change};

/// Does this host take PowerShell (`ansible_shell_type: powershell|cmd`)?
pub fn is_windows(ctx: &ModuleCtx<'_>) -> bool {
    matches!(
        ctx.vars.get("ansible_shell_type").and_then(|v| v.as_str()),
        Some("powershell" | "cmd")
    )
}

/// The deferred steps of the changes.
pub fn cmds(name: &str, changes: &[Change], timeout_s: u64) -> Result<Vec<Cmd>, ModuleError> {
    changes
        .iter()
        .map(|c| {
            let (label, verb) = match c {
                Change::Enable(true) => (
                    format!("Set-Service {name} -StartupType Automatic"),
                    "enable",
                ),
                Change::Enable(false) => {
                    (format!("Set-Service {name} -StartupType Manual"), "disable")
                }
                Change::Start => (format!("Start-Service {name}"), "start"),
                Change::Stop => (format!("Stop-Service {name}"), "stop"),
                Change::Restart => (format!("Restart-Service {name}"), "restart"),
            };
            Ok(Cmd::Script {
                shell: win_service::change_script(name, *c, timeout_s)
                    .map_err(ModuleError::failed)?,
                label,
                fail: format!("Unable to {verb} service {name}"),
            })
        })
        .collect()
}

/// Plan a Windows service task.
pub async fn plan(
    ctx: &ModuleCtx<'_>,
    name: &str,
    state: Option<SvcState>,
    enabled: Option<bool>,
) -> Result<Plan, ModuleError> {
    let q = ExecRequest {
        shell: Some(win_service::query_script(name).map_err(ModuleError::failed)?),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    let out = ctx.host.query(&q).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let svc = win_service::parse(&text).ok_or_else(|| {
        ModuleError::failed(format!(
            "cannot read the state of service {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    let changes = win_service::changes(name, &svc, state.map(SvcState::word), enabled)
        .map_err(ModuleError::failed)?;
    let cmds = cmds(name, &changes, win_service::DEFAULT_TIMEOUT_S)?;
    let mut result = Map::new();
    result.insert("name".into(), json!(name));
    if let Some(e) = enabled {
        result.insert("enabled".into(), json!(e));
    }
    if let Some(s) = state {
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

    #[test]
    fn steps_are_scripts_with_win_service_messages() {
        let c = cmds(
            "CASTStorageService4",
            &[Change::Enable(true), Change::Restart],
            30,
        )
        .unwrap();
        let run = ServiceRun { cmds: c };
        assert!(run.changes());
        assert_eq!(
            crate::modules::Action::describe(&run),
            "Set-Service CASTStorageService4 -StartupType Automatic; Restart-Service CASTStorageService4"
        );
        match &run.cmds[1] {
            Cmd::Script { shell, fail, .. } => {
                assert!(shell.contains("Restart-Service -Name $n -Force"));
                assert!(shell.contains("WaitForStatus('Running', [TimeSpan]::FromSeconds(30))"));
                assert_eq!(fail, "Unable to restart service CASTStorageService4");
            }
            other => panic!("{other:?}"),
        }
    }
}
