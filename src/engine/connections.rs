//! One connection per host, opened on first use, and at most `max_connections` of them open at
//! once (`--max-connections`): a host that needs a connection when the cap is reached takes the
//! place of an idle one (its master is closed first), or waits until one is idle; with more hosts
//! than the cap, the hosts holding a connection run each task first. Connections
//! are closed at the end of the run, and those of hosts that failed or are unreachable as soon as
//! they drop out of the play.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Mutex, Notify, OnceCell};

use crate::connection::local::LocalConnection;
use crate::connection::powershell::Flavour;
use crate::connection::prefetch::{Epoch, Prefetching};
use crate::connection::ssh::{SshConnection, SshParams};
use crate::connection::windows::WindowsConnection;
use crate::connection::{is_local, ConnError, Connection};

/// A host's connection, filled by the first task that needs it.
type Slot = Arc<OnceCell<Arc<dyn Connection>>>;

/// The default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How often a host waiting for a free connection looks again when nothing told it (a task
/// letting go of its connection does not signal).
const WAIT_POLL: Duration = Duration::from_millis(10);

struct Entry {
    slot: Slot,
    /// When it was last handed out (a counter): the most recently used idle connection makes
    /// room first (under the linear strategy it is the one needed again last).
    used: u64,
}

#[derive(Default)]
struct Open {
    /// One entry per host with a connection open or opening.
    conns: HashMap<String, Entry>,
    /// Connections taken out of `conns` whose master is still being closed: they count too.
    closing: usize,
    tick: u64,
}

impl Open {
    fn count(&self) -> usize {
        self.conns.len() + self.closing
    }

    /// The most recently used connection no task holds (and none is opening), if any.
    fn idle_mru(&self) -> Option<String> {
        self.conns
            .iter()
            .filter(|(_, e)| is_idle(&e.slot))
            .max_by_key(|(_, e)| e.used)
            .map(|(name, _)| name.clone())
    }
}

/// Nobody but the pool holds the slot or its connection (call with the pool's lock held: every
/// hand-out clones under it).
fn is_idle(slot: &Slot) -> bool {
    Arc::strong_count(slot) == 1 && slot.get().is_some_and(|c| Arc::strong_count(c) == 1)
}

pub struct Pool {
    /// Connecting happens outside this lock, hosts in parallel.
    open: Mutex<Open>,
    /// Signalled when a connection is closed (room for a waiting host).
    freed: Notify,
    local: Arc<dyn Connection>,
    /// Shared by every connection: a command anywhere makes what was read ahead stale.
    epoch: Epoch,
    pub accept_new_host_keys: bool,
    max_connections: usize,
}

impl Default for Pool {
    fn default() -> Self {
        let epoch = Epoch::default();
        Pool {
            open: Mutex::default(),
            freed: Notify::new(),
            local: Arc::new(Prefetching::control_node(
                "localhost",
                Arc::new(LocalConnection::new()),
                epoch.clone(),
            )),
            epoch,
            accept_new_host_keys: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl Pool {
    pub fn new(accept_new_host_keys: bool) -> Self {
        Pool {
            accept_new_host_keys,
            ..Pool::default()
        }
    }

    /// A pool whose control node is reached through `local` instead of the plain
    /// [`LocalConnection`] (tests wrap the real one to record what a run does).
    pub fn with_local(accept_new_host_keys: bool, local: Arc<dyn Connection>) -> Self {
        let pool = Pool::new(accept_new_host_keys);
        Pool {
            local: Arc::new(Prefetching::control_node(
                "localhost",
                local,
                pool.epoch.clone(),
            )),
            ..pool
        }
    }

    /// The run's read-ahead epoch ([`crate::connection::prefetch`]).
    pub fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    /// At most `n` (at least 1) remote connections open at once.
    pub fn with_max_connections(self, n: usize) -> Self {
        Pool {
            max_connections: n.max(1),
            ..self
        }
    }

    pub fn local(&self) -> Arc<dyn Connection> {
        Arc::clone(&self.local)
    }

    /// The connection for a host, opened if needed (after making room, or waiting for it, when
    /// `max_connections` are open).
    pub async fn get(
        &self,
        name: &str,
        vars: &Map<String, Value>,
    ) -> Result<Arc<dyn Connection>, ConnError> {
        if is_local(name, vars) {
            return Ok(self.local());
        }
        loop {
            let (cell, evicted) = {
                let mut open = self.open.lock().await;
                open.tick += 1;
                let tick = open.tick;
                if let Some(e) = open.conns.get_mut(name) {
                    e.used = tick;
                    (Some(Arc::clone(&e.slot)), None)
                } else if open.count() < self.max_connections {
                    let slot = Slot::default();
                    open.conns.insert(
                        name.to_string(),
                        Entry {
                            slot: Arc::clone(&slot),
                            used: tick,
                        },
                    );
                    (Some(slot), None)
                } else if let Some(victim) = open.idle_mru() {
                    let e = open.conns.remove(&victim);
                    open.closing += 1;
                    (None, e)
                } else {
                    (None, None)
                }
            };
            if let Some(cell) = cell {
                return match cell.get_or_try_init(|| self.open_remote(name, vars)).await {
                    Ok(conn) => Ok(Arc::clone(conn)),
                    Err(e) => {
                        self.forget_failed(name, &cell).await;
                        Err(e)
                    }
                };
            }
            match evicted {
                Some(e) => self.close_entries(vec![e], true).await,
                None => {
                    let _ = tokio::time::timeout(WAIT_POLL, self.freed.notified()).await;
                }
            }
        }
    }

    /// A connection attempt failed: its slot no longer takes a place under the cap (the next
    /// attempt for the host starts over, as before the cap).
    async fn forget_failed(&self, name: &str, cell: &Slot) {
        let mut open = self.open.lock().await;
        let ours = open
            .conns
            .get(name)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, cell) && e.slot.get().is_none());
        if ours {
            open.conns.remove(name);
            drop(open);
            self.freed.notify_waiters();
        }
    }

    /// Close `entries` (already out of the map); `counted`: they were added to `closing`.
    async fn close_entries(&self, entries: Vec<Entry>, counted: bool) {
        let n = entries.len();
        let conns: Vec<Arc<dyn Connection>> = entries
            .iter()
            .filter_map(|e| e.slot.get().cloned())
            .collect();
        // In parallel: each close waits for its master to exit.
        futures::future::join_all(conns.iter().map(|c| c.close())).await;
        if counted {
            let mut open = self.open.lock().await;
            open.closing = open.closing.saturating_sub(n);
        }
        self.freed.notify_waiters();
    }

    /// Close the connections of `hosts` that no task is using (hosts done with the play: failed,
    /// unreachable). A host that needs one again later reconnects.
    pub async fn release(&self, hosts: &[String]) {
        let entries: Vec<Entry> = {
            let mut open = self.open.lock().await;
            let names: Vec<String> = hosts
                .iter()
                .filter(|h| open.conns.get(*h).is_some_and(|e| is_idle(&e.slot)))
                .cloned()
                .collect();
            let entries: Vec<Entry> = names.iter().filter_map(|h| open.conns.remove(h)).collect();
            open.closing += entries.len();
            entries
        };
        if !entries.is_empty() {
            self.close_entries(entries, true).await;
        }
    }

    /// Put the hosts that hold an open connection first (stable otherwise), when there are more
    /// hosts than `--max-connections`: those run the task on the connection they have before
    /// the others make room by closing idle ones, so each task reconnects `hosts - cap` hosts,
    /// not nearly all of them.
    pub async fn holders_first(&self, hosts: &mut [String]) {
        if hosts.len() <= self.max_connections {
            return;
        }
        let open = self.open.lock().await;
        hosts.sort_by_key(|h| !open.conns.contains_key(h));
    }

    /// How many remote connections are open (or opening, or closing) now.
    pub async fn open_count(&self) -> usize {
        self.open.lock().await.count()
    }

    async fn open_remote(
        &self,
        name: &str,
        vars: &Map<String, Value>,
    ) -> Result<Arc<dyn Connection>, ConnError> {
        match vars.get("ansible_connection").and_then(Value::as_str) {
            None | Some("ssh") | Some("smart") | Some("paramiko") => {}
            Some(other) => {
                return Err(ConnError::Unreachable(format!(
                    "connection type `{other}` is not supported; use ssh or local"
                )))
            }
        }
        let mut params = SshParams::from_vars(name, vars).map_err(ConnError::Unreachable)?;
        params.accept_new_host_keys |= self.accept_new_host_keys;
        // `ansible_shell_type: powershell|cmd`: a Windows host, PowerShell scripts on the same SSH.
        let windows = Flavour::from_vars(vars).map_err(ConnError::Unreachable)?;
        let conn = SshConnection::connect(params).await?;
        let conn: Arc<dyn Connection> = match windows {
            Some(flavour) => Arc::new(WindowsConnection::new(conn, flavour)),
            None => Arc::new(conn),
        };
        Ok(Arc::new(Prefetching::new(name, conn, self.epoch.clone())))
    }

    /// Close every connection (SSH masters and their control sockets).
    pub async fn close_all(&self) {
        let entries: Vec<Entry> = self
            .open
            .lock()
            .await
            .conns
            .drain()
            .map(|(_, e)| e)
            .collect();
        self.close_entries(entries, false).await;
        // Masters opened but not yet registered (a connect racing an interrupt) too.
        crate::connection::ssh::close_all().await;
    }
}
