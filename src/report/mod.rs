//! Events from the engine, and the reporters that show them: Ansible-like text, or one JSON
//! document (DESIGN.md, "JSON report").
pub mod diff;
pub mod json;
pub mod progress;
pub mod prometheus;
pub mod secret;
pub mod stats;
pub mod text;

use serde_json::Value;

pub use stats::{HostStats, Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// What one task did on one host.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: String,
    pub status: Status,
    pub msg: Option<String>,
    /// Unified diff, already redacted where needed.
    pub diff: Option<String>,
    /// The failure was ignored (`ignore_errors`).
    pub ignored: bool,
    /// The registered result, censored for `no_log`.
    pub detail: Value,
    /// The task ran through a delegate (`delegate_to: localhost`).
    pub delegated: Option<String>,
    /// Per-item results of a loop: (label, status, msg).
    pub items: Vec<(String, Status, Option<String>, Option<String>)>,
    /// The task was retried this many times (`until`).
    pub attempts: u32,
    /// Print the result with the status line (`debug`).
    pub show: bool,
}

impl HostResult {
    pub fn new(host: &str, status: Status) -> Self {
        HostResult {
            host: host.to_string(),
            status,
            msg: None,
            diff: None,
            ignored: false,
            detail: Value::Null,
            delegated: None,
            items: Vec::new(),
            attempts: 0,
            show: false,
        }
    }
}

/// Receives the engine's events. Implementations are called from several hosts' futures.
pub trait Reporter: Send + Sync {
    fn play_start(&self, name: &str);
    /// A task starts on `hosts` hosts.
    fn task_start(&self, name: &str, module: &str, handler: bool, hosts: usize);
    fn host_result(&self, r: &HostResult);
    fn warn(&self, msg: &str);
    /// The run is over: print the recap (text) or the document (JSON).
    fn finish(&self, stats: &Stats, check_mode: bool, duration: std::time::Duration);
}
