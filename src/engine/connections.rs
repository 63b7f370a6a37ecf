//! One connection per host, opened on first use and closed at the end of the run.
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::{Mutex, OnceCell};

use crate::connection::local::LocalConnection;
use crate::connection::powershell::Flavour;
use crate::connection::ssh::{SshConnection, SshParams};
use crate::connection::windows::WindowsConnection;
use crate::connection::{is_local, ConnError, Connection};

/// A host's connection, filled by the first task that needs it.
type Slot = Arc<OnceCell<Arc<dyn Connection>>>;

pub struct Pool {
    /// One cell per host: connecting happens outside the map's lock, hosts in parallel.
    conns: Mutex<HashMap<String, Slot>>,
    local: Arc<dyn Connection>,
    pub accept_new_host_keys: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            conns: Mutex::default(),
            local: Arc::new(LocalConnection::new()),
            accept_new_host_keys: false,
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
        Pool {
            local,
            ..Pool::new(accept_new_host_keys)
        }
    }

    pub fn local(&self) -> Arc<dyn Connection> {
        Arc::clone(&self.local)
    }

    /// The connection for a host, opened if needed.
    pub async fn get(
        &self,
        name: &str,
        vars: &Map<String, Value>,
    ) -> Result<Arc<dyn Connection>, ConnError> {
        if is_local(name, vars) {
            return Ok(self.local());
        }
        let cell = {
            let mut conns = self.conns.lock().await;
            Arc::clone(conns.entry(name.to_string()).or_default())
        };
        let conn = cell
            .get_or_try_init(|| self.open_remote(name, vars))
            .await?;
        Ok(Arc::clone(conn))
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
        Ok(match windows {
            Some(flavour) => Arc::new(WindowsConnection::new(conn, flavour)),
            None => Arc::new(conn),
        })
    }

    /// Close every connection (SSH masters and their control sockets).
    pub async fn close_all(&self) {
        let conns: Vec<Arc<dyn Connection>> = self
            .conns
            .lock()
            .await
            .drain()
            .filter_map(|(_, c)| c.get().cloned())
            .collect();
        // In parallel: each close waits for its master to exit.
        futures::future::join_all(conns.iter().map(|c| c.close())).await;
        // Masters opened but not yet registered (a connect racing an interrupt) too.
        crate::connection::ssh::close_all().await;
    }
}
