//! How castellan reaches a host. Modules never talk to a host directly: their plan reads state
//! through [`Connection::stat`] and [`Connection::query`] (behind `modules::HostReader`, which
//! offers nothing else) and returns [`Op`]s and deferred actions, which the engine applies
//! through [`Connection::apply`] and runs with [`Connection::exec`]. Every operation is one round
//! trip on a remote connection (one request in a persistent remote shell over SSH, see
//! [`session`]).
pub mod acl;
pub mod backup;
pub mod children;
pub mod local;
pub mod op;
pub mod powershell;
pub mod prefetch;
pub mod pwsh_quote;
pub mod quote;
pub mod session;
pub mod ssh;
pub mod ssh_script;
pub mod ssh_session;
pub mod stat_batch;
pub mod stdin_script;
pub mod windows;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use op::{Attrs, Backup, ExecOutput, ExecRequest, FileKind, FileState, Op, OpOutput, Want};
pub use stat_batch::Fetched;

/// Is this host reached through the local connection?
pub fn is_local(name: &str, vars: &Map<String, Value>) -> bool {
    match vars.get("ansible_connection").and_then(Value::as_str) {
        Some("local") => true,
        Some(_) => false,
        None => matches!(name, "localhost" | "127.0.0.1" | "::1"),
    }
}

/// Why an operation on a host did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnError {
    /// The host cannot be reached at all (connection refused, timed out, host key rejected).
    #[error("{0}")]
    Unreachable(String),
    /// The host answered, but the operation failed.
    #[error("{0}")]
    Failed(String),
}

#[async_trait]
pub trait Connection: Send + Sync {
    /// Run a command; never fails because of a non-zero exit code.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError>;
    /// Run a command that only reads the host's state (a `psql` query for facts): what a
    /// module's plan may run. The same as [`Connection::exec`] on a real host; a recording
    /// connection lets it through while it records `exec` and `apply`.
    async fn query(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        self.exec(req).await
    }
    /// Read a path's state (and optionally its content and checksums) in one round trip.
    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError>;
    /// Read several paths' states, one result per path in order. The default asks one by one;
    /// a connection that can do it in one round trip says so in [`Connection::batches_reads`].
    /// The outer error is the host lost; a path that could not be read is its own error.
    async fn stat_many(
        &self,
        reqs: &[(String, Want)],
        become_user: Option<&str>,
    ) -> Result<Vec<Result<Fetched, ConnError>>, ConnError> {
        let mut out = Vec::with_capacity(reqs.len());
        for (path, want) in reqs {
            out.push(match self.stat(path, *want, become_user).await {
                Ok(state) => Ok(Fetched { state, real: None }),
                Err(ConnError::Unreachable(m)) => return Err(ConnError::Unreachable(m)),
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }
    /// [`Connection::stat_many`] costs one round trip (worth reading ahead with).
    fn batches_reads(&self) -> bool {
        false
    }
    /// Read `reqs` ahead, for the stats that later tasks will ask ([`prefetch`]). Nothing by
    /// default.
    async fn prefetch(
        &self,
        _reqs: &[(String, Want)],
        _become_user: Option<&str>,
    ) -> Result<(), ConnError> {
        Ok(())
    }
    /// Apply one change, atomically where the change is a file write.
    async fn apply(&self, op: &Op, become_user: Option<&str>) -> Result<OpOutput, ConnError>;
    /// Close the connection; further calls fail.
    async fn close(&self) {}
}
