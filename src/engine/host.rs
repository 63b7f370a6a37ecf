//! What the engine knows about a host during a run.
use std::sync::Arc;

use serde_json::{Map, Value};

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
    /// Variables of the includes being run (their loop items).
    pub include_vars: Vec<Arc<Map<String, Value>>>,
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
            include_vars: Vec::new(),
        }
    }

    /// Can this host take more tasks?
    pub fn active(&self) -> bool {
        !self.failed && !self.unreachable && !self.ended
    }

    pub fn notify(&mut self, name: &str) {
        if !self.notified.iter().any(|n| n == name) {
            self.notified.push(name.to_string());
        }
    }
}
