//! `wait_for`: wait until a TCP port is open (`state: started`, the default) or closed
//! (`stopped`), a file exists (`present`, with `search_regex`: until the regex matches its
//! content) or is gone (`absent`), or, with neither `port` nor `path`, just `timeout` seconds.
//! Arguments and messages as Ansible's: `host` (default 127.0.0.1), `port`, `path`,
//! `search_regex` (Python syntax, multi-line mode), `timeout` (300), `connect_timeout` (5),
//! `delay` (0), `sleep` (1), `msg`; the result has `elapsed`, `match_groups`,
//! `match_groupdict`, and is never `changed`.
//!
//! How a port is checked from a host with only `sh` and coreutils (`src/os/listeners.rs`): an
//! address of the host itself (loopback, or one of its own addresses) is open when a socket
//! listens on it in `/proc/net/tcp`/`tcp6`; no connection is made. Another machine's port is
//! tried with one connection through the first of `bash` (`/dev/tcp`), `nc`, `python3`, `perl`
//! the host has; with none of them the task fails and says so. `search_regex` with `port`
//! (reading a banner) is not supported.
//!
//! Each check is one round trip; between checks the engine sleeps `sleep` seconds. Like
//! Ansible's, the module does not support check mode: `--check` reports it skipped.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::connection::{ExecRequest, Want};
use crate::modules::args::PORT_RANGE;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, CheckMode, Kind, Module, ModuleCtx, ModuleError,
    Plan,
};
use crate::os::listeners::{self, Verdict};
use crate::template::is_template;
use crate::text::compile_regex;

pub struct WaitFor;

const ARGS: &[Arg] = &[
    Arg::new("host", Kind::Str),
    Arg::new("port", Kind::Int).range(PORT_RANGE.0, PORT_RANGE.1),
    Arg::new("path", Kind::Str),
    Arg::new("state", Kind::Str).choices(&["started", "stopped", "present", "absent"]),
    Arg::new("search_regex", Kind::Str),
    Arg::new("timeout", Kind::Int).range(0, 86_400),
    Arg::new("connect_timeout", Kind::Int).range(1, 3600),
    Arg::new("delay", Kind::Int).range(0, 86_400),
    Arg::new("sleep", Kind::Int).range(0, 3600),
    Arg::new("msg", Kind::Str),
];

/// Shortest pause between two checks (`sleep: 0` would spin).
const MIN_PAUSE: Duration = Duration::from_millis(100);

/// What to wait for.
#[derive(Debug, Clone)]
enum Target {
    Port {
        host: String,
        port: u16,
        open: bool,
    },
    Path {
        path: String,
        present: bool,
        regex: Option<(String, Regex)>,
    },
    Time,
}

struct Wait {
    target: Target,
    timeout: u64,
    connect_timeout: u64,
    delay: u64,
    sleep: u64,
    msg: Option<String>,
}

/// `search_regex` compiled as Ansible does (Python syntax, `re.MULTILINE`).
fn regex(r: &str) -> Result<Regex, String> {
    compile_regex("search_regex", r)?;
    compile_regex("search_regex", &format!("(?m){r}"))
}

#[async_trait]
impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn waits(&self) -> bool {
        true
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if args.has("port") && args.has("path") {
            return Err("port and path parameter can not both be passed to wait_for".into());
        }
        if args.has("path") && args.str("state") == Some("stopped") {
            return Err(
                "state=stopped should only be used for checking a port in the wait_for module"
                    .into(),
            );
        }
        if args.has("port") && args.has("search_regex") {
            return Err(
                "search_regex with port is not supported (castellan reads no data \
                        from a port); wait for a log line with path and search_regex"
                    .into(),
            );
        }
        if let Some(r) = args.str("search_regex").filter(|r| !is_template(r)) {
            regex(r)?;
        }
        Ok(())
    }

    async fn plan(&self, _ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let state = args.str("state").unwrap_or("started");
        let waits_for_gone = matches!(state, "stopped" | "absent");
        let target = if let Some(port) = args.int("port") {
            Target::Port {
                host: args.string("host").unwrap_or_else(|| "127.0.0.1".into()),
                port: u16::try_from(port).map_err(|_| format!("bad port {port}"))?,
                open: !waits_for_gone,
            }
        } else if let Some(path) = args.string("path") {
            let regex = match args.string("search_regex") {
                Some(r) => Some((r.clone(), regex(&r).map_err(ModuleError::InvalidArgs)?)),
                None => None,
            };
            Target::Path {
                path,
                present: !waits_for_gone,
                regex,
            }
        } else {
            Target::Time
        };
        let secs = |k: &str, d: i64| args.int(k).unwrap_or(d).max(0) as u64;
        Ok(Plan::action(Wait {
            target,
            timeout: secs("timeout", 300),
            connect_timeout: secs("connect_timeout", 5).max(1),
            delay: secs("delay", 0),
            sleep: secs("sleep", 1),
            msg: args.string("msg"),
        }))
    }
}

/// What one check found.
enum Found {
    Yes {
        groups: Vec<Value>,
        named: Map<String, Value>,
    },
    No,
}

impl Wait {
    async fn port_open(
        &self,
        ctx: &ActionCtx<'_>,
        host: &str,
        port: u16,
        left: Duration,
    ) -> Result<bool, ModuleError> {
        let script = listeners::probe_script(host, host.parse::<IpAddr>().is_err())?;
        let out = ctx
            .conn
            .exec(&ExecRequest {
                shell: Some(script),
                ..ExecRequest::default()
            })
            .await?;
        let net = listeners::parse(&String::from_utf8_lossy(&out.stdout));
        match net.verdict(host, port) {
            Verdict::Local(open) => Ok(open),
            Verdict::Unresolved => Ok(false),
            Verdict::Remote => {
                let t = self.connect_timeout.min(left.as_secs().max(1));
                let out = ctx
                    .conn
                    .exec(&ExecRequest {
                        shell: Some(listeners::connect_script(host, port, t)?),
                        ..ExecRequest::default()
                    })
                    .await?;
                let (tool, ok) = listeners::parse_connect(&String::from_utf8_lossy(&out.stdout));
                if tool == "none" {
                    return Err(ModuleError::failed(format!(
                        "wait_for cannot test {host}:{port} from {}: it is not an address of this \
                         host, and the host has none of bash, nc, python3, perl to try a connection",
                        ctx.inventory_hostname
                    )));
                }
                Ok(ok)
            }
        }
    }

    async fn check(&self, ctx: &ActionCtx<'_>, left: Duration) -> Result<Found, ModuleError> {
        let yes = || Found::Yes {
            groups: Vec::new(),
            named: Map::new(),
        };
        match &self.target {
            Target::Time => Ok(yes()),
            Target::Port { host, port, open } => {
                let is_open = self.port_open(ctx, host, *port, left).await?;
                Ok(if is_open == *open { yes() } else { Found::No })
            }
            Target::Path {
                path,
                present,
                regex,
            } => {
                let want = Want {
                    content: regex.is_some() && *present,
                    follow: true,
                    ..Want::default()
                };
                let st = ctx.conn.stat(path, want, ctx.become_user).await?;
                if !*present {
                    return Ok(if st.exists() { Found::No } else { yes() });
                }
                if !st.exists() {
                    return Ok(Found::No);
                }
                let Some((_, re)) = regex else {
                    return Ok(yes());
                };
                let text = String::from_utf8_lossy(st.content.as_deref().unwrap_or_default());
                let Some(c) = re.captures(&text) else {
                    return Ok(Found::No);
                };
                let groups = c
                    .iter()
                    .skip(1)
                    .map(|m| m.map_or(Value::Null, |m| json!(m.as_str())))
                    .collect();
                let named = re
                    .capture_names()
                    .flatten()
                    .map(|n| {
                        let v = c.name(n).map_or(Value::Null, |m| json!(m.as_str()));
                        (n.to_string(), v)
                    })
                    .collect();
                Ok(Found::Yes { groups, named })
            }
        }
    }

    /// Ansible's message when the time is up.
    fn timeout_msg(&self) -> String {
        if let Some(m) = &self.msg {
            return m.clone();
        }
        match &self.target {
            Target::Port {
                host,
                port,
                open: true,
            } => {
                format!("Timeout when waiting for {host}:{port}")
            }
            Target::Port { host, port, .. } => {
                format!("Timeout when waiting for {host}:{port} to stop.")
            }
            Target::Path {
                path,
                present: true,
                regex: Some((r, _)),
            } => format!("Timeout when waiting for search string {r} in {path}"),
            Target::Path {
                path,
                present: true,
                ..
            } => format!("Timeout when waiting for file {path}"),
            Target::Path { path, .. } => format!("Timeout when waiting for {path} to be absent."),
            Target::Time => "Timeout".into(),
        }
    }
}

#[async_trait]
impl Action for Wait {
    fn describe(&self) -> String {
        let what = match &self.target {
            Target::Port { host, port, open } => {
                format!(
                    "{host}:{port} to be {}",
                    if *open { "open" } else { "closed" }
                )
            }
            Target::Path {
                path,
                present: true,
                regex: Some((r, _)),
            } => format!("/{r}/ in {path}"),
            Target::Path { path, present, .. } => {
                format!(
                    "{path} to be {}",
                    if *present { "present" } else { "absent" }
                )
            }
            Target::Time => return format!("wait {} s", self.timeout),
        };
        format!("wait up to {} s for {what}", self.timeout)
    }

    fn in_check_mode(&self) -> CheckMode {
        CheckMode::Skip("remote module (wait_for) does not support check mode".into())
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let start = Instant::now();
        let timeout = Duration::from_secs(self.timeout);
        tokio::time::sleep(Duration::from_secs(self.delay)).await;
        if matches!(self.target, Target::Time) {
            tokio::time::sleep(timeout).await;
        }
        let end = start + timeout;
        let pause = Duration::from_secs(self.sleep).max(MIN_PAUSE);
        let (groups, named) = loop {
            let left = end.saturating_duration_since(Instant::now());
            if let Found::Yes { groups, named } = self.check(ctx, left).await? {
                break (groups, named);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let mut r = Map::new();
                r.insert("elapsed".into(), json!(start.elapsed().as_secs()));
                return Err(ModuleError::failed_with(self.timeout_msg(), r));
            }
            tokio::time::sleep(pause.min(left)).await;
        };
        let (state, port, path, search) = match &self.target {
            Target::Port { port, open, .. } => (
                if *open { "started" } else { "stopped" },
                json!(port),
                Value::Null,
                Value::Null,
            ),
            Target::Path {
                path,
                present,
                regex,
            } => (
                if *present { "present" } else { "absent" },
                Value::Null,
                json!(path),
                regex.as_ref().map_or(Value::Null, |(r, _)| json!(r)),
            ),
            Target::Time => ("started", Value::Null, Value::Null, Value::Null),
        };
        let mut result = Map::new();
        result.insert("state".into(), json!(state));
        result.insert("port".into(), port);
        result.insert("path".into(), path);
        result.insert("search_regex".into(), search);
        result.insert("match_groups".into(), Value::Array(groups));
        result.insert("match_groupdict".into(), Value::Object(named));
        result.insert("elapsed".into(), json!(start.elapsed().as_secs()));
        Ok(ActionOutput {
            changed: false,
            result,
            ..ActionOutput::default()
        })
    }
}
