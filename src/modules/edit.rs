//! The result of a pure text edit: what the file should contain afterwards.

/// Outcome of a pure editor (`lineinfile`, `blockinfile`, `ini_file`, `pg_conf`, `pg_hba`).
///
/// Editors never touch the disk: they take the current content (`None` when the file does not
/// exist) and return the content the file should have. The engine diffs and writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The full new content of the file. Equal to the input when nothing changed.
    pub content: String,
    /// Whether `content` differs from the input (or the file must be created).
    pub changed: bool,
    /// Ansible-style message, e.g. "line added", "line replaced", "Block inserted".
    pub msg: String,
}
