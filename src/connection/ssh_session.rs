//! The persistent sessions of one SSH connection (the protocol is [`super::session`]): one
//! remote loop per user (the login user, and each become user through the usual `sudo -n` /
//! `runuser` wrapping), started on the master on first use, each request sent under a tokio
//! `Mutex` so the requests of concurrent tasks take turns.
//!
//! A session that breaks (killed, end of stream, protocol error) is dropped and a new one is
//! started for the next request; a request the broken session never started is sent again on the
//! new one. A session that cannot make the directory for commands' output (no `mktemp`, no
//! writable `TMPDIR`) refuses commands: they go one channel each, the rest through it. When a
//! session cannot be started (`sudo` wants a password, a login shell that never lets it start)
//! or breaks too often, that user's operations go one
//! channel each, as without sessions; the reason is printed at `-v`.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use openssh::{Session, Stdio};
use tokio::io::BufReader;
use tokio::sync::{Mutex, OwnedSemaphorePermit, RwLock, Semaphore};

use super::session::{self, Runs, SessionError};
use super::ssh_script::{self, BecomeMethod};
use super::ExecOutput;

/// Sessions started per user and connection before giving up on them (the first, and
/// replacements of broken ones).
pub const MAX_STARTS: u32 = 4;
/// Bytes of a session's own stderr kept for its error messages.
const KEEP_STDERR: usize = 4096;

static VERBOSITY: AtomicU8 = AtomicU8::new(0);

/// The environment variable that turns the sessions off (`off`, `0`, `no`, `false`): every
/// operation on a channel of its own, as before sessions existed (a way out, and the baseline
/// of `benches/fleet.sh`).
pub const SESSIONS_ENV: &str = "CASTELLAN_SSH_SESSIONS";

fn sessions_off() -> bool {
    std::env::var(SESSIONS_ENV)
        .ok()
        .and_then(|v| crate::boolean::parse(&v))
        == Some(false)
}

/// `-v` count of the run: at 1 and above, why a session was replaced or not used is printed.
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// Print `label: msg` at `-v` and above.
pub fn note(label: &str, msg: &str) {
    if VERBOSITY.load(Ordering::Relaxed) >= 1 {
        eprintln!("castellan: {label}: {msg}");
    }
}

/// One running remote loop.
struct RemoteShell {
    // Dropping the child closes the channel: the loop reads end of file and exits.
    _child: openssh::Child<Arc<Session>>,
    w: openssh::ChildStdin,
    r: BufReader<openssh::ChildStdout>,
    stderr: Arc<StdMutex<Vec<u8>>>,
    pid: u32,
    /// A request was sent and its reply not read whole (its future was dropped): the stream
    /// is out of step, the session is not used again.
    in_flight: bool,
    /// The channel this session holds, counted against the connection's limit.
    _permit: OwnedSemaphorePermit,
}

impl RemoteShell {
    fn stderr_tail(&self) -> String {
        let b = self
            .stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&b).trim().to_string()
    }
}

#[derive(Default)]
struct Slot {
    shell: Option<RemoteShell>,
    starts: u32,
    /// Why this user's operations go one channel each.
    off: Option<String>,
    /// The session refused a command (no directory for its output): commands go one channel
    /// each, file scripts still through the session.
    no_commands: bool,
}

/// What became of a request.
pub enum Served {
    Done(ExecOutput),
    /// No session for this user: send it on a channel of its own.
    Fallback,
    /// The connection is being interrupted: nothing was sent.
    Interrupted,
    /// The session ended while the request ran.
    Lost(String),
}

/// The sessions of one connection, by become user (`None`: the login user).
#[derive(Default)]
pub struct Sessions {
    slots: StdMutex<HashMap<Option<String>, Arc<Mutex<Slot>>>>,
}

/// What a request needs from its connection.
pub struct Via<'a> {
    pub master: &'a Arc<Session>,
    pub channels: &'a Arc<Semaphore>,
    pub closing: &'a RwLock<bool>,
    pub label: &'a str,
    /// How long a new session may take to be ready (login shell included).
    pub ready_within: Duration,
}

impl Sessions {
    fn slot(&self, user: Option<&str>) -> Arc<Mutex<Slot>> {
        let mut m = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(m.entry(user.map(str::to_string)).or_default())
    }

    /// Drop every session (their loops exit at end of file).
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The pids of the running loops on the host (for tests and diagnostics).
    pub async fn pids(&self) -> Vec<u32> {
        let slots: Vec<Arc<Mutex<Slot>>> = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut v = Vec::new();
        for s in slots {
            if let Some(sh) = &s.lock().await.shell {
                v.push(sh.pid);
            }
        }
        v
    }

    /// Run `script` with `input` as its stdin in the session of `as_user`.
    pub async fn run(
        &self,
        via: &Via<'_>,
        as_user: Option<(&str, BecomeMethod)>,
        script: &str,
        input: Option<&[u8]>,
        runs: Runs,
    ) -> Served {
        if sessions_off() {
            return Served::Fallback;
        }
        let slot = self.slot(as_user.map(|(u, _)| u));
        let mut g = slot.lock().await;
        let who = as_user.map_or(String::new(), |(u, _)| format!(" (as {u})"));
        loop {
            if g.off.is_some() || (runs == Runs::OwnShell && g.no_commands) {
                return Served::Fallback;
            }
            if g.shell.as_ref().is_some_and(|s| s.in_flight) {
                note(via.label, &format!("persistent session{who} out of step (an operation was cancelled); replacing it"));
                g.shell = None;
            }
            if g.shell.is_none() {
                if g.starts >= MAX_STARTS {
                    let why = format!("persistent session{who} broke {MAX_STARTS} times; one channel per operation from now on");
                    note(via.label, &why);
                    g.off = Some(why);
                    return Served::Fallback;
                }
                g.starts += 1;
                match start(via, as_user).await {
                    Ok(sh) => g.shell = Some(sh),
                    Err(why) => {
                        note(
                            via.label,
                            &format!(
                                "no persistent session{who}: {why}; one channel per operation"
                            ),
                        );
                        g.off = Some(why);
                        return Served::Fallback;
                    }
                }
            }
            let Some(sh) = g.shell.as_mut() else {
                return Served::Fallback;
            };
            let gate = via.closing.read().await;
            if *gate {
                return Served::Interrupted;
            }
            sh.in_flight = true;
            // A call of the library the loop holds goes as one line, its input unframed.
            let (script, runs) = match session::library_call(script, ssh_script::library()) {
                Some(call) if runs == Runs::Subshell => (call, Runs::Library),
                _ => (script, runs),
            };
            let sent = session::send(&mut sh.w, &mut sh.r, script, input, runs).await;
            drop(gate);
            let res = match sent {
                Ok(nonce) => session::finish(&mut sh.r, &nonce, runs).await,
                Err(e) => Err(e),
            };
            match res {
                Ok(out) => {
                    sh.in_flight = false;
                    return Served::Done(out);
                }
                Err(SessionError::Refused) => {
                    sh.in_flight = false;
                    let tail = sh.stderr_tail();
                    note(via.label, &format!("persistent session{who} cannot run commands (no directory for their output{}); one channel per command", if tail.is_empty() { String::new() } else { format!(": {tail}") }));
                    g.no_commands = true;
                    return Served::Fallback;
                }
                Err(SessionError::NotRun(why)) => {
                    let tail = sh.stderr_tail();
                    note(via.label, &format!("persistent session{who} broke before the operation started ({why}{}); replacing it", if tail.is_empty() { String::new() } else { format!("; {tail}") }));
                    g.shell = None;
                }
                Err(e @ SessionError::Lost(_)) => {
                    note(via.label, &format!("persistent session{who} lost: {e}"));
                    g.shell = None;
                    return Served::Lost(e.to_string());
                }
            }
        }
    }
}

/// sshd refused to open one more session on the connection (`MaxSessions` reached for a moment).
pub(super) fn is_channel_refused(e: &openssh::Error) -> bool {
    let text = format!("{e} {e:?}");
    text.contains("Session open refused") || text.contains("open failed")
}

/// Start the loop of `as_user` on the master and wait for its greeting.
async fn start(
    via: &Via<'_>,
    as_user: Option<(&str, BecomeMethod)>,
) -> Result<RemoteShell, String> {
    let line = ssh_script::command_line(&session::loop_with(ssh_script::library()), as_user)
        .map_err(|e| e.to_string())?;
    let permit = Arc::clone(via.channels)
        .acquire_owned()
        .await
        .map_err(|_| "connection closed".to_string())?;
    let mut attempt = 0u32;
    let mut child = loop {
        let mut cmd = Session::arc_raw_command(Arc::clone(via.master), &line);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cmd.spawn().await {
            Ok(c) => break c,
            Err(e) if attempt < 50 && is_channel_refused(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt.min(20)))).await;
            }
            Err(e) => return Err(format!("cannot open a channel: {e}")),
        }
    };
    let (Some(mut w), Some(r), Some(err)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err("the channel has no pipes".into());
    };
    let stderr = Arc::new(StdMutex::new(Vec::new()));
    tokio::spawn(session::drain_into(err, Arc::clone(&stderr), KEEP_STDERR));
    let mut r = BufReader::new(r);
    match session::handshake(&mut w, &mut r, via.ready_within).await {
        Ok(pid) => Ok(RemoteShell {
            _child: child,
            w,
            r,
            stderr,
            pid,
            in_flight: false,
            _permit: permit,
        }),
        Err(why) => {
            // Give the drain a moment to collect what the remote side said (sudo's message).
            tokio::time::sleep(Duration::from_millis(20)).await;
            let tail = String::from_utf8_lossy(
                &stderr
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
            .trim()
            .to_string();
            Err(if tail.is_empty() {
                why
            } else {
                format!("{why}: {tail}")
            })
        }
    }
}
