//! Which cluster a PostgreSQL task reaches: its arguments, what `pg_facts` recorded, the task's
//! `pg_*` variables, then the defaults. It lives with the modules (it reads their [`Args`] and the
//! task's variables); `crate::postgres` only knows the resolved [`PgTarget`].
use serde_json::Value;

use crate::modules::Args;
use crate::postgres::target::{PgTarget, DEFAULT_OS_USER, DEFAULT_PORT, DEFAULT_SOCKET_DIR};

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

/// Arguments first, then what `pg_facts` recorded (`facts`), then the `pg_*` variables,
/// then the defaults.
pub fn resolve(
    args: &Args,
    vars: &tera::Context,
    facts: Option<&Value>,
) -> Result<PgTarget, String> {
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
        let t = resolve(&args(json!({})), &vars, None).unwrap();
        assert_eq!(t.port, 5433);
        assert_eq!(t.os_user, "enterprisedb");
        assert_eq!(t.login_user, "enterprisedb");
        assert_eq!(t.socket_dir, DEFAULT_SOCKET_DIR);
        let facts = json!({"port": 6000, "socket_dir": "/run/x"});
        let t = resolve(&args(json!({"port": 7000})), &vars, Some(&facts)).unwrap();
        assert_eq!((t.port, t.socket_dir.as_str()), (7000, "/run/x"));
        assert!(resolve(&args(json!({"port": "x"})), &vars, None).is_err());
    }
}
