//! What the engine knows about a host during a run.
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::connection::Backup;
use crate::inventory::Host;

#[derive(Debug)]
pub struct HostState {
    pub name: String,
    pub inv: Arc<Host>,
    /// `set_fact` and registered results, for the rest of the run.
    pub facts: Map<String, Value>,
    pub failed: bool,
    pub unreachable: bool,
    /// `meta: end_host`.
    pub ended: bool,
    /// Handlers notified and not yet run, in notification order.
    pub notified: Vec<String>,
    /// Handlers an earlier run of the current play left owed: they join `notified` once the
    /// play's `tasks` have run (they may need what those tasks set, e.g. facts).
    pub owed: Vec<String>,
    /// The loop items of the looped includes being run, outermost first: include params.
    pub include_items: Vec<Arc<Map<String, Value>>>,
    /// Backups made on the host, oldest first: those an earlier run left with a handler it
    /// still owed, then those of this run's writes (from each applied write's
    /// `OpOutput::backup_file`). What a rollback restores (given to actions in
    /// `ActionCtx::backups`); shown to playbooks as `castellan_backups`.
    pub backups: Vec<Backup>,
}

impl HostState {
    pub fn new(name: &str, inv: Host) -> Self {
        HostState {
            name: name.to_string(),
            inv: Arc::new(inv),
            facts: Map::new(),
            failed: false,
            unreachable: false,
            ended: false,
            notified: Vec::new(),
            owed: Vec::new(),
            include_items: Vec::new(),
            backups: Vec::new(),
        }
    }

    /// Can this host take more tasks?
    pub fn active(&self) -> bool {
        !self.failed && !self.unreachable && !self.ended
    }

    /// What the host owes now: the handlers notified and those still owed from an earlier run.
    pub fn owed_handlers(&self) -> Vec<String> {
        let mut all = self.notified.clone();
        for n in &self.owed {
            if !all.contains(n) {
                all.push(n.clone());
            }
        }
        all
    }

    pub fn notify(&mut self, name: &str) {
        if !self.notified.iter().any(|n| n == name) {
            self.notified.push(name.to_string());
        }
    }
}
