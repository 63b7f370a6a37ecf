//! Per-host counters for the recap.
use indexmap::IndexMap;
use serde::Serialize;

use super::Status;

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStats {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub skipped: u32,
    pub unreachable: u32,
    pub rescued: u32,
    pub ignored: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub hosts: IndexMap<String, HostStats>,
}

impl Stats {
    pub fn host(&mut self, name: &str) -> &mut HostStats {
        self.hosts.entry(name.to_string()).or_default()
    }

    pub fn record(&mut self, host: &str, status: Status, ignored: bool) {
        let h = self.host(host);
        match status {
            Status::Ok => h.ok += 1,
            Status::Changed => {
                h.ok += 1;
                h.changed += 1
            }
            Status::Failed if ignored => {
                h.ok += 1;
                h.ignored += 1
            }
            Status::Failed => h.failed += 1,
            Status::Skipped => h.skipped += 1,
            Status::Unreachable => h.unreachable += 1,
        }
    }

    /// The exit code DESIGN.md gives: 2 when a host failed, 3 when one was unreachable.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.values().any(|h| h.failed > 0) {
            2
        } else if self.hosts.values().any(|h| h.unreachable > 0) {
            3
        } else {
            0
        }
    }
}
