//! Windows services (`service` on a host with `ansible_shell_type: powershell|cmd`), Ansible's
//! `win_service` semantics: the read-only query script and its answer, and the script that
//! changes the service: `Set-Service -StartupType`, `Start-Service`, `Stop-Service -Force`,
//! `Restart-Service -Force`, each followed by a wait until the service reaches the state
//! (`Running`, `Stopped`) within a timeout, so a service that does not come up fails the task
//! there, with its state. `reloaded` does not exist for Windows
//! services (the Service Control Manager has no reload): it is refused with that reason.
//! `enabled: false` sets the start type to `Manual` (the service can still be started, as a
//! disabled systemd unit can), `true` to `Automatic`.
//! PowerShell text, every value through [`quote`]; tested on strings.
use crate::connection::pwsh_quote::quote;

/// First word of the query's answer.
pub const TAG: &str = "castellan-winsvc";
/// How long to wait for a service to reach its state, by default.
pub const DEFAULT_TIMEOUT_S: u64 = 120;

fn q(s: &str) -> Result<String, String> {
    quote(s).map_err(|e| e.to_string())
}

/// Prints `castellan-winsvc missing` or `castellan-winsvc STATUS STARTTYPE` (`Running`,
/// `Stopped`...; `Automatic`, `Manual`, `Disabled`).
pub fn query_script(name: &str) -> Result<String, String> {
    Ok(format!(
        "$s = Get-Service -Name {} -ErrorAction SilentlyContinue\n\
         if ($null -eq $s) {{ '{TAG} missing' }} else {{ '{TAG} {{0}} {{1}}' -f $s.Status, $s.StartType }}\n",
        q(name)?
    ))
}

/// What the query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WinSvc {
    Missing,
    Present { running: bool, start: String },
}

impl WinSvc {
    /// Started at boot.
    pub fn enabled(&self) -> bool {
        matches!(self, WinSvc::Present { start, .. } if start.starts_with("Automatic"))
    }
}

/// Parse the query's answer (None: not an answer of the query).
pub fn parse(out: &str) -> Option<WinSvc> {
    let l = out.lines().find(|l| l.starts_with(TAG))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    match w.as_slice() {
        [_, "missing"] => Some(WinSvc::Missing),
        [_, status, start] => Some(WinSvc::Present {
            running: *status == "Running",
            start: start.to_string(),
        }),
        _ => None,
    }
}

/// One change of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Enable(bool),
    Start,
    Stop,
    Restart,
}

/// The script that makes `change` and waits up to `timeout_s` for its state.
pub fn change_script(name: &str, change: Change, timeout_s: u64) -> Result<String, String> {
    let n = q(name)?;
    let wait = |state: &str| {
        format!(
            "$s = Get-Service -Name $n\n\
             try {{ $s.WaitForStatus('{state}', [TimeSpan]::FromSeconds({timeout_s})) }}\n\
             catch {{ throw \"service $n did not reach {state} within {timeout_s} s (it is $((Get-Service -Name $n).Status))\" }}\n"
        )
    };
    let body = match change {
        Change::Enable(true) => "Set-Service -Name $n -StartupType Automatic\n".to_string(),
        Change::Enable(false) => "Set-Service -Name $n -StartupType Manual\n".to_string(),
        Change::Start => format!("Start-Service -Name $n\n{}", wait("Running")),
        Change::Stop => format!("Stop-Service -Name $n -Force\n{}", wait("Stopped")),
        Change::Restart => format!("Restart-Service -Name $n -Force\n{}", wait("Running")),
    };
    Ok(format!("$ErrorActionPreference = 'Stop'\n$n = {n}\n{body}"))
}

/// The changes that bring the service to `state` (`started`, `stopped`, `restarted`) and
/// `enabled`; an error for `reloaded` and for a missing service.
pub fn changes(
    name: &str,
    svc: &WinSvc,
    state: Option<&str>,
    enabled: Option<bool>,
) -> Result<Vec<Change>, String> {
    let WinSvc::Present { running, .. } = svc else {
        return Err(format!(
            "Service '{name}' is not installed on this Windows host (Get-Service found none): possible typo in the service name?"
        ));
    };
    let mut out = Vec::new();
    if let Some(e) = enabled {
        if e != svc.enabled() {
            out.push(Change::Enable(e));
        }
    }
    match state {
        Some("started") if !running => out.push(Change::Start),
        Some("stopped") if *running => out.push(Change::Stop),
        Some("restarted") => out.push(Change::Restart),
        Some("reloaded") => {
            return Err(format!(
                "state reloaded: Windows services have no reload (service {name}); use restarted"
            ))
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pwsh_quote::tests::{hazardous, read_verbatim};
    use proptest::prelude::*;

    #[test]
    fn query_and_parse() {
        let s = query_script("CASTStorageService4").unwrap();
        assert_eq!(
            s,
            "$s = Get-Service -Name 'CASTStorageService4' -ErrorAction SilentlyContinue\n\
             if ($null -eq $s) { 'castellan-winsvc missing' } else { 'castellan-winsvc {0} {1}' -f $s.Status, $s.StartType }\n"
        );
        assert_eq!(parse("castellan-winsvc missing\r\n"), Some(WinSvc::Missing));
        let p = parse("castellan-winsvc Running Automatic\r\n").unwrap();
        assert!(p.enabled());
        assert_eq!(
            p,
            WinSvc::Present {
                running: true,
                start: "Automatic".into()
            }
        );
        assert_eq!(parse("noise"), None);
    }

    #[test]
    fn restart_waits_for_running_and_names_the_state() {
        let s = change_script("CASTStorageService4", Change::Restart, 90).unwrap();
        assert_eq!(
            s,
            "$ErrorActionPreference = 'Stop'\n$n = 'CASTStorageService4'\nRestart-Service -Name $n -Force\n\
             $s = Get-Service -Name $n\n\
             try { $s.WaitForStatus('Running', [TimeSpan]::FromSeconds(90)) }\n\
             catch { throw \"service $n did not reach Running within 90 s (it is $((Get-Service -Name $n).Status))\" }\n"
        );
        assert!(change_script("a", Change::Stop, 5)
            .unwrap()
            .contains("Stop-Service -Name $n -Force\n"));
        assert!(change_script("a", Change::Stop, 5)
            .unwrap()
            .contains("WaitForStatus('Stopped'"));
        assert!(change_script("a", Change::Enable(false), 5)
            .unwrap()
            .contains("-StartupType Manual"));
    }

    #[test]
    fn changes_follow_win_service() {
        let up = WinSvc::Present {
            running: true,
            start: "Automatic".into(),
        };
        let down = WinSvc::Present {
            running: false,
            start: "Manual".into(),
        };
        assert!(changes("a", &up, Some("started"), Some(true))
            .unwrap()
            .is_empty());
        assert_eq!(
            changes("a", &down, Some("started"), Some(true)).unwrap(),
            [Change::Enable(true), Change::Start]
        );
        assert_eq!(
            changes("a", &up, Some("stopped"), None).unwrap(),
            [Change::Stop]
        );
        assert_eq!(
            changes("a", &up, Some("restarted"), None).unwrap(),
            [Change::Restart]
        );
        assert!(changes("a", &up, Some("reloaded"), None)
            .unwrap_err()
            .contains("no reload"));
        assert!(changes("a", &WinSvc::Missing, Some("started"), None)
            .unwrap_err()
            .contains("not installed"));
    }

    proptest! {
        #[test]
        fn service_names_stay_literal(name in hazardous()) {
            let s = query_script(&name).unwrap();
            let at = s.find("-Name ").unwrap() + 6;
            prop_assert_eq!(read_verbatim(&s[at..]).unwrap().0, name.clone());
            let c = change_script(&name, Change::Restart, 1).unwrap();
            let at = c.find("$n = ").unwrap() + 5;
            prop_assert_eq!(read_verbatim(&c[at..]).unwrap().0, name);
        }
    }
}
