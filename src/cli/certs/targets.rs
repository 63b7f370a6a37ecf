//! What `certs status` checks on each host, from the inventory alone, checked before any host
//! is contacted (exit 4 with the variable's place):
//! - the certificate a PostgreSQL server serves (TLS probe on `ansible_host`:`pg_port`, name
//!   `pg_dns_name`) on the hosts of group `postgres` (or every host with
//!   `castellan_status_server: true`; when the inventory has no group `postgres`, every host that
//!   lists no certificate file);
//! - certificate files on the host, read over SSH: those of the holder roles of its groups
//!   ([`super::holders`]) and those listed in `castellan_cert_files` (paths, or mappings
//!   `{path, name, kind}`: `name` is the certificate's name in the PKI, `kind` client (default)
//!   or server). A path whose name is that of a private key file (`.key`, `.pk8`, `.pfx`...)
//!   is refused: certs status reads certificates only.
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::holders::{Holder, HOLDERS};
use crate::connection::is_local;
use crate::connection::ssh::{bool_var, SshParams};
use crate::error::{Error, Result};
use crate::inventory::{Host, Inventory};
use crate::pki::CertKind;
use crate::template::{context, Templar};

/// The host variable listing certificate files to read on a host.
pub const FILES_VAR: &str = "castellan_cert_files";
/// The host variable that says whether to probe a host's PostgreSQL server.
pub const SERVER_VAR: &str = "castellan_status_server";

/// File names (lower case) castellan never reads as a certificate: private keys and key stores.
const KEY_SUFFIXES: &[&str] = &[
    ".key",
    ".pk8",
    ".p8",
    ".pfx",
    ".p12",
    ".jks",
    ".keystore",
    ".kdb",
    ".pvk",
];

/// The TLS probe of a host's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProbe {
    pub addr: String,
    pub port: u16,
    /// The name sent in SNI.
    pub server_name: String,
}

/// A certificate file to read on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFile {
    pub path: String,
    pub kind: CertKind,
    /// Its name in the PKI, when known.
    pub name: Option<String>,
}

/// One host's checks.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub server: Option<ServerProbe>,
    pub files: Vec<CertFile>,
    /// The host's variables, rendered (its connection variables among them).
    pub vars: Map<String, Value>,
    /// `ansible_become` on: read the files as this user.
    pub become_user: Option<String>,
    pub pki: Option<PathBuf>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The error for variable `var` of host `host`, at the place it was written.
fn bad(h: &Host, var: &str, msg: String) -> Error {
    let msg = format!("host `{}`: {var}: {msg}", h.name);
    match h.var_locs.get(var) {
        Some(loc) => Error::invalid(loc, msg),
        None => Error::invalid_noloc(msg),
    }
}

/// A path castellan may read as a certificate.
fn check_path(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{path:?} holds a control character"));
    }
    let base = path.rsplit('/').next().unwrap_or_default().to_lowercase();
    if let Some(suffix) = KEY_SUFFIXES.iter().find(|s| base.ends_with(*s)) {
        return Err(format!(
            "{path} is named like a private key or key store ({suffix}): certs status reads \
             certificates only, never a key file; list the certificate (client.crt, NAME.crt)"
        ));
    }
    Ok(())
}

/// One entry of `castellan_cert_files`.
fn cert_file(v: &Value) -> std::result::Result<CertFile, String> {
    let (path, name, kind) = match v {
        Value::String(p) => (p.clone(), None, CertKind::Client),
        Value::Object(m) => {
            for k in m.keys() {
                if !["path", "name", "kind"].contains(&k.as_str()) {
                    return Err(format!(
                        "unknown key `{k}` in an entry (valid keys: path, name, kind)"
                    ));
                }
            }
            let path = m
                .get("path")
                .and_then(text)
                .ok_or("an entry needs `path` (the certificate file on the host)")?;
            let name = match m.get("name") {
                None | Some(Value::Null) => None,
                Some(v) => Some(text(v).ok_or("`name` must be a string")?),
            };
            let kind = match m.get("kind").and_then(Value::as_str) {
                None | Some("client") => CertKind::Client,
                Some("server") => CertKind::Server,
                Some(other) => {
                    return Err(format!("`kind` must be client or server, not {other:?}"))
                }
            };
            (path, name, kind)
        }
        other => {
            return Err(format!(
                "expected a path or a mapping {{path, name, kind}}, got {other}"
            ))
        }
    };
    check_path(&path)?;
    if let Some(n) = &name {
        crate::pki::store::validate_name(n).map_err(|e| format!("`name`: {e}"))?;
    }
    Ok(CertFile { path, kind, name })
}

/// The host's variables with the magic ones and the defaults of its holder roles, rendered.
fn host_vars(
    inv: &Inventory,
    h: &Host,
    holders: &[&Holder],
    templar: &Templar,
) -> Map<String, Value> {
    let mut vars = Map::new();
    for holder in holders {
        for (k, v) in holder.defaults {
            vars.insert((*k).to_string(), json!(v));
        }
    }
    for (k, v) in &h.vars {
        vars.insert(k.clone(), v.clone());
    }
    vars.insert("inventory_hostname".into(), json!(h.name));
    vars.insert("inventory_dir".into(), json!(h.inventory_dir));
    vars.insert("inventory_file".into(), json!(h.inventory_file));
    vars.insert("group_names".into(), json!(h.groups));
    vars.insert("groups".into(), inv.groups_var());
    crate::vars::resolve(&mut vars, templar);
    vars
}

/// A holder role's file on this host, if the role writes one.
fn holder_file(
    h: &Host,
    holder: &Holder,
    vars: &Map<String, Value>,
    templar: &Templar,
) -> Result<Option<CertFile>> {
    let ctx = context(vars);
    let fail = |what: &str, e: String| {
        Error::invalid_noloc(format!(
            "host `{}` (group {}, role {}): cannot work out {what}: {e}",
            h.name, holder.group, holder.role
        ))
    };
    if let Some(cond) = holder.when {
        if !templar
            .eval_cond(cond, &ctx)
            .map_err(|e| fail("whether it holds a certificate", e))?
        {
            return Ok(None);
        }
    }
    let path = templar
        .render_str(holder.path, &ctx)
        .map_err(|e| fail("the certificate path", e))?;
    let name = templar
        .render_str(holder.name, &ctx)
        .map_err(|e| fail("the certificate name", e))?;
    check_path(&path).map_err(|e| fail("the certificate path", e))?;
    Ok(Some(CertFile {
        path,
        kind: CertKind::Client,
        name: Some(name),
    }))
}

/// The checks of `hosts` (those with something to check). `pki_dir`: `--pki-dir`, else each
/// host's `pki_dir` variable.
pub fn targets(inv: &Inventory, hosts: &[String], pki_dir: Option<&Path>) -> Result<Vec<Target>> {
    let templar = Templar::new();
    let has_postgres_group = inv.group_hosts("postgres").is_some();
    let mut out = Vec::new();
    for name in hosts {
        let Some(h) = inv.host(name) else { continue };
        let holders: Vec<&Holder> = HOLDERS
            .iter()
            .filter(|r| h.groups.iter().any(|g| g == r.group))
            .collect();
        let vars = host_vars(inv, h, &holders, &templar);
        let get = |k: &str| vars.get(k).and_then(text);

        let mut files: Vec<CertFile> = Vec::new();
        // A Windows host's files are not read yet (the reading script is POSIX sh): its role
        // rows are left out (README, "Windows targets").
        let windows = matches!(
            crate::connection::powershell::Flavour::from_vars(&vars),
            Ok(Some(_))
        );
        for holder in holders.iter().filter(|_| !windows) {
            if let Some(f) = holder_file(h, holder, &vars, &templar)? {
                if !files.iter().any(|x| x.path == f.path) {
                    files.push(f);
                }
            }
        }
        match vars.get(FILES_VAR) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let f = cert_file(item).map_err(|e| bad(h, FILES_VAR, e))?;
                    match files.iter_mut().find(|x| x.path == f.path) {
                        // The inventory's entry says more than the role's row.
                        Some(x) => *x = f,
                        None => files.push(f),
                    }
                }
            }
            Some(Value::String(s)) if crate::template::is_template(s) => {
                return Err(bad(h, FILES_VAR, format!("cannot render {s:?}")))
            }
            Some(other) => {
                return Err(bad(
                    h,
                    FILES_VAR,
                    format!("expected a list of certificate paths, got {other}"),
                ))
            }
        }

        let server = match vars.get(SERVER_VAR) {
            Some(v) => bool_var(v)
                .ok_or_else(|| bad(h, SERVER_VAR, format!("expected a boolean, got {v}")))?,
            None if has_postgres_group => h.groups.iter().any(|g| g == "postgres"),
            None => files.is_empty(),
        };
        let server = if server {
            let addr = get("ansible_host").unwrap_or_else(|| name.clone());
            let port = match get("pg_port") {
                None => 5432,
                Some(p) => p
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| {
                        bad(
                            h,
                            "pg_port",
                            format!("expected a port number from 1 to 65535, got {p:?}"),
                        )
                    })?,
            };
            let server_name = get("pg_dns_name").unwrap_or_else(|| addr.clone());
            Some(ServerProbe {
                addr,
                port,
                server_name,
            })
        } else {
            None
        };

        // The connection variables of a host whose files are read, checked now.
        if !files.is_empty() && !is_local(name, &vars) {
            let p = SshParams::from_vars_checked(name, &vars).map_err(|e| bad(h, &e.var, e.msg))?;
            if let Some(key) = &p.private_key {
                if !key.is_file() {
                    return Err(bad(
                        h,
                        "ansible_ssh_private_key_file",
                        format!("the key file {} does not exist", key.display()),
                    ));
                }
            }
        }
        if server.is_none() && files.is_empty() {
            // Neither a server nor a holder of certificate files: nothing to check here.
            continue;
        }
        let become_user = vars
            .get("ansible_become")
            .is_some_and(crate::template_filters::truthy)
            .then(|| get("ansible_become_user").unwrap_or_else(|| "root".into()));
        let pki = pki_dir
            .map(Path::to_path_buf)
            .or_else(|| get("pki_dir").map(PathBuf::from));
        out.push(Target {
            host: name.clone(),
            server,
            files,
            vars,
            become_user,
            pki,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_paths_or_mappings_and_never_key_files() {
        assert_eq!(
            cert_file(&json!("/etc/x/client.crt")).unwrap(),
            CertFile {
                path: "/etc/x/client.crt".into(),
                kind: CertKind::Client,
                name: None
            }
        );
        let f = cert_file(&json!({"path": "/srv/tls/server.crt", "name": "db1", "kind": "server"}))
            .unwrap();
        assert_eq!(f.kind, CertKind::Server);
        assert_eq!(f.name.as_deref(), Some("db1"));
        for bad in [
            json!("/etc/x/client.key"),
            json!("/etc/x/CLIENT.PK8"),
            json!("/etc/x/client.pem.pk8"),
            json!("/etc/x/client.pfx"),
            json!("/etc/x/store.p12"),
            json!({"path": "/etc/x/app.jks"}),
        ] {
            let e = cert_file(&bad).unwrap_err();
            assert!(e.contains("never a key file"), "{bad}: {e}");
        }
        for (bad, why) in [
            (json!("client.crt"), "absolute"),
            (json!("/a\nb.crt"), "control"),
            (json!({"name": "x"}), "needs `path`"),
            (json!({"path": "/a.crt", "kind": "ca"}), "client or server"),
            (json!({"path": "/a.crt", "file": "x"}), "unknown key"),
            (json!({"path": "/a.crt", "name": "../x"}), "`name`"),
            (json!(3), "expected a path"),
        ] {
            let e = cert_file(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
