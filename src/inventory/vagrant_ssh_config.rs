//! The text `vagrant ssh-config` prints (OpenSSH client configuration, one `Host` block per
//! machine), read into the four settings castellan maps to connection variables. Pure: the
//! caller says where the text came from (a saved file, or the command's output), for errors.
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Location, Result};

/// One machine of a Vagrant environment as `vagrant ssh-config` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    /// `Host`: the machine's name in the Vagrantfile (the inventory host name).
    pub name: String,
    /// `HostName` (address the machine is reached at).
    pub host_name: String,
    /// `Port` (22 when absent, as OpenSSH).
    pub port: u16,
    /// `User`.
    pub user: Option<String>,
    /// The first `IdentityFile` (Vagrant lists the generated key before the insecure one).
    pub identity_file: Option<String>,
}

/// Settings Vagrant prints that castellan knows and does not map: castellan keeps strict host
/// key checking on and its own known_hosts, and picks its own ssh options.
const IGNORED: &[&str] = &[
    "userknownhostsfile",
    "stricthostkeychecking",
    "passwordauthentication",
    "identitiesonly",
    "loglevel",
    "pubkeyacceptedkeytypes",
    "pubkeyacceptedalgorithms",
    "hostkeyalgorithms",
    "forwardagent",
    "forwardx11",
    "forwardx11trusted",
    "serveraliveinterval",
    "serveralivecountmax",
];

/// Parse `vagrant ssh-config` output. `source` names the file (or the command) in errors.
pub fn parse(text: &str, source: &Path) -> Result<Vec<SshHost>> {
    let file = Arc::new(source.to_path_buf());
    let mut hosts: Vec<SshHost> = Vec::new();
    let mut current: Option<(SshHost, Location)> = None;
    for (i, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let loc = Location::new(&file, i + 1, indent + 1);
        let (key, value) = split_option(line).ok_or_else(|| {
            Error::invalid(&loc, format!("expected `Keyword value`, found {line:?}"))
        })?;
        let value_loc = Location::new(&file, i + 1, indent + 1 + (line.len() - value.len()));
        let value = unquote(value, &value_loc)?;
        let key_lc = key.to_ascii_lowercase();
        if key_lc == "host" {
            if let Some((h, l)) = current.take() {
                hosts.push(finish(h, &l)?);
            }
            if value.split_whitespace().count() != 1 || value.contains(['*', '?', '!']) {
                return Err(Error::invalid(
                    &value_loc,
                    format!("expected one machine name after `Host`, found {value:?}"),
                ));
            }
            if hosts.iter().any(|h| h.name == value) {
                return Err(Error::invalid(
                    &value_loc,
                    format!("machine `{value}` is described twice"),
                ));
            }
            current = Some((
                SshHost {
                    name: value,
                    host_name: String::new(),
                    port: 22,
                    user: None,
                    identity_file: None,
                },
                loc,
            ));
            continue;
        }
        let Some((host, _)) = current.as_mut() else {
            return Err(Error::invalid(
                &loc,
                format!("`{key}` before the first `Host` line"),
            ));
        };
        match key_lc.as_str() {
            "hostname" => host.host_name = value,
            "port" => {
                host.port = value.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    Error::invalid(
                        &value_loc,
                        format!("expected a port number, found {value:?}"),
                    )
                })?
            }
            "user" => host.user = Some(value),
            "identityfile" => {
                if host.identity_file.is_none() {
                    host.identity_file = Some(value);
                }
            }
            "proxycommand" | "proxyjump" => {
                return Err(Error::invalid(
                    &loc,
                    format!(
                        "`{key}` is not supported: castellan connects to the machine's address \
                         directly (a Docker provider on a host VM needs the VM's network)"
                    ),
                ))
            }
            k if IGNORED.contains(&k) => {}
            _ => {
                return Err(Error::invalid(
                    &loc,
                    format!("unknown ssh-config keyword `{key}` in a Vagrant ssh-config"),
                ))
            }
        }
    }
    if let Some((h, l)) = current.take() {
        hosts.push(finish(h, &l)?);
    }
    Ok(hosts)
}

fn finish(host: SshHost, loc: &Location) -> Result<SshHost> {
    if host.host_name.is_empty() {
        return Err(Error::invalid(
            loc,
            format!("machine `{}` has no `HostName`", host.name),
        ));
    }
    Ok(host)
}

/// `Keyword value` or `Keyword=value` (OpenSSH accepts both).
fn split_option(line: &str) -> Option<(&str, &str)> {
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let key = &line[..end];
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    (!key.is_empty() && !rest.is_empty()).then_some((key, rest))
}

/// A value in double quotes (Vagrant quotes paths with spaces) or a bare one.
fn unquote(value: &str, loc: &Location) -> Result<String> {
    match value.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .filter(|s| !s.contains('"'))
            .map(str::to_string)
            .ok_or_else(|| Error::invalid(loc, format!("unbalanced quotes in {value:?}"))),
        None => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests;
