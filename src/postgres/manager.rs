//! Which cluster manager runs a server: Patroni, EDB Failover Manager (EFM), something that
//! looks like one but cannot be tied to this server (`unknown`), or none. Found on the host with
//! POSIX sh: the command lines in `/proc/*/cmdline` (a `patroni CONFIG` process, a Java process
//! running `com.enterprisedb.efm` with its `efm.properties`), the configuration file each names,
//! and, for an EFM agent that is not running, `/etc/edb/efm-*/*.properties`. A Patroni process
//! manages this server when its configuration's `postgresql.data_dir` is the server's data
//! directory (a host may run several members, as the test fleet does).
//!
//! The configuration files are read without their password lines: nothing secret travels back.
use std::collections::HashMap;

use serde_json::{json, Value};

/// The cluster manager of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    None,
    Patroni,
    Efm,
    Unknown,
}

impl Manager {
    pub const NAMES: &'static [&'static str] = &["none", "patroni", "efm", "unknown"];

    pub fn as_str(self) -> &'static str {
        match self {
            Manager::None => "none",
            Manager::Patroni => "patroni",
            Manager::Efm => "efm",
            Manager::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "" | "none" => Manager::None,
            "patroni" => Manager::Patroni,
            "efm" => Manager::Efm,
            "unknown" => Manager::Unknown,
            other => {
                return Err(format!(
                    "unknown cluster manager `{other}`: use one of {}",
                    Self::NAMES.join(", ")
                ))
            }
        })
    }
}

/// The Patroni member that runs this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatroniMember {
    pub pid: u32,
    /// The configuration file (or directory) named on Patroni's command line.
    pub config: String,
    /// `patronictl` next to the `patroni` that runs (a venv), else the one on `PATH`.
    pub patronictl: Option<String>,
    /// The cluster name (`scope`) and this member's name (`name`).
    pub scope: String,
    pub name: String,
    /// The REST API (`restapi.connect_address`, else `restapi.listen`), `https` when
    /// `restapi.certfile` is set.
    pub api_url: Option<String>,
}

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub manager: Manager,
    pub patroni: Option<PatroniMember>,
    /// EFM: the agent's pid (when running) and its properties file.
    pub efm_pid: Option<u32>,
    pub efm_properties: Option<String>,
    /// Why the manager is `unknown`, or what was seen and set aside.
    pub note: Option<String>,
}

/// The shell part of the facts script. `$d` holds the data directory. Prints, per process
/// whose command line names `patroni` or `com.enterprisedb.efm`: `@@proc:PID` (its arguments,
/// one a line); for a Patroni process `@@patroni_cfg:PID` (the configuration path, made
/// absolute), `@@patronictl:PID` (when next to it) and `@@patroni_yml:PID:N` (each file of the
/// configuration, without lines that mention a password); for an EFM agent
/// `@@efm_props:PID` (the properties file) and `@@efm_db:PID` (its `db.*` lines but passwords);
/// then `@@efm_conf:PATH` for each readable `/etc/edb/efm-*/*.properties`.
pub const DETECT_SH: &str = r#"nopw() { sed '/[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd]/d' "$1" 2>/dev/null; }
for f in $(grep -l -a -e patroni -e com.enterprisedb.efm /proc/[0-9]*/cmdline 2>/dev/null); do
  p=${f#/proc/}; p=${p%/cmdline}
  a=$(tr '\000' '\n' <"$f" 2>/dev/null) || continue
  [ -n "$a" ] || continue
  echo "@@proc:$p"; printf '%s\n' "$a"
  cfg=$(printf '%s\n' "$a" | awk 'n { if ($0 !~ /^-/) print; exit } { b = $0; sub(/.*\//, "", b); if (b == "patroni") n = 1 }')
  if [ -n "$cfg" ]; then
    case $cfg in /*) ;; *) cfg=$(readlink "/proc/$p/cwd" 2>/dev/null)/$cfg ;; esac
    echo "@@patroni_cfg:$p"; printf '%s\n' "$cfg"
    bin=$(printf '%s\n' "$a" | awk '{ b = $0; sub(/.*\//, "", b); if (b == "patroni") { print; exit } }')
    case $bin in */*) [ -x "${bin%/*}/patronictl" ] && { echo "@@patronictl:$p"; printf '%s\n' "${bin%/*}/patronictl"; } ;; esac
    if [ -d "$cfg" ]; then
      i=0
      for y in "$cfg"/*.yml "$cfg"/*.yaml; do
        [ -f "$y" ] || continue
        i=$((i+1)); echo "@@patroni_yml:$p:$i"; nopw "$y"
      done
    else
      echo "@@patroni_yml:$p:1"; nopw "$cfg"
    fi
  fi
  case $a in *com.enterprisedb.efm*)
    props=$(printf '%s\n' "$a" | awk '/\.properties$/ { print; exit }')
    echo "@@efm_props:$p"; printf '%s\n' "$props"
    [ -n "$props" ] && { echo "@@efm_db:$p"; grep '^db\.' "$props" 2>/dev/null | grep -v -i password; }
  ;; esac
done
for f in /etc/edb/efm-*/*.properties; do
  [ -r "$f" ] || continue
  echo "@@efm_conf:$f"; grep '^db\.' "$f" 2>/dev/null | grep -v -i password
done
"#;

fn trim_dir(s: &str) -> &str {
    let t = s.trim();
    match t.trim_end_matches('/') {
        "" if t.starts_with('/') => "/",
        x => x,
    }
}

/// Merge `b` into `a` (mappings key by key, anything else replaced), as Patroni reads a
/// configuration directory.
pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in y {
                match x.get_mut(&k) {
                    Some(old) => merge(old, v),
                    None => {
                        x.insert(k, v);
                    }
                }
            }
        }
        (a, b) => *a = b,
    }
}

fn yaml_str(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    match cur {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `key=value` lines of a properties file.
fn properties(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn pid_sections<'a>(
    sec: &'a HashMap<String, String>,
    prefix: &str,
) -> Vec<(u32, Option<usize>, &'a String)> {
    let mut v: Vec<(u32, Option<usize>, &String)> = sec
        .iter()
        .filter_map(|(k, body)| {
            let rest = k.strip_prefix(prefix)?.strip_prefix(':')?;
            let (pid, n) = match rest.split_once(':') {
                Some((p, n)) => (p, n.parse().ok()),
                None => (rest, None),
            };
            Some((pid.parse().ok()?, n, body))
        })
        .collect();
    v.sort_by_key(|(p, n, _)| (*p, *n));
    v
}

/// Decide from the script's sections which manager runs the server whose data directory is
/// `data_dir`. `patronictl_on_path`: `command -v patronictl`, used when Patroni runs from `PATH`.
pub fn detect(
    sec: &HashMap<String, String>,
    data_dir: &str,
    patronictl_on_path: Option<&str>,
) -> Detected {
    let want = trim_dir(data_dir);
    let mut out = Detected {
        manager: Manager::None,
        patroni: None,
        efm_pid: None,
        efm_properties: None,
        note: None,
    };
    let mut unverified: Vec<String> = Vec::new();
    for (pid, _, cfg) in pid_sections(sec, "patroni_cfg") {
        let cfg = cfg.trim().to_string();
        let mut conf = Value::Null;
        let mut read = false;
        for (p, _, text) in pid_sections(sec, "patroni_yml") {
            if p != pid || text.trim().is_empty() {
                continue;
            }
            if let Ok(v) = serde_yaml::from_str::<Value>(text) {
                if v.is_object() {
                    read = true;
                    if conf.is_null() {
                        conf = v;
                    } else {
                        merge(&mut conf, v);
                    }
                }
            }
        }
        if !read {
            unverified.push(format!(
                "a Patroni process (pid {pid}, configuration {cfg}) whose configuration cannot be read"
            ));
            continue;
        }
        let Some(dir) = yaml_str(&conf, &["postgresql", "data_dir"]) else {
            unverified.push(format!(
                "a Patroni process (pid {pid}, configuration {cfg}) without postgresql.data_dir"
            ));
            continue;
        };
        if trim_dir(&dir) != want {
            continue;
        }
        let api = yaml_str(&conf, &["restapi", "connect_address"])
            .or_else(|| yaml_str(&conf, &["restapi", "listen"]));
        let scheme = if yaml_str(&conf, &["restapi", "certfile"]).is_some() {
            "https"
        } else {
            "http"
        };
        let patronictl = sec
            .get(&format!("patronictl:{pid}"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| patronictl_on_path.map(str::to_string));
        out.manager = Manager::Patroni;
        out.patroni = Some(PatroniMember {
            pid,
            config: cfg,
            patronictl,
            scope: yaml_str(&conf, &["scope"]).unwrap_or_default(),
            name: yaml_str(&conf, &["name"]).unwrap_or_default(),
            api_url: api.map(|a| format!("{scheme}://{a}")),
        });
        return out;
    }
    // EFM: a running agent whose properties name this data directory (or cannot be read: an
    // agent on the host is taken to manage its database), else a configured, stopped one.
    let efm_db = |text: &str| properties(text).get("db.data.dir").cloned();
    for (pid, _, props) in pid_sections(sec, "efm_props") {
        let props = props.trim().to_string();
        let db = sec.get(&format!("efm_db:{pid}")).and_then(|t| efm_db(t));
        match db {
            Some(d) if trim_dir(&d) != want => continue,
            _ => {
                out.manager = Manager::Efm;
                out.efm_pid = Some(pid);
                out.efm_properties = Some(props).filter(|p| !p.is_empty());
                return out;
            }
        }
    }
    let mut confs: Vec<(&String, &String)> = sec
        .iter()
        .filter(|(k, _)| k.starts_with("efm_conf:"))
        .collect();
    confs.sort();
    for (k, text) in confs {
        if efm_db(text).is_some_and(|d| trim_dir(&d) == want) {
            out.manager = Manager::Efm;
            out.efm_properties = k.strip_prefix("efm_conf:").map(str::to_string);
            out.note =
                Some("EFM is configured for this server but its agent is not running".into());
            return out;
        }
    }
    if !unverified.is_empty() {
        out.manager = Manager::Unknown;
        out.note = Some(format!(
            "{}: it may manage this server, so castellan treats the manager as unknown (reload only, never a restart)",
            unverified.join("; ")
        ));
    }
    out
}

impl Detected {
    /// The `patroni` / `efm` facts (`null` when not that manager).
    pub fn to_json(&self, in_recovery: Option<bool>) -> (Value, Value) {
        let patroni = match &self.patroni {
            Some(p) => json!({
                "pid": p.pid,
                "config": p.config,
                "patronictl": p.patronictl,
                "scope": p.scope,
                "name": p.name,
                "api_url": p.api_url,
                "role": in_recovery.map(|r| if r { "replica" } else { "leader" }),
            }),
            None => Value::Null,
        };
        let efm = if self.manager == Manager::Efm {
            json!({"pid": self.efm_pid, "properties": self.efm_properties})
        } else {
            Value::Null
        };
        (patroni, efm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::target::sections;

    const DATA: &str = "/srv/pg/db2/pgdata";

    fn member(k: u32, dir: &str) -> String {
        format!(
            "@@proc:{k}00\n/opt/venv/bin/python3\n/opt/venv/bin/patroni\n/etc/patroni/db{k}.yml\n\
             @@patroni_cfg:{k}00\n/etc/patroni/db{k}.yml\n@@patronictl:{k}00\n/opt/venv/bin/patronictl\n\
             @@patroni_yml:{k}00:1\nscope: batman\nname: db{k}\nrestapi:\n  listen: 0.0.0.0:8008\n  \
             connect_address: 10.0.0.{k}:8008\npostgresql:\n  data_dir: {dir}\n  authentication:\n    \
             superuser:\n      username: postgres\n"
        )
    }

    #[test]
    fn the_patroni_member_whose_data_dir_matches_wins() {
        let out = format!(
            "{}{}{}@@proc:77\ngrep\n-l\n-a\n-e\npatroni\n",
            member(1, "/srv/pg/db1/pgdata"),
            member(2, "/srv/pg/db2/pgdata/"),
            member(3, "/srv/pg/db3/pgdata")
        );
        let d = detect(&sections(&out), DATA, None);
        assert_eq!(d.manager, Manager::Patroni);
        let p = d.patroni.unwrap();
        assert_eq!(p.pid, 200);
        assert_eq!(p.name, "db2");
        assert_eq!(p.scope, "batman");
        assert_eq!(p.config, "/etc/patroni/db2.yml");
        assert_eq!(p.patronictl.as_deref(), Some("/opt/venv/bin/patronictl"));
        assert_eq!(p.api_url.as_deref(), Some("http://10.0.0.2:8008"));
    }

    #[test]
    fn a_directory_configuration_is_merged_and_https_follows_certfile() {
        let out = "@@patroni_cfg:9\n/etc/patroni.d\n@@patroni_yml:9:1\nscope: s\nname: n1\n\
                   postgresql:\n  data_dir: /other\nrestapi:\n  listen: 127.0.0.1:8008\n\
                   @@patroni_yml:9:2\npostgresql:\n  data_dir: /srv/pg/db2/pgdata\nrestapi:\n  \
                   certfile: /etc/ssl/api.pem\n";
        let d = detect(&sections(out), DATA, Some("/usr/bin/patronictl"));
        let p = d.patroni.unwrap();
        assert_eq!(p.api_url.as_deref(), Some("https://127.0.0.1:8008"));
        assert_eq!(p.patronictl.as_deref(), Some("/usr/bin/patronictl"));
        assert_eq!(p.name, "n1");
    }

    #[test]
    fn an_unreadable_patroni_configuration_makes_the_manager_unknown() {
        let out = "@@patroni_cfg:9\n/etc/patroni/patroni.yml\n@@patroni_yml:9:1\n";
        let d = detect(&sections(out), DATA, None);
        assert_eq!(d.manager, Manager::Unknown);
        assert!(d.note.unwrap().contains("cannot be read"), "note");
        // Another member's Patroni only: no manager for this server.
        let d = detect(&sections(&member(1, "/srv/pg/db1/pgdata")), DATA, None);
        assert_eq!(d.manager, Manager::None);
        assert!(d.patroni.is_none());
    }

    #[test]
    fn efm_by_process_or_by_configuration() {
        let agent = "@@proc:55\n/usr/bin/java\n-cp\n/usr/edb/efm-4.9/lib/EFM-4.9.jar\n\
                     com.enterprisedb.efm.main.ServiceCommand\n__int_start\n/etc/edb/efm-4.9/efm.properties\n\
                     @@efm_props:55\n/etc/edb/efm-4.9/efm.properties\n@@efm_db:55\n\
                     db.user=enterprisedb\ndb.data.dir=/srv/pg/db2/pgdata\n";
        let d = detect(&sections(agent), DATA, None);
        assert_eq!(
            (d.manager, d.efm_pid, d.efm_properties.as_deref()),
            (
                Manager::Efm,
                Some(55),
                Some("/etc/edb/efm-4.9/efm.properties")
            )
        );
        // An agent for another data directory is not this server's manager.
        let other = agent.replace("db.data.dir=/srv/pg/db2/pgdata", "db.data.dir=/var/lib/x");
        assert_eq!(detect(&sections(&other), DATA, None).manager, Manager::None);
        // A configured agent that is not running still manages the server.
        let conf = "@@efm_conf:/etc/edb/efm-4.9/efm.properties\ndb.data.dir = /srv/pg/db2/pgdata\n";
        let d = detect(&sections(conf), DATA, None);
        assert_eq!(d.manager, Manager::Efm);
        assert!(d.note.unwrap().contains("not running"));
    }

    #[test]
    fn roles_and_json() {
        let d = detect(&sections(&member(2, DATA)), DATA, None);
        let (p, e) = d.to_json(Some(true));
        assert_eq!(p["role"], "replica");
        assert_eq!(p["name"], "db2");
        assert!(e.is_null());
        assert_eq!(Manager::parse("efm").unwrap(), Manager::Efm);
        assert!(Manager::parse("pacemaker").is_err());
    }
}
