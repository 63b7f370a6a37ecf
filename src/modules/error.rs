//! The one failure channel of a module: [`Module::plan`](super::Module::plan) and
//! [`Action::run`](super::Action::run) return `Err(ModuleError)`, and the engine reports the
//! kind: `failed` for [`ModuleError::InvalidArgs`] and [`ModuleError::Failed`], `unreachable`
//! (exit 3) for [`ModuleError::Unreachable`].
use serde_json::{Map, Value};

use crate::connection::ConnError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// The arguments, once rendered, are wrong (the task fails; the host was not changed).
    #[error("{0}")]
    InvalidArgs(String),
    /// The module decided the task fails (`fail`, `assert`, a rejected configuration...);
    /// `result` holds the keys registered with the failure (`rc`, `assertion`, `restored`...).
    #[error("{msg}")]
    Failed {
        msg: String,
        result: Map<String, Value>,
    },
    /// The connection to the host dropped (or never came up) while reading or acting.
    #[error("{0}")]
    Unreachable(String),
}

impl ModuleError {
    /// A failure with a message and nothing else to register.
    pub fn failed(msg: impl Into<String>) -> Self {
        ModuleError::Failed {
            msg: msg.into(),
            result: Map::new(),
        }
    }

    /// A failure that registers `result` besides the message.
    pub fn failed_with(msg: impl Into<String>, result: Map<String, Value>) -> Self {
        ModuleError::Failed {
            msg: msg.into(),
            result,
        }
    }
}

impl From<ConnError> for ModuleError {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::Unreachable(m) => ModuleError::Unreachable(m),
            ConnError::Failed(m) => ModuleError::failed(m),
        }
    }
}

/// The library's plain messages (parsers, the PKI, arguments) fail the task.
impl From<String> for ModuleError {
    fn from(msg: String) -> Self {
        ModuleError::failed(msg)
    }
}

impl From<&str> for ModuleError {
    fn from(msg: &str) -> Self {
        ModuleError::failed(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_stays_unreachable() {
        let e: ModuleError = ConnError::Unreachable("connection to db1 lost".into()).into();
        assert!(matches!(e, ModuleError::Unreachable(ref m) if m == "connection to db1 lost"));
        let e: ModuleError = ConnError::Failed("cannot stat /x".into()).into();
        assert!(matches!(e, ModuleError::Failed { ref msg, .. } if msg == "cannot stat /x"));
    }
}
