//! The error type every layer returns, and the exit code each error maps to.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a source file: `file:line:column`, both 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub col: usize,
}

impl Location {
    pub fn new(file: &Arc<PathBuf>, line: usize, col: usize) -> Self {
        Location {
            file: Arc::clone(file),
            line,
            col,
        }
    }

    /// The start of a file, for errors about the file as a whole.
    pub fn file_start(file: &Path) -> Self {
        Location {
            file: Arc::new(file.to_path_buf()),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// Everything that can stop a run before or outside a host's task.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid input (YAML, schema, template, undefined variable, unknown module or argument).
    /// Exit code 4; raised before any host is contacted.
    #[error("{}{msg}", prefix(.loc))]
    Invalid { loc: Option<Location>, msg: String },
    /// Bad command-line usage. Exit code 5.
    #[error("{0}")]
    Usage(String),
    /// A bug in castellan. Exit code 1.
    #[error("internal error: {0}\nplease report this with the command you ran")]
    Internal(String),
}

fn prefix(loc: &Option<Location>) -> String {
    match loc {
        Some(l) => format!("{l}: "),
        None => String::new(),
    }
}

impl Error {
    pub fn invalid(loc: &Location, msg: impl Into<String>) -> Self {
        Error::Invalid {
            loc: Some(loc.clone()),
            msg: msg.into(),
        }
    }

    pub fn invalid_noloc(msg: impl Into<String>) -> Self {
        Error::Invalid {
            loc: None,
            msg: msg.into(),
        }
    }

    /// An I/O error while reading an input file (playbook, inventory, template): invalid input.
    pub fn read(path: &Path, err: &std::io::Error) -> Self {
        Error::Invalid {
            loc: None,
            msg: format!("cannot read {}: {err}", path.display()),
        }
    }

    /// The process exit code for this error (see DESIGN.md, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } => 4,
            Error::Usage(_) => 5,
            Error::Internal(_) => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// An error message safe for a terminal: control characters (an escape sequence or a NUL from a
/// malformed input file) are shown as `\u{1b}`, never sent raw; line breaks and tabs stay.
pub fn printable(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for c in msg.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(
            super::printable("a\u{1b}[31mb\0c\nd\te"),
            "a\\u{1b}[31mb\\u{0}c\nd\te"
        );
    }
}
