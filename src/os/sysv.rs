//! SysV init scripts (`/etc/init.d/NAME`): the read-only script a plan runs (where the script
//! is, whether `service` exists, the script's `status` exit code, the boot links that say
//! whether it is enabled: `update-rc.d` on Debian, `chkconfig` on Red Hat), its parser, and the
//! command lines that change things.
use super::{check_word, sh};
use crate::text::sections;

/// The script: one round trip. It runs the init script's `status` action, which only reads.
pub fn query_script(name: &str) -> Result<String, String> {
    check_word("service name", name)?;
    if name.contains('/') {
        return Err(format!("service name `{name}` contains `/`"));
    }
    let n = sh(name)?;
    Ok(format!(
        "n={n}\n\
         s=\n\
         for d in /etc/init.d /etc/rc.d/init.d; do if [ -x \"$d/$n\" ]; then s=$d/$n; break; fi; done\n\
         echo @@script\necho \"$s\"\n\
         echo @@service\ncommand -v service 2>/dev/null\n\
         echo @@enabler\n\
         if command -v update-rc.d >/dev/null 2>&1; then echo update-rc.d;\n\
         elif command -v chkconfig >/dev/null 2>&1; then echo chkconfig; fi\n\
         echo @@links\n\
         for f in /etc/rc[0-6S].d/[SK][0-9][0-9]\"$n\"; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then echo \"$f\"; fi; done\n\
         echo @@chkconfig\n\
         if command -v chkconfig >/dev/null 2>&1; then chkconfig --list \"$n\" 2>/dev/null; fi\n\
         if [ -n \"$s\" ]; then\n\
         if command -v service >/dev/null 2>&1; then out=$(service \"$n\" status 2>&1); else out=$(\"$s\" status 2>&1); fi\n\
         rc=$?\n\
         echo @@status_rc\necho $rc\necho @@status_out\nprintf '%s\\n' \"$out\"\n\
         fi\n"
    ))
}

/// How boot-time start is switched on and off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabler {
    UpdateRcD,
    Chkconfig,
}

/// A SysV service as the host describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sysv {
    /// The init script's path, when there is one.
    pub script: Option<String>,
    /// `service` exists (it runs the script with a clean environment).
    pub service: bool,
    pub enabler: Option<Enabler>,
    /// Boot links `/etc/rcN.d/[SK]NNname`.
    pub links: Vec<String>,
    /// `chkconfig --list NAME` (empty when it is not registered).
    pub chkconfig: String,
    /// The `status` action: exit code and output.
    pub status_rc: Option<i32>,
    pub status_out: String,
}

/// Whether it runs, from the LSB exit codes of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    Yes,
    No,
    /// Exit 4 (or another code): the script cannot tell.
    Unknown(i32),
}

impl Sysv {
    /// LSB: 0 running; 1, 2, 3 not running (dead with a pid file, dead with a lock, stopped).
    pub fn running(&self) -> Running {
        match self.status_rc {
            Some(0) => Running::Yes,
            Some(1..=3) => Running::No,
            Some(rc) => Running::Unknown(rc),
            None => Running::Unknown(-1),
        }
    }

    /// Started at boot in a multi-user runlevel (2-5).
    pub fn enabled(&self) -> bool {
        match self.enabler {
            Some(Enabler::Chkconfig) => self
                .chkconfig
                .split_whitespace()
                .any(|w| matches!(w, "2:on" | "3:on" | "4:on" | "5:on")),
            _ => self.links.iter().any(|l| {
                let level = l.strip_prefix("/etc/rc").and_then(|r| r.chars().next());
                let start = l.rsplit('/').next().is_some_and(|f| f.starts_with('S'));
                start && matches!(level, Some('2'..='5'))
            }),
        }
    }
}

/// Read the script's output.
pub fn parse(out: &str) -> Sysv {
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
    let script = get("script");
    Sysv {
        script: (!script.is_empty()).then_some(script),
        service: !get("service").is_empty(),
        enabler: match get("enabler").as_str() {
            "update-rc.d" => Some(Enabler::UpdateRcD),
            "chkconfig" => Some(Enabler::Chkconfig),
            _ => None,
        },
        links: get("links").lines().map(str::to_string).collect(),
        chkconfig: get("chkconfig"),
        status_rc: get("status_rc").parse().ok(),
        status_out: get("status_out"),
    }
}

/// `service NAME VERB [ARGS]`, or the script itself when there is no `service`.
pub fn action_argv(sv: &Sysv, name: &str, verb: &str, arguments: &[String]) -> Vec<String> {
    let mut v = match (&sv.script, sv.service) {
        (Some(s), false) => vec![s.clone()],
        _ => vec!["service".to_string(), name.to_string()],
    };
    v.push(verb.into());
    v.extend(arguments.iter().cloned());
    v
}

/// The commands that switch boot-time start on or off. `update-rc.d NAME enable` needs the links
/// to exist, so a script that has none gets `defaults` first; `chkconfig` needs `--add` first.
pub fn enable_argvs(sv: &Sysv, name: &str, on: bool) -> Result<Vec<Vec<String>>, String> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match sv.enabler {
        Some(Enabler::UpdateRcD) => {
            let mut out = Vec::new();
            if sv.links.is_empty() {
                if !on {
                    return Ok(out);
                }
                out.push(v(&["update-rc.d", name, "defaults"]));
            }
            out.push(v(&["update-rc.d", name, if on { "enable" } else { "disable" }]));
            Ok(out)
        }
        Some(Enabler::Chkconfig) => {
            let mut out = Vec::new();
            if sv.chkconfig.trim().is_empty() {
                if !on {
                    return Ok(out);
                }
                out.push(v(&["chkconfig", "--add", name]));
            }
            out.push(v(&["chkconfig", name, if on { "on" } else { "off" }]));
            Ok(out)
        }
        None => Err(format!(
            "cannot change whether {name} starts at boot: neither update-rc.d nor chkconfig is installed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_debian_service() {
        let sv = parse(
            "@@script\n/etc/init.d/demo\n@@service\n/usr/sbin/service\n@@enabler\nupdate-rc.d\n\
             @@links\n/etc/rc0.d/K01demo\n/etc/rc2.d/S01demo\n@@chkconfig\n\
             @@status_rc\n3\n@@status_out\ndemo is not running\n",
        );
        assert_eq!(sv.script.as_deref(), Some("/etc/init.d/demo"));
        assert!(sv.service && sv.enabled());
        assert_eq!(sv.running(), Running::No);
        assert_eq!(
            action_argv(&sv, "demo", "start", &["--fast".into()]),
            ["service", "demo", "start", "--fast"]
        );
        assert_eq!(
            enable_argvs(&sv, "demo", false).unwrap(),
            [["update-rc.d", "demo", "disable"]]
        );
    }

    #[test]
    fn links_make_enabled_and_their_absence_needs_defaults() {
        let mut sv = Sysv {
            enabler: Some(Enabler::UpdateRcD),
            links: vec!["/etc/rc2.d/K01demo".into(), "/etc/rc0.d/K01demo".into()],
            ..Sysv::default()
        };
        assert!(!sv.enabled());
        sv.links.clear();
        assert_eq!(
            enable_argvs(&sv, "demo", true).unwrap(),
            [
                ["update-rc.d", "demo", "defaults"],
                ["update-rc.d", "demo", "enable"]
            ]
        );
        assert!(enable_argvs(&sv, "demo", false).unwrap().is_empty());
    }

    #[test]
    fn chkconfig_and_unknown_status() {
        let sv = parse(
            "@@script\n/etc/rc.d/init.d/demo\n@@service\n@@enabler\nchkconfig\n@@links\n\
             @@chkconfig\ndemo 0:off 1:off 2:off 3:on 4:on 5:on 6:off\n@@status_rc\n4\n@@status_out\n?\n",
        );
        assert!(sv.enabled());
        assert_eq!(sv.running(), Running::Unknown(4));
        assert_eq!(
            action_argv(&sv, "demo", "stop", &[]),
            ["/etc/rc.d/init.d/demo", "stop"]
        );
        assert!(query_script("a/b").is_err());
    }
}
