//! What castellan knows about the operating system of a target, without a task: package
//! managers (dpkg/apt, rpm/dnf/yum: the read-only query scripts, their answers, the command
//! lines that change things, and each family's version order), service managers (systemctl,
//! SysV init scripts; Windows services and machine environment variables, in PowerShell) and TCP
//! listeners (`/proc/net`). Everything here builds POSIX `sh` (or PowerShell) text or parses a
//! program's output: no host, no task arguments (those live in `src/modules/`), so each
//! file is tested on strings.
pub mod deb_version;
pub mod dpkg;
pub mod listeners;
pub mod rpm;
pub mod rpm_version;
pub mod systemctl;
pub mod sysv;
pub mod win_env;
pub mod win_service;

use crate::connection::quote::quote_str;

/// One shell word (errors only on a NUL byte).
pub fn sh(s: &str) -> Result<String, String> {
    quote_str(s).map_err(|e| e.to_string())
}

/// Package names and file paths a command line receives: a leading `-` would be read as an
/// option, whitespace or a NUL byte cannot be one name.
pub fn check_word(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("empty {what}"));
    }
    if s.starts_with('-') {
        return Err(format!("{what} `{s}` starts with `-`"));
    }
    if s.chars().any(|c| c.is_whitespace() || c == '\0') {
        return Err(format!("{what} `{s}` contains whitespace"));
    }
    Ok(())
}
