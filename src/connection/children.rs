//! Local commands and what they start: each one runs in a process group of its own, known here
//! while it runs, so that an interrupt ends the whole group (a `sh -c` and its `sleep`, a
//! `runuser` and its command) rather than the first process only, and so that a terminal's
//! Ctrl-C reaches castellan alone, which then decides (see `engine/interrupt.rs`).
//!
//! A command whose future is dropped before it finished takes its group with it (SIGKILL). A
//! command that finished normally leaves its group alone: what it started in the background on
//! purpose keeps running, as with Ansible.
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Set by the first interrupt: no new local command starts.
static CLOSING: AtomicBool = AtomicBool::new(false);
/// Process groups of the local commands running now.
static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn groups() -> std::sync::MutexGuard<'static, Option<HashSet<i32>>> {
    GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running command's process group, registered until the command ends.
#[derive(Debug)]
pub struct Group {
    pgid: i32,
    done: bool,
}

impl Group {
    /// The command exited on its own: forget the group, leave its background processes be.
    pub fn finished(mut self) {
        self.done = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(g) = groups().as_mut() {
            g.remove(&self.pgid);
        }
        if !self.done {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
    }
}

/// Start `cmd` as the leader of a new process group and register the group. Refused (an
/// `Interrupted` error) once an interrupt began.
pub fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<(tokio::process::Child, Group)> {
    cmd.process_group(0).kill_on_drop(true);
    // The lock covers the check, the spawn and the registration: an interrupt sees every
    // command that started before it, and none starts after it.
    let mut g = groups();
    if CLOSING.load(Ordering::SeqCst) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "interrupted: no new command is started",
        ));
    }
    let child = cmd.spawn()?;
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| std::io::Error::other("the command exited before it was registered"))?;
    g.get_or_insert_with(HashSet::new).insert(pgid);
    Ok((child, Group { pgid, done: false }))
}

fn running() -> Vec<i32> {
    groups()
        .as_ref()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default()
}

/// The interrupt: no new command; SIGTERM to every running group (once: a second one could cut
/// a cleanup trap short), SIGKILL to those still running 2 s later. Returns what could not be
/// ended.
pub async fn interrupt_all() -> Vec<String> {
    {
        let _g = groups();
        CLOSING.store(true, Ordering::SeqCst);
    }
    for (signal, wait) in [
        (Signal::SIGTERM, Duration::from_secs(2)),
        (Signal::SIGKILL, Duration::from_secs(1)),
    ] {
        let left = running();
        if left.is_empty() {
            return Vec::new();
        }
        for pgid in &left {
            let _ = killpg(Pid::from_raw(*pgid), signal);
        }
        // The owners of the groups see their command end and unregister them.
        let deadline = Instant::now() + wait;
        while !running().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let left = running();
    if left.is_empty() {
        Vec::new()
    } else {
        vec![format!("local process groups still running: {left:?}")]
    }
}
