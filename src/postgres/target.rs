//! Which cluster on a host, and how to talk to it over its local socket: `psql` as the database
//! OS user, peer authentication, no TCP and no password.
use serde_json::Value;

use crate::connection::quote::quote_str;
use crate::modules::Args;

pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_OS_USER: &str = "postgres";

/// A cluster reached through its Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub socket_dir: String,
    pub port: u16,
    /// The OS user that owns the cluster: commands run as this user (`become_user`).
    pub os_user: String,
    /// The database role `psql` logs in as (peer authentication maps the OS user to it).
    pub login_user: String,
    /// Where `psql`/`pg_ctl` live; `None`: `psql` from `PATH`.
    pub bin_dir: Option<String>,
}

/// A string variable of the task (`pg_port`, `pg_socket_dir`...), rendered from any scalar.
pub fn var_string(vars: &tera::Context, name: &str) -> Option<String> {
    match vars.get(name)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn parse_port(s: &str, from: &str) -> Result<u16, String> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{from} must be a TCP port number (1-65535), got `{s}`"))
}

impl PgTarget {
    /// Arguments first, then what `pg_facts` recorded (`facts`), then the `pg_*` variables,
    /// then the defaults.
    pub fn resolve(
        args: &Args,
        vars: &tera::Context,
        facts: Option<&Value>,
    ) -> Result<Self, String> {
        let fact = |k: &str| -> Option<String> {
            match facts?.get(k)? {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let socket_dir = args
            .string("socket_dir")
            .or_else(|| fact("socket_dir"))
            .or_else(|| var_string(vars, "pg_socket_dir"))
            .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_string());
        let port = match args.string("port") {
            Some(p) => parse_port(&p, "argument `port`")?,
            None => match fact("port").or_else(|| var_string(vars, "pg_port")) {
                Some(p) => parse_port(&p, "variable `pg_port`")?,
                None => DEFAULT_PORT,
            },
        };
        let os_user = args
            .string("os_user")
            .or_else(|| fact("os_user"))
            .or_else(|| var_string(vars, "pg_os_user"))
            .unwrap_or_else(|| DEFAULT_OS_USER.to_string());
        let login_user = args
            .string("login_user")
            .or_else(|| fact("login_user"))
            .unwrap_or_else(|| os_user.clone());
        let bin_dir = args
            .string("bin_dir")
            .or_else(|| var_string(vars, "pg_bin_dir"));
        Ok(PgTarget {
            socket_dir,
            port,
            os_user,
            login_user,
            bin_dir,
        })
    }

    fn bin(&self, prog: &str) -> String {
        match &self.bin_dir {
            Some(d) => format!("{}/{prog}", d.trim_end_matches('/')),
            None => prog.to_string(),
        }
    }

    /// The quoted `psql` command line, without `-c`: unaligned, tuples only, no psqlrc.
    pub fn psql_words(&self) -> Result<String, String> {
        let port = self.port.to_string();
        let words = [
            self.bin("psql").as_str(),
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &self.socket_dir,
            "-p",
            &port,
            "-U",
            &self.login_user,
            "-d",
            "postgres",
        ]
        .iter()
        .map(|w| quote_str(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
        Ok(words.join(" "))
    }

    /// Shell prelude defining `q SQL` (one query, one connection, 5 s connect timeout).
    pub fn prelude(&self) -> Result<String, String> {
        Ok(format!(
            "PGCONNECT_TIMEOUT=5; export PGCONNECT_TIMEOUT\nq() {{ {} -c \"$1\"; }}\n",
            self.psql_words()?
        ))
    }

    /// The keys `pg_facts` records so that later modules reach the same cluster.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "socket_dir": self.socket_dir,
            "port": self.port,
            "os_user": self.os_user,
            "login_user": self.login_user,
        })
    }
}

/// Single-quote `s` for the shell (errors only on NUL bytes).
pub fn sh(s: &str) -> Result<String, String> {
    quote_str(s).map_err(|e| e.to_string())
}

/// Split a script's output into `@@name` sections (text up to the next marker, trimmed of the
/// final newline).
pub fn sections(out: &str) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    let mut cur: Option<(String, Vec<&str>)> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            if let Some((n, body)) = cur.take() {
                map.insert(n, body.join("\n"));
            }
            cur = Some((name.trim().to_string(), Vec::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            body.push(line);
        }
    }
    if let Some((n, body)) = cur {
        map.insert(n, body.join("\n"));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        Args {
            map: v.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn precedence_args_facts_vars_defaults() {
        let mut vars = tera::Context::new();
        vars.insert("pg_port", &json!("5433"));
        vars.insert("pg_os_user", &"enterprisedb");
        let t = PgTarget::resolve(&args(json!({})), &vars, None).unwrap();
        assert_eq!(t.port, 5433);
        assert_eq!(t.os_user, "enterprisedb");
        assert_eq!(t.login_user, "enterprisedb");
        assert_eq!(t.socket_dir, DEFAULT_SOCKET_DIR);
        let facts = json!({"port": 6000, "socket_dir": "/run/x"});
        let t = PgTarget::resolve(&args(json!({"port": 7000})), &vars, Some(&facts)).unwrap();
        assert_eq!((t.port, t.socket_dir.as_str()), (7000, "/run/x"));
        assert!(PgTarget::resolve(&args(json!({"port": "x"})), &vars, None).is_err());
    }

    #[test]
    fn psql_words_are_quoted() {
        let t = PgTarget {
            socket_dir: "/tmp/my sock".into(),
            port: 5432,
            os_user: "postgres".into(),
            login_user: "postgres".into(),
            bin_dir: Some("/usr/lib/postgresql/15/bin/".into()),
        };
        let w = t.psql_words().unwrap();
        assert!(w.starts_with("/usr/lib/postgresql/15/bin/psql -X"), "{w}");
        assert!(w.contains("-h '/tmp/my sock'"), "{w}");
    }

    #[test]
    fn sections_split_on_markers() {
        let s = sections("junk\n@@a\n1\n2\n@@b\n@@c\nx\n");
        assert_eq!(s["a"], "1\n2");
        assert_eq!(s["b"], "");
        assert_eq!(s["c"], "x");
        assert!(!s.contains_key("junk"));
    }
}
