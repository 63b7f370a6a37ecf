//! The vocabulary between modules, the engine and connections: file state, and the primitive
//! changes a module may ask for.
use std::sync::Arc;

/// Owner, group and permission bits to set. `None` keeps what is there (or the default for a
/// new file: the connecting user, and mode 0644 for files, 0755 for directories).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

impl Attrs {
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.group.is_none() && self.mode.is_none()
    }
}

/// One change on a host.
#[derive(Debug, Clone)]
pub enum Op {
    /// Replace `path` with `content` atomically (temp file 0600 in the same directory, chown,
    /// chmod, fsync, rename). Attributes not given are kept from the regular file being replaced
    /// (found through a symbolic link, as Ansible's `atomic_move` does), never from a link
    /// itself or a directory. `follow`: a symbolic link at `path` is followed and the file it
    /// points to is replaced (Ansible's `follow: yes`, and what lineinfile/blockinfile always
    /// do); else the link itself is replaced by a regular file. `backup` keeps the file being
    /// replaced under a new name beside it (see [`super::backup`]).
    Write {
        path: String,
        content: Arc<Vec<u8>>,
        attrs: Attrs,
        backup: bool,
        follow: bool,
    },
    /// chown/chmod an existing path.
    SetAttrs {
        path: String,
        attrs: Attrs,
        follow: bool,
    },
    /// `mkdir -p`, then set attributes on the directories created and on the last one.
    Mkdir { path: String, attrs: Attrs },
    /// `rm -rf`.
    Remove { path: String },
    /// Create or replace a symbolic link `path` -> `src`.
    Symlink {
        src: String,
        path: String,
        force: bool,
    },
    /// Create an empty file or update its times.
    Touch { path: String, attrs: Attrs },
    /// Run a command.
    Exec(ExecRequest),
}

impl Op {
    /// A short human description, for logs and verbose output (never the content).
    pub fn describe(&self) -> String {
        match self {
            Op::Write { path, .. } => format!("write {path}"),
            Op::SetAttrs { path, .. } => format!("set attributes of {path}"),
            Op::Mkdir { path, .. } => format!("create directory {path}"),
            Op::Remove { path } => format!("remove {path}"),
            Op::Symlink { src, path, .. } => format!("link {path} -> {src}"),
            Op::Touch { path, .. } => format!("touch {path}"),
            Op::Exec(r) => format!("run {}", r.display()),
        }
    }
}

/// A backup a write kept on the host: the file at `path` as it was, now at `backup` (a hard
/// link beside it, see [`super::backup`]). Paths only, never content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Backup {
    pub path: String,
    pub backup: String,
}

/// What a connection returns after applying an op.
#[derive(Debug, Clone, Default)]
pub struct OpOutput {
    pub backup_file: Option<String>,
    pub exec: Option<ExecOutput>,
    /// After a [`Op::Write`]: the written file's state as the host told it right after the
    /// rename, without content (where the connection can tell it).
    pub written: Option<FileState>,
}

/// A command to run: either an argv (no shell) or a shell script. Connections send the text
/// over stdin, never on a command line ([`super::stdin_script`]).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub shell: Option<String>,
    /// The POSIX shell that runs `shell` (`/bin/sh` when unset): `shell`'s `executable`.
    pub executable: Option<String>,
    pub chdir: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub become_user: Option<String>,
}

impl ExecRequest {
    pub fn display(&self) -> String {
        match &self.shell {
            Some(s) => s.clone(),
            None => self.argv.join(" "),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// What to read besides the metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// The whole content (text editors need it).
    pub content: bool,
    /// SHA-256 and SHA-1 of the content (copy compares hashes, stat reports checksum).
    pub checksum: bool,
    /// Follow a symbolic link at `path`.
    pub follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileKind {
    #[default]
    Missing,
    File,
    Directory,
    Link,
    Other,
}

/// The state of a path on a host.
#[derive(Debug, Clone, Default)]
pub struct FileState {
    pub kind: FileKind,
    /// Permission bits (including setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: f64,
    pub atime: f64,
    pub link_target: Option<String>,
    pub sha256: Option<String>,
    pub sha1: Option<String>,
    pub content: Option<Vec<u8>>,
}

impl FileState {
    pub fn exists(&self) -> bool {
        self.kind != FileKind::Missing
    }
}
