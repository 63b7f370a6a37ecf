//! The host as a module's plan sees it: it can read, never change. The engine alone holds the
//! [`Connection`] that applies.
use crate::connection::{Connection, ExecOutput, ExecRequest, FileState, Want};

use super::ModuleError;

#[derive(Clone, Copy)]
pub struct HostReader<'a> {
    conn: &'a dyn Connection,
    become_user: Option<&'a str>,
}

impl<'a> HostReader<'a> {
    pub fn new(conn: &'a dyn Connection, become_user: Option<&'a str>) -> Self {
        HostReader { conn, become_user }
    }

    /// A path's state (content, checksums as asked), as the task's become user. A dropped
    /// connection is [`ModuleError::Unreachable`].
    pub async fn stat(&self, path: &str, want: Want) -> Result<FileState, ModuleError> {
        Ok(self.conn.stat(path, want, self.become_user).await?)
    }

    /// A command that only reads (a `psql` query for facts): [`Connection::query`].
    pub async fn query(&self, req: &ExecRequest) -> Result<ExecOutput, ModuleError> {
        Ok(self.conn.query(req).await?)
    }
}
