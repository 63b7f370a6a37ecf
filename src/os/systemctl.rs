//! systemd units through `systemctl`: the read-only script a plan runs (`systemctl show` of a
//! fixed set of properties, `systemctl is-enabled`), what its answer means (Ansible's reading: running is `active` or
//! `activating`), and the command lines that change things.
use serde_json::{Map, Value};

use super::sh;
use crate::text::sections;

/// The properties read (and registered as `status`). Not every property, as Ansible reads:
/// `Environment`, `ExecStart` and the like can hold a unit's secrets (a database URL with its
/// password), and a result is printed and written to JSON.
pub const PROPERTIES: &[&str] = &[
    "Id",
    "Names",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "UnitFilePreset",
    "FragmentPath",
    "MainPID",
    "ExecMainStatus",
    "Result",
    "NRestarts",
    "ActiveEnterTimestamp",
    "InactiveEnterTimestamp",
    "CanReload",
];

/// The script: one round trip, reads only.
pub fn query_script(unit: &str) -> Result<String, String> {
    super::check_word("unit name", unit)?;
    let u = sh(unit)?;
    let props = PROPERTIES.join(",");
    Ok(format!(
        "echo @@show\nsystemctl show --no-pager --property={props} {u} 2>&1\nrc=$?\necho @@show_rc\necho $rc\n\
         echo @@enabled\nsystemctl is-enabled {u} 2>&1\nrc=$?\necho @@enabled_rc\necho $rc\n"
    ))
}

/// A unit as `systemctl` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// `systemctl show` properties, in order.
    pub props: Vec<(String, String)>,
    /// `systemctl show` failed (no systemd running, no systemctl): its output.
    pub error: Option<String>,
    /// `systemctl is-enabled`: its word (`enabled`, `disabled`, `static`, `masked`...) and exit.
    pub enabled_word: String,
    pub enabled_rc: i32,
}

impl Unit {
    pub fn prop(&self, k: &str) -> &str {
        self.props
            .iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The unit exists (a unit file or a generator made it).
    pub fn found(&self) -> bool {
        self.error.is_none() && !matches!(self.prop("LoadState"), "" | "not-found")
    }

    /// Ansible's `is_running_service`.
    pub fn running(&self) -> bool {
        matches!(self.prop("ActiveState"), "active" | "activating")
    }

    /// Ansible's `is_deactivating_service`.
    pub fn deactivating(&self) -> bool {
        self.prop("ActiveState") == "deactivating"
    }

    pub fn masked(&self) -> bool {
        self.prop("LoadState") == "masked" || self.enabled_word.trim() == "masked"
    }

    /// `systemctl is-enabled` says yes (exit 0: enabled, static, alias, indirect, generated...).
    pub fn enabled(&self) -> bool {
        self.enabled_rc == 0
    }

    /// The properties as Ansible's `status` result ([`PROPERTIES`] only).
    pub fn status(&self) -> Value {
        let m: Map<String, Value> = self
            .props
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Value::Object(m)
    }
}

/// Read the script's output.
pub fn parse(out: &str) -> Unit {
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let show = sec.get("show").cloned().unwrap_or_default();
    let show_rc = get("show_rc").parse::<i32>().unwrap_or(-1);
    let props: Vec<(String, String)> = show
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Unit {
        error: (show_rc != 0 || props.is_empty()).then(|| show.trim().to_string()),
        props,
        enabled_word: get("enabled"),
        enabled_rc: get("enabled_rc").parse().unwrap_or(-1),
    }
}

/// `systemctl [--no-block] [--force] VERB UNIT`.
pub fn argv(verb: &str, unit: &str, no_block: bool, force: bool) -> Vec<String> {
    let mut v = vec!["systemctl".to_string()];
    if no_block {
        v.push("--no-block".into());
    }
    if force {
        v.push("--force".into());
    }
    v.push(verb.into());
    v.push(unit.into());
    v
}

/// `systemctl daemon-reload` / `daemon-reexec`.
pub fn daemon_argv(verb: &str) -> Vec<String> {
    vec!["systemctl".into(), verb.into()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_unit() {
        let u = parse(
            "@@show\nId=cs-web.service\nLoadState=loaded\nActiveState=activating\nSubState=start\n\
             @@show_rc\n0\n@@enabled\ndisabled\n@@enabled_rc\n1\n",
        );
        assert!(u.found() && u.running() && !u.enabled() && !u.masked());
        assert_eq!(u.status()["SubState"], "start");
        let gone = parse(
            "@@show\nId=x.service\nLoadState=not-found\nActiveState=inactive\n@@show_rc\n0\n\
             @@enabled\nFailed to get unit file state for x.service: No such file or directory\n\
             @@enabled_rc\n1\n",
        );
        assert!(!gone.found() && !gone.running());
        let down = parse(
            "@@show\nSystem has not been booted with systemd as init system (PID 1). Can't operate.\n\
             @@show_rc\n1\n@@enabled\n@@enabled_rc\n1\n",
        );
        assert!(down.error.as_deref().unwrap().contains("PID 1"));
        assert!(!down.found());
        assert!(query_script("-x").is_err());
        let q = query_script("cs-web").unwrap();
        assert!(q.contains("--property=Id,Names,"), "{q}");
        assert!(
            !q.contains("Environment") && !q.contains("ExecStart"),
            "{q}"
        );
        assert_eq!(
            argv("enable", "a.service", true, true),
            ["systemctl", "--no-block", "--force", "enable", "a.service"]
        );
    }
}
