//! The engine: plays, serial batches, the linear strategy, blocks, handlers, failure budget,
//! check and diff. It emits events to a [`Reporter`]; it never prints.
//!
//! A module task, from the outside in: `task.rs` runs it on a batch's hosts and applies the
//! outcomes; `host_task.rs` on one host (its variables from `task_vars.rs`, its connection and
//! modes); `loops.rs` its loop items; `item.rs` one run (arguments, the module's plan);
//! `retry.rs` `until`/`retries`; `conds.rs` `when`, `changed_when`, `failed_when`; `apply.rs`
//! the plan's steps (or what check mode reports); `results.rs` what a run reports;
//! `notify.rs` the handlers and backups a host owes.
mod apply;
mod conds;
pub mod connections;
pub mod host;
mod host_task;
pub mod interrupt;
mod item;
mod loops;
mod notify;
pub mod pending;
mod play;
mod read_ahead;
mod results;
mod retry;
pub mod tags;
mod task;
mod task_vars;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook};
use crate::report::{Reporter, Stats};
use crate::template::Templar;

pub use host::HostState;
pub use interrupt::Interrupt;

/// Everything the command line decides about a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    /// At most this many remote connections (SSH masters) open at once (`--max-connections`).
    pub max_connections: usize,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Map<String, Value>,
    pub limit: Option<String>,
    pub verbosity: u8,
    pub accept_new_host_keys: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check: false,
            diff: false,
            forks: 20,
            max_connections: connections::DEFAULT_MAX_CONNECTIONS,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            extra_vars: Map::new(),
            limit: None,
            verbosity: 0,
            accept_new_host_keys: false,
        }
    }
}

pub struct Runner<'a> {
    pub inv: &'a Inventory,
    pub opts: &'a RunOptions,
    pub templar: &'a Templar,
    pub reporter: &'a dyn Reporter,
    pub pool: Arc<connections::Pool>,
    pub hosts: HashMap<String, HostState>,
    pub stats: Stats,
    /// SIGINT/SIGTERM: once set, nothing new starts (see [`interrupt`]).
    pub interrupt: Arc<Interrupt>,
    groups: Arc<Value>,
    started: Instant,
}

/// Per play (and batch) state shared by the tasks of a play.
pub struct PlayCtx<'p> {
    pub play: &'p Play,
    pub playbook_dir: &'p Path,
    pub all_hosts: Vec<String>,
    pub batch: Vec<String>,
    pub aborted: bool,
    /// What each host still owes (handlers, backups), written the moment it changes.
    pub book: &'p pending::Book,
    /// The hosts of the batch already read ahead for ([`read_ahead`]).
    pub read_ahead: read_ahead::ReadAheadDone,
}

impl<'a> Runner<'a> {
    pub fn new(
        inv: &'a Inventory,
        opts: &'a RunOptions,
        templar: &'a Templar,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Runner {
            inv,
            opts,
            templar,
            reporter,
            pool: Arc::new(
                connections::Pool::new(opts.accept_new_host_keys)
                    .with_max_connections(opts.max_connections),
            ),
            hosts: HashMap::new(),
            stats: Stats::default(),
            interrupt: Interrupt::new(),
            groups: Arc::new(inv.groups_var()),
            started: Instant::now(),
        }
    }

    /// Run playbooks in order; returns the stats (the exit code follows from them).
    pub async fn run(&mut self, books: &[Playbook]) -> Stats {
        self.run_books(books).await;
        self.close_and_report().await
    }

    /// Run the plays, without closing connections or printing the recap.
    pub async fn run_books(&mut self, books: &[Playbook]) {
        'books: for book in books {
            for p in &book.plays {
                if self.interrupted() || !self.run_play(p, &book.dir).await {
                    break 'books;
                }
            }
        }
    }

    /// Close every connection and print the recap (text) or the report (JSON).
    pub async fn close_and_report(&mut self) -> Stats {
        self.pool.close_all().await;
        self.reporter
            .finish(&self.stats, self.opts.check, self.started.elapsed());
        self.stats.clone()
    }

    /// A signal asked the run to stop: start nothing new.
    pub fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    fn ensure_host(&mut self, name: &str) {
        if !self.hosts.contains_key(name) {
            let inv = self
                .inv
                .host(name)
                .cloned()
                .unwrap_or_else(|| self.inv.implicit_localhost());
            self.hosts
                .insert(name.to_string(), HostState::new(name, inv));
        }
    }
}

#[cfg(test)]
mod tests {
    /// The engine knows modules only through the `Module` trait: no string literal in its code
    /// (tests aside) is a module's name, and it never compares a module's name.
    #[test]
    fn no_module_name_is_hard_coded_in_the_engine() {
        let names: Vec<&str> = crate::modules::registry::names().collect();
        let literal = regex::Regex::new(r#""((?:[^"\\]|\\.)*)""#).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
        let mut found = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, line) in code.lines().enumerate() {
                let line = line.split("//").next().unwrap_or_default();
                for c in literal.captures_iter(line) {
                    if names.contains(&&c[1]) || line.contains("name() ==") {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "module names in the engine: {found:#?}");
    }
}
