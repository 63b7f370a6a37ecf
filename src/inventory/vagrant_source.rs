//! The inventory source `vagrant:PATH`: a Vagrant environment's machines as inventory hosts.
//!
//! - `vagrant:DIR` (a directory with a Vagrantfile): runs `vagrant ssh-config` in DIR.
//! - `vagrant:FILE` (a file): a saved `vagrant ssh-config` output; its directory stands for DIR.
//!
//! Each `Host` block becomes a host in `all` with `ansible_host` (HostName), `ansible_port` (Port),
//! `ansible_user` (User) and `ansible_ssh_private_key_file` (IdentityFile). Castellan writes
//! `DIR/.castellan/vagrant-inventory.json` (read as an ordinary inventory file) and manages
//! `DIR/.castellan/known_hosts` (`castellan_known_hosts` in `all`'s vars): strict host key
//! checking stays on. Keys come from `ssh-keyscan` against the machine's address, once per machine
//! (Vagrant's machine id, `DIR/.vagrant/machines/NAME/PROVIDER/id`) and address: a recreated
//! machine is scanned afresh, while a known machine whose key changed is refused by ssh.
//! `DIR/groups.yml`, when present, is read after it as an ordinary inventory (groups listing the
//! machines by name, group variables; `group_vars/`, `host_vars/` beside it).
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Map, Value};

use super::vagrant_ssh_config::{self, SshHost};
use crate::error::{Error, Result};

/// The prefix of a Vagrant source on the command line.
pub const PREFIX: &str = "vagrant:";

/// The files a `vagrant:` source stands for, in load order: the generated inventory, then
/// `groups.yml` when the environment has one.
pub fn resolve(spec: &Path) -> Result<Option<Vec<PathBuf>>> {
    let Some(rest) = spec.to_str().and_then(|s| s.strip_prefix(PREFIX)) else {
        return Ok(None);
    };
    let path = std::path::absolute(rest).map_err(|e| Error::read(Path::new(rest), &e))?;
    let (dir, text, source) = if path.is_dir() {
        let text = run_ssh_config(&path)?;
        let source = path.join("(vagrant ssh-config)");
        (path, text, source)
    } else if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, &e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, text, path)
    } else {
        return Err(Error::Usage(format!(
            "inventory source {PREFIX}{}: no such directory (a Vagrant environment) or file \
             (a saved `vagrant ssh-config`)",
            path.display()
        )));
    };
    let hosts = vagrant_ssh_config::parse(&text, &source)?;
    if hosts.is_empty() {
        return Err(Error::Usage(format!(
            "inventory source {PREFIX}{}: no machine is described (is the environment up?)",
            dir.display()
        )));
    }
    let state = dir.join(".castellan");
    create_private_dir(&state)?;
    let known_hosts = state.join("known_hosts");
    update_known_hosts(&known_hosts, &dir, &hosts)?;
    let generated = state.join("vagrant-inventory.json");
    let doc = inventory_doc(&hosts, &known_hosts);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Internal(e.to_string()))?;
    write_replace(&generated, text.as_bytes())?;
    let mut files = vec![generated];
    let groups = dir.join("groups.yml");
    if groups.is_file() {
        files.push(groups);
    }
    Ok(Some(files))
}

/// The generated inventory: every machine in `all`, with its connection variables.
pub fn inventory_doc(hosts: &[SshHost], known_hosts: &Path) -> Value {
    let mut out = Map::new();
    for h in hosts {
        let mut v = Map::new();
        v.insert("ansible_host".into(), json!(h.host_name));
        v.insert("ansible_port".into(), json!(h.port));
        if let Some(u) = &h.user {
            v.insert("ansible_user".into(), json!(u));
        }
        if let Some(k) = &h.identity_file {
            v.insert("ansible_ssh_private_key_file".into(), json!(k));
        }
        out.insert(h.name.clone(), Value::Object(v));
    }
    json!({"all": {
        "vars": {"castellan_known_hosts": known_hosts.to_string_lossy()},
        "hosts": out,
    }})
}

fn run_ssh_config(dir: &Path) -> Result<String> {
    let out = Command::new("vagrant")
        .arg("ssh-config")
        .current_dir(dir)
        .output()
        .map_err(|e| {
            Error::Usage(format!(
                "inventory source {PREFIX}{}: cannot run `vagrant ssh-config`: {e}",
                dir.display()
            ))
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let said = said[said.len().saturating_sub(3)..].join(" ");
        if !stdout.contains("Host ") {
            return Err(Error::Usage(format!(
                "inventory source {PREFIX}{}: `vagrant ssh-config` failed ({}): {said}",
                dir.display(),
                out.status
            )));
        }
        // Some machines are up, others not: the inventory holds those that are.
        eprintln!(
            "warning: `vagrant ssh-config` in {} left some machines out: {said}",
            dir.display()
        );
    }
    Ok(stdout)
}

/// Vagrant's id of a machine (any provider), `None` for a machine it has not created.
fn machine_id(dir: &Path, name: &str) -> Option<String> {
    let machines = dir.join(".vagrant").join("machines").join(name);
    let mut providers: Vec<PathBuf> = std::fs::read_dir(machines)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    providers.sort();
    providers.iter().find_map(|p| {
        std::fs::read_to_string(p.join("id"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

/// The known_hosts address of a machine (`[host]:port` unless the port is 22).
fn address(h: &SshHost) -> String {
    if h.port == 22 {
        h.host_name.clone()
    } else {
        format!("[{}]:{}", h.host_name, h.port)
    }
}

/// The marker castellan writes above a machine's key lines.
fn marker(name: &str, id: Option<&str>, addr: &str) -> String {
    format!(
        "# castellan vagrant machine {name} id {} at {addr}",
        id.unwrap_or("-")
    )
}

/// Blocks of the current file, by marker line.
pub fn read_blocks(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("# castellan vagrant machine ") {
            current = Some(line.to_string());
            blocks.entry(line.to_string()).or_default();
        } else if let Some(m) = &current {
            if !line.trim().is_empty() && !line.starts_with('#') {
                blocks.entry(m.clone()).or_default().push(line.to_string());
            }
        }
    }
    blocks
}

fn update_known_hosts(path: &Path, dir: &Path, hosts: &[SshHost]) -> Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::read(path, &e)),
    };
    let blocks = read_blocks(&old);
    let mut out = String::from(
        "# Managed by castellan (inventory source vagrant:): host keys of this environment's \
         machines,\n# scanned once per machine id and address. Edits are overwritten.\n",
    );
    for h in hosts {
        let addr = address(h);
        let m = marker(&h.name, machine_id(dir, &h.name).as_deref(), &addr);
        let lines = match blocks.get(&m).filter(|l| !l.is_empty()) {
            Some(l) => l.clone(),
            None => keyscan(h)?,
        };
        out.push_str(&m);
        out.push('\n');
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    if out != old {
        write_replace(path, out.as_bytes())?;
    }
    Ok(())
}

/// The machine's host keys as known_hosts lines, from `ssh-keyscan`. A machine that does not
/// answer gets no lines (ssh then refuses it: unknown host key) and a warning.
fn keyscan(h: &SshHost) -> Result<Vec<String>> {
    let out = Command::new("ssh-keyscan")
        .args(["-T", "5", "-t", "ed25519,ecdsa,rsa", "-p"])
        .arg(h.port.to_string())
        .arg(&h.host_name)
        .output()
        .map_err(|e| Error::Usage(format!("cannot run ssh-keyscan: {e}")))?;
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        eprintln!(
            "warning: no host key from {} ({}): ssh will refuse it until it answers",
            h.name,
            address(h)
        );
    }
    Ok(lines)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(cannot_write(dir, &e)),
    }
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Error {
    Error::Usage(format!("cannot write {}: {e}", path.display()))
}

/// Replace a file whole (a temp file beside it, renamed): never half written.
fn write_replace(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cannot_write(dir, &e))?;
    tmp.write_all(content)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| cannot_write(path, &e))?;
    tmp.persist(path)
        .map_err(|e| cannot_write(path, &e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
