//! `ansible_connection: ssh`: one OpenSSH ControlMaster per host, every operation one command on
//! the multiplexed connection (the `openssh` crate's native mux client).
//!
//! * The master is started lazily on first use (or eagerly with [`SshConnection::connect`]) as a
//!   foreground `ssh -M -N` child in its own process group (a terminal Ctrl-C does not cut hosts
//!   off mid-write; the engine decides), with its control socket in a private 0700 temp directory.
//!   [`Connection::close`] (or [`close_all`]) stops it and removes the directory; dropping the
//!   connection kills it too.
//! * Host keys are checked strictly by default; `accept_new_host_keys` switches to
//!   `StrictHostKeyChecking=accept-new`, but only together with a known_hosts file of our own
//!   (`castellan_known_hosts`): the user's `~/.ssh/known_hosts` is never written unasked, and
//!   `UpdateHostKeys=no` stops ssh from adding the other host key types a server offers.
//! * The remote scripts live in [`super::ssh_script`]; they run in the persistent session of their
//!   user ([`super::ssh_session`]), else one channel each; at most [`MAX_CHANNELS`] channels (the
//!   sessions' included) are open at once per host (sshd's `MaxSessions` defaults to 10).
//! * A master that dies (host killed, network gone) makes every later call return
//!   [`ConnError::Unreachable`] at once; `ServerAliveInterval` bounds a silent network loss.
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openssh::{Session, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, OnceCell, RwLock, Semaphore};

use super::session::Runs;
use super::ssh_session::{is_channel_refused, Served, Sessions, Via};

use super::ssh_script::{self, BecomeMethod, RemoteUser};
use super::{stat_batch, stdin_script};
use super::{
    ConnError, Connection, ExecOutput, ExecRequest, Fetched, FileState, Op, OpOutput, Want,
};

/// Concurrent channels (commands) per host: below sshd's default `MaxSessions 10`.
pub const MAX_CHANNELS: usize = 8;
/// Default for `connect_timeout` (Ansible's `timeout` default is 10 s too).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest control socket path we accept: `sun_path` is 108 bytes and ssh binds a temporary name
/// 17 bytes longer before renaming it.
const MAX_CTL_PATH: usize = 90;

/// Longest connection timeout (`ansible_timeout`) accepted, in seconds: one hour.
pub const MAX_CONNECT_TIMEOUT_S: f64 = 3600.0;

/// A connection variable with a bad value: which variable, and the message (which names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub var: String,
    pub msg: String,
}

/// A user name for ssh (`ansible_user`) or for become: a name, not an option or a list.
pub fn check_user_name(user: &str) -> Result<(), String> {
    if user.is_empty()
        || user.len() > 256
        || user.starts_with('-')
        || user.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "invalid user name {user:?} (a login name: no spaces, not starting with `-`)"
        ));
    }
    Ok(())
}

/// How to reach one host: Ansible's connection variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshParams {
    /// `ansible_host`, else the inventory name.
    pub host: String,
    /// `ansible_port`; None lets ssh (and `~/.ssh/config`) decide.
    pub port: Option<u16>,
    /// `ansible_user`; None lets ssh decide.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file` (then only this key is offered).
    pub private_key: Option<PathBuf>,
    /// `ansible_ssh_common_args` then `ansible_ssh_extra_args`, split like a POSIX shell.
    pub common_args: Vec<String>,
    /// `castellan_known_hosts`: the known_hosts file to check against (and to add to).
    pub known_hosts: Option<PathBuf>,
    /// `castellan_accept_new_host_keys` or `--accept-new-host-keys`: add unknown keys to
    /// `known_hosts` (only when that is set); changed keys are still refused.
    pub accept_new_host_keys: bool,
    /// `ansible_ssh_timeout` / `ansible_timeout` (seconds), default 10 s.
    pub connect_timeout: Duration,
    /// Where to create the private control directory (default: the system temp dir). A test
    /// fleet puts it under its fleet dir so `tests/fleet/down.sh` finds stray masters.
    pub control_dir: Option<PathBuf>,
}

impl SshParams {
    /// Parameters for `host` with every option left to ssh.
    pub fn new(host: impl Into<String>) -> SshParams {
        SshParams {
            host: host.into(),
            port: None,
            user: None,
            private_key: None,
            common_args: Vec::new(),
            known_hosts: None,
            accept_new_host_keys: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            control_dir: None,
        }
    }

    /// Read Ansible's connection variables of host `name` (already templated).
    pub fn from_vars(
        name: &str,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<SshParams, String> {
        Self::from_vars_checked(name, vars).map_err(|e| e.msg)
    }

    /// [`SshParams::from_vars`], saying which variable is wrong: the check run for every
    /// targeted host before any is contacted points at where that variable was written.
    pub fn from_vars_checked(
        name: &str,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<SshParams, ParamError> {
        let bad = |var: &str, msg: String| ParamError {
            var: var.to_string(),
            msg: format!("{var}: {msg}"),
        };
        let text = |key: &str| -> Result<Option<String>, ParamError> {
            match vars.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(bad(key, format!("expected a string, got {other}"))),
            }
        };
        // The first of `keys` that is set, and which one it was.
        let first = |keys: &[&'static str]| -> Result<Option<(&'static str, String)>, ParamError> {
            for k in keys {
                if let Some(v) = text(k)? {
                    return Ok(Some((k, v)));
                }
            }
            Ok(None)
        };
        let host = first(&["ansible_host", "ansible_ssh_host"])?;
        let host_var = host.as_ref().map_or("ansible_host", |(k, _)| k);
        let mut p = SshParams::new(host.map_or_else(|| name.to_string(), |(_, h)| h));
        if p.host.is_empty()
            || p.host.starts_with('-')
            || p.host.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(host_var, format!("invalid host name {:?}", p.host)));
        }
        if let Some((key, port)) = first(&["ansible_port", "ansible_ssh_port"])? {
            p.port = Some(
                port.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        bad(
                            key,
                            format!("expected a port number from 1 to 65535, got {port:?}"),
                        )
                    })?,
            );
        }
        if let Some((key, user)) = first(&["ansible_user", "ansible_ssh_user"])? {
            if !user.is_empty() {
                check_user_name(&user).map_err(|m| bad(key, m))?;
                p.user = Some(user);
            }
        }
        p.private_key = first(&["ansible_ssh_private_key_file", "ansible_private_key_file"])?
            .filter(|(_, k)| !k.is_empty())
            .map(|(_, k)| expand_tilde(&k));
        for key in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
            if let Some(args) = text(key)? {
                p.common_args.extend(
                    shlex::split(&args)
                        .ok_or_else(|| bad(key, format!("unbalanced quotes in {args:?}")))?,
                );
            }
        }
        p.known_hosts = text("castellan_known_hosts")?
            .filter(|k| !k.is_empty())
            .map(|k| expand_tilde(&k));
        if let Some(v) = vars.get("castellan_accept_new_host_keys") {
            p.accept_new_host_keys = bool_var(v).ok_or_else(|| {
                bad(
                    "castellan_accept_new_host_keys",
                    format!("expected a boolean, got {v}"),
                )
            })?;
        }
        if let Some((key, t)) = first(&["ansible_ssh_timeout", "ansible_timeout"])? {
            let secs: f64 = t
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= MAX_CONNECT_TIMEOUT_S)
                .ok_or_else(|| {
                    bad(
                        key,
                        format!(
                            "expected a number of seconds above 0 and up to \
                             {MAX_CONNECT_TIMEOUT_S}, got {t:?}"
                        ),
                    )
                })?;
            p.connect_timeout = Duration::from_secs_f64(secs);
        }
        Ok(p)
    }

    fn label(&self) -> String {
        self.host.clone()
    }
}

/// A boolean connection variable (`yes`, `no`, `true`, `1`...); None for anything else.
pub fn bool_var(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => n.as_i64().map(|n| n != 0),
        serde_json::Value::String(s) if s.is_empty() => Some(false),
        serde_json::Value::String(s) => crate::boolean::parse(s),
        _ => None,
    }
}

fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// An `-o Key=Value` whose value is a path: double-quoted when it holds spaces.
fn path_option(key: &str, path: &Path) -> OsString {
    let mut o = OsString::from(format!("{key}="));
    let s = path.as_os_str();
    if s.to_string_lossy().contains(char::is_whitespace) {
        o.push("\"");
        o.push(s);
        o.push("\"");
    } else {
        o.push(s);
    }
    o
}

/// The arguments of the master `ssh` process. Ours that make it a private, foreground,
/// non-interactive master come first, then the inventory's `common_args` (so a user's explicit
/// `-o` wins, as with Ansible), then our defaults.
pub fn master_args(p: &SshParams, ctl: &Path, log: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    for s in [
        "-M",
        "-N",
        "-o",
        "ControlMaster=yes",
        "-o",
        "ControlPersist=no",
        "-o",
        "BatchMode=yes",
    ] {
        push(s);
    }
    a.push("-S".into());
    a.push(ctl.into());
    a.push("-E".into());
    a.push(log.into());
    a.extend(p.common_args.iter().map(OsString::from));
    let strict = if p.accept_new_host_keys && p.known_hosts.is_some() {
        "accept-new"
    } else {
        "yes"
    };
    a.push("-o".into());
    a.push(format!("StrictHostKeyChecking={strict}").into());
    // ssh's default (`UpdateHostKeys=yes` with the default known_hosts) would append every host
    // key type the server offers to ~/.ssh/known_hosts: we never write it unasked. An explicit
    // `-o UpdateHostKeys=...` in `ansible_ssh_common_args` comes first and so still wins.
    a.push("-o".into());
    a.push("UpdateHostKeys=no".into());
    if let Some(kh) = &p.known_hosts {
        a.push("-o".into());
        a.push(path_option("UserKnownHostsFile", kh));
    }
    let secs = p.connect_timeout.as_secs_f64().ceil().max(1.0) as u64;
    for o in [
        format!("ConnectTimeout={secs}"),
        "ServerAliveInterval=5".into(),
        "ServerAliveCountMax=3".into(),
    ] {
        a.push("-o".into());
        a.push(o.into());
    }
    if let Some(port) = p.port {
        a.push("-p".into());
        a.push(port.to_string().into());
    }
    if let Some(user) = &p.user {
        a.push("-l".into());
        a.push(user.into());
    }
    if let Some(key) = &p.private_key {
        a.push("-o".into());
        a.push("IdentitiesOnly=yes".into());
        a.push("-i".into());
        a.push(key.into());
    }
    a.push("--".into());
    a.push(p.host.clone().into());
    a
}

/// The meaningful lines of ssh's log (not the "Permanently added" notes), joined.
fn log_summary(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join("; ")
}

/// Turn a failed master's log into a message that says what to do.
pub fn connect_error_message(p: &SshParams, log: &str) -> String {
    let host = &p.host;
    let port = p.port.unwrap_or(22);
    let said = log_summary(log);
    let kh = p.known_hosts.as_ref().map_or_else(
        || "~/.ssh/known_hosts".to_string(),
        |k| k.display().to_string(),
    );
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        format!(
            "host key for {host} has changed (possible man-in-the-middle); if the change is \
             expected, remove the old key from {kh} (ssh-keygen -R {host}) and connect again"
        )
    } else if log.contains("Host key verification failed")
        || log.contains("host key is known")
        || log.contains("No matching host key")
    {
        let hint = if p.accept_new_host_keys && p.known_hosts.is_none() {
            " (--accept-new-host-keys needs castellan_known_hosts: castellan never writes \
             ~/.ssh/known_hosts)"
        } else {
            ""
        };
        format!(
            "host key for {host} is unknown or changed; add it to {kh} or use \
             --accept-new-host-keys{hint}"
        )
    } else if log.contains("Connection refused") {
        format!("cannot connect to {host} port {port}: connection refused (is sshd running?)")
    } else if log.contains("timed out") {
        format!(
            "cannot connect to {host} port {port}: timed out after {}s",
            p.connect_timeout.as_secs_f64().ceil()
        )
    } else if log.contains("Permission denied") {
        let who = p.user.as_deref().map_or(String::new(), |u| format!("{u}@"));
        format!(
            "authentication to {who}{host} failed ({said}); check ansible_user and \
             ansible_ssh_private_key_file"
        )
    } else if log.contains("Could not resolve hostname") {
        format!("cannot resolve host name {host}: {said}")
    } else if said.is_empty() {
        format!("ssh to {host} failed")
    } else {
        format!("ssh to {host} failed: {said}")
    }
}

fn read_log(path: &Path) -> String {
    let mut s = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut s);
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// A running ControlMaster.
struct Master {
    session: Arc<Session>,
    child: StdMutex<tokio::process::Child>,
    dir: StdMutex<Option<tempfile::TempDir>>,
    ctl: PathBuf,
    log: PathBuf,
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Master {
    async fn launch(p: &SshParams) -> Result<Master, ConnError> {
        let label = p.label();
        let parent = p.control_dir.clone().unwrap_or_else(std::env::temp_dir);
        let local_err = |what: &str, e: std::io::Error| {
            ConnError::Unreachable(format!("{label}: cannot {what}: {e}"))
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| local_err(&format!("create {}", parent.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix("castellan-ssh-")
            .tempdir_in(&parent)
            .map_err(|e| local_err("create the ssh control directory", e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| local_err("protect the ssh control directory", e))?;
        let ctl = dir.path().join("ctl");
        let log = dir.path().join("log");
        if ctl.as_os_str().len() > MAX_CTL_PATH {
            return Err(ConnError::Unreachable(format!(
                "{label}: ssh control socket path {} is too long; use a shorter control directory",
                ctl.display()
            )));
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log)
            .map_err(|e| local_err("create the ssh log", e))?;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(master_args(p, &ctl, &log))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            ConnError::Unreachable(format!(
                "{label}: cannot run ssh ({e}); install the OpenSSH client"
            ))
        })?;
        let deadline = Instant::now() + p.connect_timeout + Duration::from_secs(5);
        let mut pause = Duration::from_millis(2);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    return Err(ConnError::Unreachable(connect_error_message(
                        p,
                        &read_log(&log),
                    )))
                }
                Ok(None) => {}
                Err(e) => return Err(local_err("watch the ssh process", e)),
            }
            if ctl.exists() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Err(ConnError::Unreachable(format!(
                    "cannot connect to {label}: no ssh connection after {:.0}s",
                    (p.connect_timeout + Duration::from_secs(5)).as_secs_f64()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        let session = Arc::new(Session::resume_mux(ctl.clone().into_boxed_path(), None));
        Ok(Master {
            session,
            child: StdMutex::new(child),
            dir: StdMutex::new(Some(dir)),
            ctl,
            log,
        })
    }

    /// Why the master is gone, when it is.
    fn exited(&self) -> Option<String> {
        match lock(&self.child).try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("{status}; {}", log_summary(&read_log(&self.log)))),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Stop the master (SIGTERM: ssh closes the connection and removes its socket; SIGKILL after
    /// 3 s) and remove the control directory.
    async fn shutdown(&self) {
        let pid = lock(&self.child).id();
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            // The child is not reaped yet (we hold it), so the pid cannot have been reused.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut killed = false;
        loop {
            {
                let mut c = lock(&self.child);
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if !killed && Instant::now() >= deadline => {
                        let _ = c.start_kill();
                        killed = true;
                    }
                    Ok(None) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(d) = lock(&self.dir).take() {
            let _ = d.close();
        }
    }
}

enum State {
    Idle,
    Up(Arc<Master>),
    Down(ConnError),
    Closed,
}

struct Inner {
    params: SshParams,
    state: Mutex<State>,
    channels: Arc<Semaphore>,
    sessions: Sessions,
    whoami: OnceCell<RemoteUser>,
    /// Set by an interrupt: no new channel opens. A channel being opened holds it for reading
    /// until the remote command has started, so the sweep that follows sees it.
    closing: RwLock<bool>,
    /// The users commands ran as through become: the sweep runs as each of them too.
    became: StdMutex<Vec<(String, BecomeMethod)>>,
    /// Directories of writes made through a session whose entries (the renames) are not yet
    /// flushed to disk, by the user who wrote there: flushed before the next command on the
    /// host and when the connection closes ([`Inner::flush_dirs`]).
    unsynced: StdMutex<Vec<(Option<String>, String)>>,
}

static LIVE: StdMutex<Vec<Weak<Inner>>> = StdMutex::new(Vec::new());

/// Close every SSH connection of this process that is still open (for the end of a run and for
/// Ctrl-C).
pub async fn close_all() {
    let live: Vec<Arc<Inner>> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    futures::future::join_all(live.iter().map(|i| i.close())).await;
}

/// The interrupt (SIGINT/SIGTERM): on every open connection, refuse new commands and end the
/// ones running (their whole sessions: see [`ssh_script::SWEEP_SCRIPT`]). A remote command does
/// not die when its channel or the master closes: without this, a `sleep` or a write script
/// would go on running on the host. The connections stay open (closed at the end of the run).
/// Returns what could not be done, per host.
pub async fn interrupt_all() -> Vec<String> {
    let live: Vec<Arc<Inner>> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    futures::future::join_all(live.iter().map(|i| i.interrupt()))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// An SSH connection to one host; cheap to share (`Arc` inside), safe to use concurrently.
#[derive(Clone)]
pub struct SshConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SshConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshConnection")
            .field("params", &self.inner.params)
            .finish()
    }
}

impl SshConnection {
    /// A connection that starts its master on first use.
    pub fn new(params: SshParams) -> SshConnection {
        let inner = Arc::new(Inner {
            params,
            state: Mutex::new(State::Idle),
            channels: Arc::new(Semaphore::new(MAX_CHANNELS)),
            sessions: Sessions::default(),
            whoami: OnceCell::new(),
            closing: RwLock::new(false),
            became: StdMutex::new(Vec::new()),
            unsynced: StdMutex::new(Vec::new()),
        });
        let mut live = lock(&LIVE);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&inner));
        SshConnection { inner }
    }

    /// A connection with its master started now.
    pub async fn connect(params: SshParams) -> Result<SshConnection, ConnError> {
        let c = SshConnection::new(params);
        c.inner.master().await?;
        Ok(c)
    }

    pub fn params(&self) -> &SshParams {
        &self.inner.params
    }

    /// The control socket of the running master, if one runs.
    pub async fn control_path(&self) -> Option<PathBuf> {
        match &*self.inner.state.lock().await {
            State::Up(m) => Some(m.ctl.clone()),
            _ => None,
        }
    }

    /// One command line as it is, on a channel of the master (Windows hosts run their fixed
    /// PowerShell bootstrap through it: [`super::windows`]).
    pub async fn run_line(
        &self,
        line: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ConnError> {
        let m = self.inner.master().await?;
        self.inner.raw(&m, line, stdin).await
    }

    /// The pids (on the host) of the persistent sessions' shells now running.
    pub async fn session_pids(&self) -> Vec<u32> {
        self.inner.sessions.pids().await
    }

    /// The local pid of the running master, if one runs.
    pub async fn master_pid(&self) -> Option<u32> {
        match &*self.inner.state.lock().await {
            State::Up(m) => lock(&m.child).id(),
            _ => None,
        }
    }
}

fn interrupted() -> ConnError {
    ConnError::Failed("interrupted: no new command is started".into())
}

fn quote_err(e: super::quote::QuoteError) -> ConnError {
    ConnError::Failed(e.to_string())
}

/// The error of a script that exited non-zero: its stderr, else the exit code.
fn script_failed(what: &str, out: &ExecOutput) -> ConnError {
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    if err.is_empty() {
        ConnError::Failed(format!("{what} failed (exit code {})", out.rc))
    } else {
        ConnError::Failed(err.to_string())
    }
}

impl Inner {
    async fn master(&self) -> Result<Arc<Master>, ConnError> {
        let mut st = self.state.lock().await;
        match &*st {
            State::Up(m) => match m.exited() {
                None => Ok(Arc::clone(m)),
                Some(why) => {
                    let e = self.lost(&why);
                    *st = State::Down(e.clone());
                    Err(e)
                }
            },
            State::Down(e) => Err(e.clone()),
            State::Closed => Err(ConnError::Unreachable(format!(
                "connection to {} was closed",
                self.params.label()
            ))),
            State::Idle => match Master::launch(&self.params).await {
                Ok(m) => {
                    let m = Arc::new(m);
                    *st = State::Up(Arc::clone(&m));
                    Ok(m)
                }
                Err(e) => {
                    *st = State::Down(e.clone());
                    Err(e)
                }
            },
        }
    }

    fn lost(&self, why: &str) -> ConnError {
        ConnError::Unreachable(format!(
            "connection to {} lost ({why})",
            self.params.label()
        ))
    }

    /// Flush the directories writes left unsynced, one request per user. A write's data was
    /// flushed before its rename: until this runs, a crash can only undo a rename, never leave a
    /// file half-written. Errors are the write's own business (it succeeded): noted at `-v`.
    async fn flush_dirs(&self) {
        let pending = std::mem::take(&mut *lock(&self.unsynced));
        let mut users: Vec<Option<String>> = Vec::new();
        for (u, _) in &pending {
            if !users.contains(u) {
                users.push(u.clone());
            }
        }
        for user in users {
            let dirs: Vec<String> = pending
                .iter()
                .filter(|(u, _)| *u == user)
                .map(|(_, d)| d.clone())
                .collect();
            let script = ssh_script::sync_script(&dirs).map_err(quote_err);
            let res = match script {
                Ok(s) => self.run(&s, user.as_deref(), None).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                super::ssh_session::note(
                    &self.params.host,
                    &format!("flushing {} to disk: {e}", dirs.join(", ")),
                );
            }
        }
    }

    /// A write through a session left its directory to [`Inner::flush_dirs`].
    fn unsynced(&self, become_user: Option<&str>, dir: String) {
        let mut u = lock(&self.unsynced);
        let entry = (become_user.map(str::to_string), dir);
        if !u.contains(&entry) {
            u.push(entry);
        }
    }

    async fn close(&self) {
        if !lock(&self.unsynced).is_empty()
            && matches!(&*self.state.lock().await, State::Up(m) if m.exited().is_none())
            && !*self.closing.read().await
        {
            self.flush_dirs().await;
        }
        let old = std::mem::replace(&mut *self.state.lock().await, State::Closed);
        self.sessions.clear();
        if let State::Up(m) = old {
            m.shutdown().await;
        }
    }

    /// Refuse new commands, then sweep the master's other sessions as the login user and as
    /// each become user. A host still connecting or gone has nothing to sweep.
    async fn interrupt(&self) -> Option<String> {
        *self.closing.write().await = true;
        let m = match self.state.try_lock() {
            Ok(st) => match &*st {
                State::Up(m) if m.exited().is_none() => Arc::clone(m),
                _ => return None,
            },
            Err(_) => return None,
        };
        let mut users: Vec<Option<(String, BecomeMethod)>> = vec![None];
        users.extend(lock(&self.became).iter().cloned().map(Some));
        let mut problems = Vec::new();
        for u in users {
            let line = match ssh_script::command_line(
                ssh_script::SWEEP_SCRIPT,
                u.as_ref().map(|(name, method)| (name.as_str(), *method)),
            ) {
                Ok(l) => l,
                Err(e) => return Some(e.to_string()),
            };
            let run = async {
                let mut cmd = m.session.raw_command(&line);
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                cmd.spawn().await?.wait_with_output().await
            };
            match tokio::time::timeout(Duration::from_secs(10), run).await {
                Ok(Ok(o)) if o.status.success() => {}
                Ok(Ok(o)) => problems.push(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Ok(Err(e)) => problems.push(e.to_string()),
                Err(_) => problems.push("no answer within 10 s".into()),
            }
        }
        (!problems.is_empty()).then(|| {
            format!(
                "{}: commands may still run: {}",
                self.params.label(),
                problems.join("; ")
            )
        })
    }

    /// Map an error of the mux client: a dead master means the host is unreachable.
    async fn ssh_error(&self, m: &Master, e: openssh::Error) -> ConnError {
        // The socket may close a moment before the master process exits.
        for _ in 0..20 {
            if let Some(why) = m.exited() {
                return self.lost(&why);
            }
            if !matches!(
                e,
                openssh::Error::Disconnected | openssh::Error::RemoteProcessTerminated
            ) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match e {
            openssh::Error::Disconnected => self.lost("disconnected"),
            openssh::Error::RemoteProcessTerminated => {
                // Under load the master may outlive its dead connection by more than the wait
                // above: a new channel tells a command killed on a live host (it opens) from a
                // host that is gone (it cannot).
                if self.alive(m).await {
                    ConnError::Failed("the remote command was terminated by a signal".into())
                } else {
                    self.lost(&m.exited().unwrap_or_else(|| "no answer".into()))
                }
            }
            other => {
                let source = std::error::Error::source(&other)
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default();
                ConnError::Failed(format!("ssh {}: {other}{source}", self.params.label()))
            }
        }
    }

    /// Whether the host still answers on this master: `true` runs on a new channel within 5 s.
    async fn alive(&self, m: &Master) -> bool {
        let mut cmd = m.session.raw_command("true");
        matches!(
            tokio::time::timeout(Duration::from_secs(5), cmd.status()).await,
            Ok(Ok(st)) if st.success()
        )
    }

    /// One command line on the master: one channel, one round trip.
    async fn raw(
        &self,
        m: &Master,
        cmdline: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ConnError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|_| ConnError::Unreachable("connection closed".into()))?;
        let gate = self.closing.read().await;
        if *gate {
            return Err(interrupted());
        }
        // sshd counts a session until its channel close is done, which can lag behind our
        // end of the command: a refused channel open never ran anything, so it is retried.
        let mut attempt = 0u32;
        let mut child = loop {
            let mut cmd = m.session.raw_command(cmdline);
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            match cmd.spawn().await {
                Ok(c) => break c,
                Err(e) if attempt < 50 && is_channel_refused(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt.min(20)))).await;
                }
                Err(e) => return Err(self.ssh_error(m, e).await),
            }
        };
        drop(gate);
        let input = child.stdin().take();
        let feed = async move {
            if let (Some(mut w), Some(data)) = (input, stdin) {
                // A command that stops reading early closes the pipe; that is its business.
                let _ = w.write_all(data).await;
                let _ = w.shutdown().await;
            }
        };
        let (_, out) = tokio::join!(feed, child.wait_with_output());
        match out {
            Ok(o) => Ok(ExecOutput {
                rc: o.status.code().unwrap_or(-1),
                stdout: o.stdout,
                stderr: o.stderr,
            }),
            Err(e) => Err(self.ssh_error(m, e).await),
        }
    }

    /// Run a script (as `become_user` when that is not the login user).
    async fn run(
        &self,
        script: &str,
        become_user: Option<&str>,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ConnError> {
        self.run_in("/bin/sh", script, become_user, stdin, Runs::Subshell)
            .await
    }

    /// [`Self::run`] with `shell -c SCRIPT`.
    async fn run_in(
        &self,
        shell: &str,
        script: &str,
        become_user: Option<&str>,
        stdin: Option<&[u8]>,
        runs: Runs,
    ) -> Result<ExecOutput, ConnError> {
        let m = self.master().await?;
        let mut as_user = None;
        if let Some(user) = become_user {
            let who = self
                .whoami
                .get_or_try_init(|| async {
                    let out = self
                        .call(
                            &m,
                            "/bin/sh",
                            ssh_script::WHOAMI_SCRIPT,
                            None,
                            None,
                            Runs::Subshell,
                        )
                        .await?;
                    RemoteUser::parse(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
                        ConnError::Failed(format!(
                            "cannot tell the login user on {}: {}",
                            self.params.label(),
                            String::from_utf8_lossy(&out.stderr).trim()
                        ))
                    })
                })
                .await?;
            as_user = who.become_method(user).map(|method| (user, method, who));
            if let Some((u, method, _)) = as_user {
                let mut b = lock(&self.became);
                if !b.iter().any(|(x, _)| x == u) {
                    b.push((u.to_string(), method));
                }
            }
        }
        let out = self
            .call(
                &m,
                shell,
                script,
                as_user.map(|(u, m, _)| (u, m)),
                stdin,
                runs,
            )
            .await?;
        if let Some((user, _, who)) = as_user {
            let err = String::from_utf8_lossy(&out.stderr);
            if out.rc != 0
                && (err.contains("a password is required")
                    || err.contains("a terminal is required"))
            {
                return Err(ConnError::Failed(format!(
                    "sudo requires a password for {} (to become {user}): configure NOPASSWD or run as root",
                    who.name
                )));
            }
        }
        Ok(out)
    }

    /// `shell -c script` as `as_user`: in that user's persistent session, else on a channel of
    /// its own. `runs`: how the session runs it; a shell other than `/bin/sh` is always a
    /// process of its own.
    async fn call(
        &self,
        m: &Arc<Master>,
        shell: &str,
        script: &str,
        as_user: Option<(&str, BecomeMethod)>,
        stdin: Option<&[u8]>,
        mut runs: Runs,
    ) -> Result<ExecOutput, ConnError> {
        let wrapped;
        let body = if shell == "/bin/sh" {
            script
        } else {
            runs = Runs::OwnShell;
            wrapped = format!(
                "exec {}",
                ssh_script::command_line_in(shell, script, None).map_err(quote_err)?
            );
            &wrapped
        };
        let via = Via {
            master: &m.session,
            channels: &self.channels,
            closing: &self.closing,
            label: &self.params.host,
            ready_within: self.params.connect_timeout.max(Duration::from_secs(10)),
        };
        match self.sessions.run(&via, as_user, body, stdin, runs).await {
            Served::Done(out) => {
                // A command killed by a signal may be the host going down (its sessions are
                // killed with it): the loop can still answer for a moment. A new channel tells.
                if out.rc > 128 && !self.alive(m).await {
                    return Err(self.lost(&m.exited().unwrap_or_else(|| "no answer".into())));
                }
                return Ok(out);
            }
            Served::Interrupted => return Err(interrupted()),
            Served::Lost(why) => return Err(self.session_lost(m, &why).await),
            Served::Fallback => {}
        }
        let line = ssh_script::command_line_in(shell, script, as_user).map_err(quote_err)?;
        self.raw(m, &line, stdin).await
    }

    /// The error of a session that ended during an operation: the host is gone, or the
    /// session was.
    async fn session_lost(&self, m: &Master, why: &str) -> ConnError {
        for _ in 0..20 {
            if let Some(gone) = m.exited() {
                return self.lost(&gone);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.alive(m).await {
            ConnError::Failed(format!("{}: {why}", self.params.label()))
        } else {
            self.lost(&m.exited().unwrap_or_else(|| "no answer".into()))
        }
    }

    /// Run a file script and turn a non-zero exit into its message.
    async fn run_ok(
        &self,
        what: &str,
        script: Result<String, super::quote::QuoteError>,
        become_user: Option<&str>,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ConnError> {
        let script = script.map_err(quote_err)?;
        let out = self.run(&script, become_user, stdin).await?;
        if out.rc != 0 {
            return Err(script_failed(what, &out));
        }
        Ok(out)
    }

    /// The command's text goes over stdin: the remote command line (and sudo's log) holds
    /// only the fixed bootstrap ([`stdin_script`]).
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        // What a command does may depend on the files written before it being on disk (a
        // restart, a reboot): they are, first.
        if !lock(&self.unsynced).is_empty() {
            self.flush_dirs().await;
        }
        let script = ssh_script::exec_script(req).map_err(quote_err)?;
        let input = stdin_script::frame(&script, req.stdin.as_deref()).map_err(quote_err)?;
        let shell = req.executable.as_deref().unwrap_or("/bin/sh");
        self.run_in(
            shell,
            stdin_script::BOOTSTRAP,
            req.become_user.as_deref(),
            Some(&input),
            Runs::OwnShell,
        )
        .await
    }
}

#[async_trait]
impl Connection for SshConnection {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        self.inner.exec(req).await
    }

    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        let out = self
            .inner
            .run_ok(
                &format!("stat {path}"),
                ssh_script::stat_script(path, want),
                become_user,
                None,
            )
            .await?;
        ssh_script::parse_stat(&out.stdout, want).map_err(ConnError::Failed)
    }

    async fn stat_many(
        &self,
        reqs: &[(String, Want)],
        become_user: Option<&str>,
    ) -> Result<Vec<Result<Fetched, ConnError>>, ConnError> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        let b = stat_batch::boundary().map_err(ConnError::Failed)?;
        let out = self
            .inner
            .run_ok(
                &format!("stat {} paths", reqs.len()),
                stat_batch::stat_many_script(reqs, &b),
                become_user,
                None,
            )
            .await?;
        let parsed =
            stat_batch::parse_stat_many(&out.stdout, reqs, &b).map_err(ConnError::Failed)?;
        Ok(parsed
            .into_iter()
            .zip(reqs)
            .map(|(r, (path, _))| r.map_err(|e| ConnError::Failed(format!("stat {path}: {e}"))))
            .collect())
    }

    fn batches_reads(&self) -> bool {
        true
    }

    async fn apply(&self, op: &Op, become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        let i = &self.inner;
        let mut res = OpOutput::default();
        if let Op::Exec(req) = op {
            let mut req = req.clone();
            if req.become_user.is_none() {
                req.become_user = become_user.map(str::to_string);
            }
            res.exec = Some(i.exec(&req).await?);
            return Ok(res);
        }
        let Some(job) = ssh_script::file_job(op) else {
            return Ok(res);
        };
        let job = job.map_err(quote_err)?;
        let out = i
            .run_ok(
                &op.describe(),
                Ok(job.script),
                become_user,
                job.stdin.as_deref(),
            )
            .await?;
        if matches!(op, Op::Write { .. }) {
            res.backup_file = ssh_script::backup_made(&out.stdout);
            res.written = ssh_script::written_state(&out.stdout);
            if let (true, Op::Write { path, .. }) = (ssh_script::sync_deferred(&out.stdout), op) {
                i.unsynced(become_user, ssh_script::dir_of(path));
            }
        }
        Ok(res)
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn bool_vars_take_ansibles_words() {
        for (v, want) in [
            (json!("t"), Some(true)),
            (json!("F"), Some(false)),
            (json!("Yes"), Some(true)),
            (json!("off"), Some(false)),
            (json!(""), Some(false)),
            (json!(1), Some(true)),
            (json!(false), Some(false)),
            (json!("maybe"), None),
            (json!([true]), None),
        ] {
            assert_eq!(bool_var(&v), want, "{v}");
        }
    }

    #[test]
    fn params_from_ansible_vars() {
        let p = SshParams::from_vars(
            "db1",
            &vars(json!({
                "ansible_host": "127.0.1.1",
                "ansible_port": "2222",
                "ansible_user": "root",
                "ansible_ssh_private_key_file": "/k/id",
                "ansible_ssh_common_args": "-o UserKnownHostsFile=/a/known -o 'ProxyCommand=nc %h %p'",
                "castellan_known_hosts": "/a/known",
                "castellan_accept_new_host_keys": "yes",
                "ansible_timeout": 3,
            })),
        )
        .unwrap();
        assert_eq!(p.host, "127.0.1.1");
        assert_eq!(p.port, Some(2222));
        assert_eq!(p.user.as_deref(), Some("root"));
        assert_eq!(p.private_key, Some(PathBuf::from("/k/id")));
        assert_eq!(
            p.common_args,
            [
                "-o",
                "UserKnownHostsFile=/a/known",
                "-o",
                "ProxyCommand=nc %h %p"
            ]
        );
        assert_eq!(p.known_hosts, Some(PathBuf::from("/a/known")));
        assert!(p.accept_new_host_keys);
        assert_eq!(p.connect_timeout, Duration::from_secs(3));

        let p = SshParams::from_vars("web", &vars(json!({"ansible_port": 22}))).unwrap();
        assert_eq!((p.host.as_str(), p.port, p.user), ("web", Some(22), None));
        assert!(!p.accept_new_host_keys);
        assert_eq!(p.connect_timeout, DEFAULT_CONNECT_TIMEOUT);

        for bad in [
            json!({"ansible_port": "http"}),
            json!({"ansible_port": 70000}),
            json!({"ansible_ssh_common_args": "-o 'x"}),
            json!({"ansible_host": "-oProxyCommand=x"}),
            json!({"castellan_accept_new_host_keys": "maybe"}),
            json!({"ansible_timeout": 1e300}),
            json!({"ansible_timeout": "inf"}),
            json!({"ansible_timeout": ".inf"}),
            json!({"ansible_timeout": 3601}),
            json!({"ansible_timeout": 0}),
            json!({"ansible_user": "-oProxyCommand=sh"}),
            json!({"ansible_user": "a b"}),
            json!({"ansible_host": "a b"}),
        ] {
            assert!(
                SshParams::from_vars("h", &vars(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable_that_holds_them() {
        let e = SshParams::from_vars_checked("h", &vars(json!({"ansible_ssh_timeout": 86400})))
            .unwrap_err();
        assert_eq!(e.var, "ansible_ssh_timeout");
        assert!(e
            .msg
            .starts_with("ansible_ssh_timeout: expected a number of seconds"));
        let e =
            SshParams::from_vars_checked("h", &vars(json!({"ansible_ssh_port": "x"}))).unwrap_err();
        assert_eq!(e.var, "ansible_ssh_port");
        let e = SshParams::from_vars_checked("h", &vars(json!({"ansible_user": ["root"]})))
            .unwrap_err();
        assert_eq!(e.var, "ansible_user");
        let p = SshParams::from_vars("h", &vars(json!({"ansible_timeout": 3600}))).unwrap();
        assert_eq!(p.connect_timeout, Duration::from_secs(3600));
    }

    fn strs(a: &[OsString]) -> Vec<String> {
        a.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn master_args_strict_by_default_and_accept_new_only_with_own_file() {
        let mut p = SshParams::new("h1");
        let a = strs(&master_args(&p, Path::new("/c/ctl"), Path::new("/c/log")));
        assert!(a.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(!a.iter().any(|s| s.starts_with("UserKnownHostsFile")));
        assert!(a.contains(&"UpdateHostKeys=no".to_string()));
        assert_eq!(&a[a.len() - 2..], ["--", "h1"]);
        p.accept_new_host_keys = true;
        let a = strs(&master_args(&p, Path::new("/c/ctl"), Path::new("/c/log")));
        assert!(a.contains(&"StrictHostKeyChecking=yes".to_string()));
        p.known_hosts = Some(PathBuf::from("/my dir/kh"));
        p.port = Some(2200);
        p.user = Some("deploy".into());
        p.private_key = Some(PathBuf::from("/k"));
        p.common_args = vec!["-o".into(), "Compression=yes".into()];
        let a = strs(&master_args(&p, Path::new("/c/ctl"), Path::new("/c/log")));
        assert!(a.contains(&"StrictHostKeyChecking=accept-new".to_string()));
        assert!(a.contains(&"UserKnownHostsFile=\"/my dir/kh\"".to_string()));
        let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
        assert!(pos("Compression=yes") < pos("StrictHostKeyChecking=accept-new"));
        assert!(pos("ControlPersist=no") < pos("Compression=yes"));
        assert_eq!(a[pos("-p") + 1], "2200");
        assert_eq!(a[pos("-l") + 1], "deploy");
        assert_eq!(a[pos("-i") + 1], "/k");
    }

    #[test]
    fn connect_errors_say_what_to_do() {
        let mut p = SshParams::new("127.0.1.3");
        let m = connect_error_message(
            &p,
            "No ED25519 host key is known for 127.0.1.3 and you have requested strict checking.\r\nHost key verification failed.\r\n",
        );
        assert_eq!(
            m,
            "host key for 127.0.1.3 is unknown or changed; add it to ~/.ssh/known_hosts or use --accept-new-host-keys"
        );
        p.accept_new_host_keys = true;
        assert!(connect_error_message(&p, "Host key verification failed.")
            .contains("needs castellan_known_hosts"));
        let m = connect_error_message(
            &p,
            "ssh: connect to host 127.0.1.3 port 22: Connection refused",
        );
        assert!(m.contains("connection refused"), "{m}");
        let m = connect_error_message(&p, "root@127.0.1.3: Permission denied (publickey).");
        assert!(m.contains("ansible_ssh_private_key_file"), "{m}");
        let m = connect_error_message(
            &p,
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@",
        );
        assert!(m.contains("has changed"), "{m}");
    }
}
