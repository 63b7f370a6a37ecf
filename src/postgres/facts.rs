//! `pg_facts`: what a cluster is and how it is controlled, read in one round trip (one `psql`
//! call with one JSON query, plus `stat`/`readlink` of the data directory and postmaster in the
//! same script, run as the cluster's OS user).
use serde_json::{json, Map, Value};

use super::manager::{detect, Manager, DETECT_SH};
use super::target::{sections, sh, PgTarget};

/// Everything in one value: the data directory on the first line (for the shell's `stat`), then
/// one line of JSON (values with `|` or newlines survive).
pub const FACTS_SQL: &str = "SELECT current_setting('data_directory') || chr(10) || json_build_object(\
'server_version', current_setting('server_version'), \
'server_version_num', current_setting('server_version_num')::int, \
'config_file', current_setting('config_file'), \
'hba_file', current_setting('hba_file'), \
'ident_file', current_setting('ident_file'), \
'data_directory', current_setting('data_directory'), \
'cluster_name', current_setting('cluster_name'), \
'port', current_setting('port')::int, \
'listen_addresses', current_setting('listen_addresses'), \
'unix_socket_directories', current_setting('unix_socket_directories'), \
'logging_collector', current_setting('logging_collector'), \
'current_logfile', pg_current_logfile(), \
'postmaster_start_time', pg_postmaster_start_time(), \
'conf_load_time', pg_conf_load_time(), \
'in_recovery', pg_is_in_recovery(), \
'ssl_settings', (SELECT json_object_agg(name, setting ORDER BY name) FROM pg_settings WHERE name LIKE 'ssl%'), \
'pending_restart', (SELECT coalesce(json_agg(name ORDER BY name), '[]'::json) FROM pg_settings WHERE pending_restart))::text";

/// The script: `@@json`, `@@owner`, `@@exe` (postmaster binary), `@@stderr` (where the
/// postmaster's stderr goes: pg_ctl's `-l` file), `@@pg_ctlcluster`, `@@patronictl` (on `PATH`),
/// then the cluster manager's sections ([`DETECT_SH`]). Exits with psql's status when the server
/// cannot be queried.
pub fn facts_script(t: &PgTarget) -> Result<String, String> {
    let mut s = t.prelude()?;
    s.push_str(&format!("out=$(q {}) || exit $?\n", sh(FACTS_SQL)?));
    s.push_str(
        r#"d=$(printf '%s\n' "$out" | sed -n 1p)
echo @@json; printf '%s\n' "$out" | sed -n 2p
echo @@owner; stat -c %U -- "$d" 2>/dev/null
pid=$(sed -n 1p "$d/postmaster.pid" 2>/dev/null)
echo @@exe; [ -n "$pid" ] && readlink "/proc/$pid/exe" 2>/dev/null
echo @@stderr; [ -n "$pid" ] && readlink "/proc/$pid/fd/2" 2>/dev/null
echo @@pg_ctlcluster; command -v pg_ctlcluster 2>/dev/null
echo @@patronictl; command -v patronictl 2>/dev/null
"#,
    );
    s.push_str(DETECT_SH);
    s.push_str("exit 0\n");
    Ok(s)
}

/// How the service is controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PgCtlCluster,
    PgCtl,
    Systemd,
    Patroni,
}

impl Method {
    pub const NAMES: &'static [&'static str] = &["pg_ctlcluster", "pg_ctl", "systemd", "patroni"];

    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pg_ctlcluster" => Method::PgCtlCluster,
            "pg_ctl" => Method::PgCtl,
            "systemd" => Method::Systemd,
            "patroni" => Method::Patroni,
            other => {
                return Err(format!(
                    "unknown service method `{other}`: use one of {}",
                    Self::NAMES.join(", ")
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::PgCtlCluster => "pg_ctlcluster",
            Method::PgCtl => "pg_ctl",
            Method::Systemd => "systemd",
            Method::Patroni => "patroni",
        }
    }
}

/// `/etc/postgresql/VERSION/NAME/postgresql.conf` -> (VERSION, NAME).
pub fn debian_cluster(config_file: &str) -> Option<(String, String)> {
    let rest = config_file.strip_prefix("/etc/postgresql/")?;
    let mut parts = rest.split('/');
    let (v, n, f) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !v.is_empty() && !n.is_empty() && f.ends_with(".conf"))
        .then(|| (v.to_string(), n.to_string()))
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].to_string(),
        None => ".".into(),
    }
}

fn nonempty(s: Option<&String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Turn the script's output into the `pg_facts` value.
pub fn build_facts(stdout: &str, t: &PgTarget, method: Option<&str>) -> Result<Value, String> {
    let sec = sections(stdout);
    let raw = sec
        .get("json")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or("the server returned no facts (psql printed nothing)")?;
    let j: Value = serde_json::from_str(raw)
        .map_err(|e| format!("cannot read the facts query's JSON: {e}"))?;
    let gets = |k: &str| j.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let num = j
        .get("server_version_num")
        .and_then(Value::as_i64)
        .ok_or("server_version_num missing from the facts")?;
    let major = if num >= 100_000 {
        num / 10_000
    } else {
        num / 100
    };
    let config_file = gets("config_file");
    let data_dir = gets("data_directory");
    let debian = debian_cluster(&config_file);
    let exe = nonempty(sec.get("exe"));
    let bin_dir = exe.as_deref().map(parent);
    let stderr =
        nonempty(sec.get("stderr")).filter(|s| s.starts_with('/') && !s.starts_with("/dev/"));
    let on_path = nonempty(sec.get("patronictl"));
    let pg_ctlcluster = nonempty(sec.get("pg_ctlcluster"));
    let found = detect(&sec, &data_dir, on_path.as_deref());
    let member = found.patroni.as_ref();

    let method = match method {
        Some(m) => Method::parse(m)?,
        None if found.manager == Manager::Patroni => Method::Patroni,
        None if debian.is_some() && pg_ctlcluster.is_some() => Method::PgCtlCluster,
        None => Method::PgCtl,
    };
    if method == Method::PgCtlCluster && debian.is_none() {
        return Err(format!(
            "service_method pg_ctlcluster needs a Debian cluster (config_file under \
             /etc/postgresql/VERSION/NAME/), but config_file is {config_file}: use pg_ctl"
        ));
    }
    if method == Method::Patroni && member.is_none() {
        return Err(format!(
            "service_method patroni, but no Patroni process runs this server (none whose \
             postgresql.data_dir is {data_dir}){}",
            found
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ));
    }
    // Where the server logs: the collector's current file, else the postmaster's stderr file,
    // else Debian's per-cluster log.
    let current_logfile = j.get("current_logfile").and_then(Value::as_str).map(|f| {
        if f.starts_with('/') {
            f.to_string()
        } else {
            format!("{data_dir}/{f}")
        }
    });
    let debian_log = debian
        .as_ref()
        .map(|(v, n)| format!("/var/log/postgresql/postgresql-{v}-{n}.log"));
    let log_file = current_logfile
        .clone()
        .or_else(|| stderr.clone())
        .or_else(|| debian_log.clone());
    let (version, mut cluster) = match &debian {
        Some((v, n)) => (v.clone(), Some(n.clone())),
        None => (major.to_string(), None),
    };
    if method == Method::Patroni {
        // Patroni sets cluster_name to its scope.
        cluster = Some(gets("cluster_name")).filter(|c| !c.is_empty());
    }
    let unit = match &debian {
        Some((v, n)) => format!("postgresql@{v}-{n}"),
        None => "postgresql".to_string(),
    };
    let service = json!({
        "method": method.as_str(),
        "version": version,
        "cluster": cluster,
        "data_dir": data_dir,
        "config_dir": parent(&config_file),
        "bin_dir": bin_dir,
        "log_file": log_file,
        "stderr_log": stderr.or(debian_log),
        "unit": unit,
        "patroni_config": member.map(|m| m.config.clone()),
        "patroni_name": member.map(|m| m.name.clone()),
        "patronictl": member.and_then(|m| m.patronictl.clone()),
        "manager": found.manager.as_str(),
    });
    let ssl_settings = j.get("ssl_settings").cloned().unwrap_or(json!({}));
    let mut out = Map::new();
    out.insert("server_version".into(), json!(gets("server_version")));
    out.insert("server_version_num".into(), json!(num));
    out.insert("major".into(), json!(major));
    for k in [
        "config_file",
        "hba_file",
        "ident_file",
        "data_directory",
        "cluster_name",
    ] {
        out.insert(k.into(), json!(gets(k)));
    }
    out.insert("config_dir".into(), json!(parent(&config_file)));
    out.insert(
        "data_owner".into(),
        json!(nonempty(sec.get("owner")).unwrap_or_default()),
    );
    out.insert(
        "ssl".into(),
        json!(ssl_settings.get("ssl").and_then(Value::as_str) == Some("on")),
    );
    if let Some(m) = ssl_settings.as_object() {
        for (k, v) in m {
            if k != "ssl" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for k in [
        "listen_addresses",
        "unix_socket_directories",
        "postmaster_start_time",
        "conf_load_time",
        "in_recovery",
        "pending_restart",
    ] {
        out.insert(k.into(), j.get(k).cloned().unwrap_or(Value::Null));
    }
    out.insert("log_file".into(), json!(log_file));
    let (patroni, efm) = found.to_json(j.get("in_recovery").and_then(Value::as_bool));
    out.insert("manager".into(), json!(found.manager.as_str()));
    out.insert("manager_note".into(), json!(found.note));
    out.insert("patroni".into(), patroni);
    out.insert("efm".into(), efm);
    out.insert("service".into(), service);
    if let Value::Object(m) = t.to_json() {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> PgTarget {
        PgTarget {
            socket_dir: "/var/run/postgresql".into(),
            port: 5432,
            os_user: "postgres".into(),
            login_user: "postgres".into(),
            bin_dir: None,
        }
    }

    fn output(config: &str, extra: &str) -> String {
        format!(
            "@@json\n{}\n@@owner\npostgres\n@@exe\n/usr/lib/postgresql/15/bin/postgres\n@@stderr\n/var/log/postgresql/postgresql-15-main.log\n@@pg_ctlcluster\n/usr/bin/pg_ctlcluster\n@@patronictl\n{extra}",
            json!({
                "server_version": "15.14 (Debian 15.14-0+deb12u1)",
                "server_version_num": 150014,
                "config_file": config,
                "hba_file": "/etc/postgresql/15/main/pg_hba.conf",
                "data_directory": "/var/lib/postgresql/15/main",
                "cluster_name": "15/main",
                "ssl_settings": {"ssl": "on", "ssl_cert_file": "/etc/ssl/certs/ssl-cert-snakeoil.pem"},
                "current_logfile": null,
                "in_recovery": false,
                "pending_restart": []
            })
        )
    }

    #[test]
    fn debian_cluster_is_detected() {
        let f = build_facts(
            &output("/etc/postgresql/15/main/postgresql.conf", ""),
            &target(),
            None,
        )
        .unwrap();
        assert_eq!(f["major"], 15);
        assert_eq!(f["ssl"], true);
        assert_eq!(f["ssl_cert_file"], "/etc/ssl/certs/ssl-cert-snakeoil.pem");
        assert_eq!(f["data_owner"], "postgres");
        assert_eq!(f["config_dir"], "/etc/postgresql/15/main");
        let s = &f["service"];
        assert_eq!(s["method"], "pg_ctlcluster");
        assert_eq!(
            (s["version"].as_str(), s["cluster"].as_str()),
            (Some("15"), Some("main"))
        );
        assert_eq!(s["log_file"], "/var/log/postgresql/postgresql-15-main.log");
        assert_eq!(s["bin_dir"], "/usr/lib/postgresql/15/bin");
        assert_eq!(f["port"], 5432);
    }

    #[test]
    fn initdb_layout_is_pg_ctl_and_patroni_wins_when_configured() {
        let out = output("/srv/pg/data/postgresql.conf", "");
        let f = build_facts(&out, &target(), None).unwrap();
        assert_eq!(f["service"]["method"], "pg_ctl");
        assert!(f["service"]["cluster"].is_null());
        assert!(build_facts(&out, &target(), Some("pg_ctlcluster"))
            .unwrap_err()
            .contains("use pg_ctl"));
        assert!(build_facts(&out, &target(), Some("patroni"))
            .unwrap_err()
            .contains("no Patroni process runs this server"));
        assert_eq!(f["manager"], "none");
        // A Patroni process whose configuration names this data directory.
        let out = output(
            "/var/lib/postgresql/15/main/postgresql.conf",
            "/usr/bin/patronictl\n@@patroni_cfg:42\n/etc/patroni/patroni.yml\n\
             @@patroni_yml:42:1\nscope: batman\nname: db1\npostgresql:\n  \
             data_dir: /var/lib/postgresql/15/main\n",
        );
        let f = build_facts(&out, &target(), None).unwrap();
        assert_eq!(f["service"]["method"], "patroni");
        assert_eq!(f["service"]["patroni_name"], "db1");
        assert_eq!(f["service"]["patronictl"], "/usr/bin/patronictl");
        assert_eq!(f["manager"], "patroni");
        assert_eq!(f["patroni"]["scope"], "batman");
        assert_eq!(f["patroni"]["role"], "leader");
    }

    #[test]
    fn debian_paths() {
        assert_eq!(
            debian_cluster("/etc/postgresql/15/main/postgresql.conf"),
            Some(("15".into(), "main".into()))
        );
        assert_eq!(debian_cluster("/etc/postgresql/15/postgresql.conf"), None);
        assert_eq!(debian_cluster("/var/lib/pg/postgresql.conf"), None);
    }

    #[test]
    fn script_is_one_psql_call() {
        let s = facts_script(&target()).unwrap();
        assert_eq!(s.matches("$(q ").count(), 1);
        assert!(s.contains("stat -c %U"));
    }
}
