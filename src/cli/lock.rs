//! `castellan --lock FILE COMMAND ...`: at most one run holding FILE at a time. The lock is an
//! exclusive `flock(2)` on FILE, taken before anything else is done and held until the process
//! exits (the kernel releases it then, also after SIGKILL: a stale file never blocks). The
//! holder writes its PID, start time and command name (never its arguments: they may hold a
//! secret) into FILE, so a second run says who holds it and exits [`LOCKED_EXIT`] having done
//! nothing.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The exit code of a run that found the lock held (EX_TEMPFAIL: try again later).
pub const LOCKED_EXIT: i32 = 75;

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: Flock<File>,
    pub path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another run holds it: what its file says about it.
    Held { path: PathBuf, holder: String },
    /// The file cannot be used as a lock.
    Unusable { path: PathBuf, why: String },
}

impl LockError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LockError::Held { .. } => LOCKED_EXIT,
            LockError::Unusable { .. } => 1,
        }
    }
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, holder } => write!(
                f,
                "another castellan run holds the lock {} ({holder}): this run did nothing and \
                 exits {LOCKED_EXIT}; run it again once that one has finished",
                path.display()
            ),
            LockError::Unusable { path, why } => {
                write!(f, "cannot use {} as a lock file: {why}", path.display())
            }
        }
    }
}

/// What a lock file says about its holder, in words.
fn describe_holder(text: &str) -> String {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    match field("pid ") {
        Some(pid) => {
            let mut s = format!("pid {pid}");
            if let Some(t) = field("started ") {
                s.push_str(&format!(", started {t}"));
            }
            if let Some(c) = field("command ") {
                s.push_str(&format!(", `castellan {c}`"));
            }
            s
        }
        None => "its pid is not written yet".into(),
    }
}

/// Take the lock at `path` (created 0644 if missing), for `command` (a subcommand name).
pub fn acquire(path: &Path, command: &str) -> Result<RunLock, LockError> {
    let unusable = |why: String| LockError::Unusable {
        path: path.to_path_buf(),
        why,
    };
    // Never through a symbolic link someone planted in a shared directory such as /run/lock.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(code) if code == nix::libc::ELOOP => unusable("it is a symbolic link".into()),
            _ => unusable(e.to_string()),
        })?;
    let md = file.metadata().map_err(|e| unusable(e.to_string()))?;
    if !md.is_file() {
        return Err(unusable("it is not a regular file".into()));
    }
    if md.uid() != nix::unistd::geteuid().as_raw() {
        return Err(unusable(format!(
            "it belongs to uid {}, not to the user running castellan",
            md.uid()
        )));
    }
    let mut held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held {
                path: path.to_path_buf(),
                holder: describe_holder(&text),
            });
        }
        Err((_, e)) => return Err(unusable(e.to_string())),
    };
    let started = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let record = format!(
        "pid {}\nstarted {started}\ncommand {command}\n",
        std::process::id()
    );
    let write = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(record.as_bytes())?;
        f.sync_data()
    };
    write(&mut held).map_err(|e| unusable(e.to_string()))?;
    Ok(RunLock {
        _file: held,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_holds_it_until_the_first_lets_go() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("run.lock");
        let first = acquire(&p, "playbook").unwrap();
        let e = acquire(&p, "certs").unwrap_err();
        assert_eq!(e.exit_code(), LOCKED_EXIT);
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id()))
                && msg.contains("`castellan playbook`")
                && msg.contains("run.lock"),
            "{msg}"
        );
        drop(first);
        let again = acquire(&p, "certs").unwrap();
        let text = std::fs::read_to_string(&again.path).unwrap();
        assert!(text.contains("command certs\n"), "{text}");
    }

    #[test]
    fn a_planted_link_or_a_directory_is_never_used() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let link = t.path().join("link.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = acquire(&link, "playbook").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let e = acquire(t.path(), "playbook").unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
    }

    #[test]
    fn holders_described() {
        assert_eq!(
            describe_holder("pid 42\nstarted 2026-01-01T00:00:00Z\ncommand playbook\n"),
            "pid 42, started 2026-01-01T00:00:00Z, `castellan playbook`"
        );
        assert_eq!(describe_holder(""), "its pid is not written yet");
    }
}
