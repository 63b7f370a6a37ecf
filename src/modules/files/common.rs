//! What the file modules share: owner/group/mode handling, planning a content write, finding
//! a `src` on the control node, and Ansible's result keys.
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use sha1::Digest as _;

use super::mode::ModeSpec;
use crate::connection::{Attrs, FileState, Op, Want};
use crate::modules::{Args, Diff, ModuleCtx, ModuleError};
use crate::report::diff;

/// The `owner`, `group` and `mode` a task asks for.
#[derive(Debug, Clone, Default)]
pub struct AttrSpec {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<ModeSpec>,
}

impl AttrSpec {
    pub fn from_args(args: &Args) -> Result<Self, String> {
        Ok(AttrSpec {
            owner: args.string("owner"),
            group: args.string("group"),
            mode: args.str("mode").map(ModeSpec::parse).transpose()?,
        })
    }

    /// The attribute changes needed on an existing path (empty when it already matches).
    pub fn changes(&self, st: &FileState) -> Attrs {
        let is_dir = st.kind == crate::connection::FileKind::Directory;
        Attrs {
            owner: self
                .owner
                .clone()
                .filter(|o| *o != st.owner && *o != st.uid.to_string()),
            group: self
                .group
                .clone()
                .filter(|g| *g != st.group && *g != st.gid.to_string()),
            mode: self
                .mode
                .as_ref()
                .and_then(|m| m.apply(st.mode, is_dir))
                .filter(|m| *m != st.mode),
        }
    }

    /// The attributes for a new path; the mode default comes from the connection (umask).
    pub fn for_new(&self, is_dir: bool) -> Attrs {
        let base = if is_dir { 0o755 } else { 0o644 };
        Attrs {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.as_ref().and_then(|m| match m {
                ModeSpec::Octal(_) | ModeSpec::Symbolic(_) => m.apply(base, is_dir),
                ModeSpec::Preserve => None,
            }),
        }
    }
}

pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

/// Plan replacing the content of `path` (current state `st`, with content or checksum read).
/// Returns the ops and the diff; no ops when content and attributes already match. A symbolic
/// link at `path` is replaced, not followed (see [`plan_write_follow`]).
pub fn plan_write(
    path: &str,
    st: &FileState,
    new: Vec<u8>,
    spec: &AttrSpec,
    backup: bool,
) -> (Vec<Op>, Option<Diff>) {
    plan_write_follow(path, st, new, spec, backup, false)
}

/// [`plan_write`], deciding whether a symbolic link at `path` is followed: `follow` writes the
/// file it points to (then `st` is that file's state, read with `follow`), else the link is
/// replaced by a regular file. A `st` that is a link (read without `follow`, see
/// [`link_replacement`]) is always replaced, and its own mode (lstat's 0777) is never used:
/// without `mode:`, the connection keeps the mode of the regular file the link pointed to.
pub fn plan_write_follow(
    path: &str,
    st: &FileState,
    new: Vec<u8>,
    spec: &AttrSpec,
    backup: bool,
    follow: bool,
) -> (Vec<Op>, Option<Diff>) {
    let is_link = st.kind == crate::connection::FileKind::Link;
    let same = st.exists()
        && !is_link
        && match (&st.content, &st.sha256) {
            (Some(c), _) => *c == new,
            (None, Some(h)) => *h == hex::encode(sha2::Sha256::digest(&new)),
            (None, None) => false,
        };
    let mut ops = Vec::new();
    let mut diff = None;
    if same {
        ops = attrs_only(path, st, spec);
    } else {
        let attrs = if st.exists() {
            let mut a = spec.changes(st);
            // The write replaces the inode: carry over owner and group explicitly when asked.
            if a.owner.is_none() {
                a.owner = spec.owner.clone();
            }
            if a.group.is_none() {
                a.group = spec.group.clone();
            }
            if a.mode.is_none() {
                a.mode = spec
                    .mode
                    .as_ref()
                    .and_then(|m| m.apply(st.mode, false))
                    .or((!is_link).then_some(st.mode));
            }
            a
        } else {
            spec.for_new(false)
        };
        let before = st.content.clone().unwrap_or_default();
        // Key material, binary content and private files are never shown (report::diff).
        let private = [attrs.mode, st.exists().then_some(st.mode)]
            .into_iter()
            .flatten()
            .any(diff::is_private_mode);
        diff = Some(diff::content(path, &before, &new, private));
        ops.push(Op::Write {
            path: path.to_string(),
            content: Arc::new(new),
            attrs,
            backup: backup && st.exists(),
            follow,
        });
    }
    (ops, diff)
}

/// The state a write that replaces the symbolic link `link` (read without `follow`) starts
/// from, given `target`, the state read through it: the attributes of the regular file it points
/// to (Ansible's `atomic_move` takes them with stat(2)), or a new file when it points to nothing
/// or to something else than a regular file. Never the link's own attributes.
pub fn link_replacement(link: &FileState, target: &FileState) -> FileState {
    if target.kind != crate::connection::FileKind::File {
        return FileState::default();
    }
    FileState {
        kind: crate::connection::FileKind::Link,
        link_target: link.link_target.clone(),
        sha256: None,
        sha1: None,
        content: None,
        ..target.clone()
    }
}

/// The op fixing the attributes of an existing `path` whose content stays (none when they match).
pub fn attrs_only(path: &str, st: &FileState, spec: &AttrSpec) -> Vec<Op> {
    let changes = spec.changes(st);
    if !st.exists() || changes.is_empty() {
        return Vec::new();
    }
    vec![Op::SetAttrs {
        path: path.to_string(),
        attrs: changes,
        follow: true,
    }]
}

/// Read a path's state with content (for editors) or checksums (for copy). A dropped
/// connection stays [`ModuleError::Unreachable`].
pub async fn read(ctx: &ModuleCtx<'_>, path: &str, want: Want) -> Result<FileState, ModuleError> {
    ctx.host.stat(path, want).await
}

/// Find `src` on the control node: absolute, or in `<dir>/<subdir>/src`, then `<dir>/src`
/// for each search directory (role first, then the playbook), as Ansible does.
pub fn find_src(ctx: &ModuleCtx<'_>, src: &str, subdir: &str) -> Result<PathBuf, String> {
    find_in(ctx.search_dirs, src, subdir)
}

/// [`find_src`] over explicit search directories (also used at load time).
pub fn find_in(search_dirs: &[PathBuf], src: &str, subdir: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(src);
    if p.is_absolute() {
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("Could not find or access '{src}'"))
        };
    }
    let mut tried = Vec::new();
    for dir in search_dirs {
        for cand in [dir.join(subdir).join(src), dir.join(src)] {
            if cand.exists() {
                return Ok(cand);
            }
            tried.push(cand.display().to_string());
        }
    }
    Err(format!(
        "Could not find or access '{src}'; searched: {}",
        tried.join(", ")
    ))
}

/// Ansible's result keys for a file after the task (as it will be once the ops are applied).
pub fn file_result(
    path: &str,
    st: &FileState,
    spec: &AttrSpec,
    content: Option<&[u8]>,
) -> Map<String, Value> {
    let is_dir = st.kind == crate::connection::FileKind::Directory;
    let mode = spec
        .mode
        .as_ref()
        .and_then(|m| m.apply(if st.exists() { st.mode } else { 0o644 }, is_dir))
        .unwrap_or(st.mode);
    let mut m = Map::new();
    m.insert("path".into(), json!(path));
    m.insert("dest".into(), json!(path));
    m.insert(
        "owner".into(),
        json!(spec.owner.clone().unwrap_or_else(|| st.owner.clone())),
    );
    m.insert(
        "group".into(),
        json!(spec.group.clone().unwrap_or_else(|| st.group.clone())),
    );
    m.insert("mode".into(), json!(format!("{mode:04o}")));
    if let Some(c) = content {
        m.insert("checksum".into(), json!(sha1_hex(c)));
        m.insert("size".into(), json!(c.len()));
    }
    m
}

/// What an editor reads of its file: the content, through a link.
pub const TEXT: Want = Want {
    content: true,
    checksum: false,
    follow: true,
};

/// [`crate::modules::Module::reads`] of a module that reads the text of its `path` argument.
pub fn text_reads(args: &Args) -> Vec<(String, Want)> {
    args.str("path")
        .map(|p| vec![(p.to_string(), TEXT)])
        .unwrap_or_default()
}

/// Whether an editor writes through a symbolic link at its path: Ansible's lineinfile and
/// blockinfile always write to the realpath (they have no `follow`); community.general's
/// ini_file has `follow`, default no (the link is replaced by a regular file).
pub fn editor_follows(args: &Args, spec: &[crate::modules::Arg]) -> bool {
    if spec.iter().any(|a| a.name == "follow") {
        args.bool("follow", false)
    } else {
        true
    }
}

/// The file an editor works on, read through a link: its state and its text (`None` when it
/// does not exist). A directory or content that is not UTF-8 fails the task.
pub async fn read_text(
    ctx: &ModuleCtx<'_>,
    path: &str,
) -> Result<(FileState, Option<String>), ModuleError> {
    let st = read(ctx, path, TEXT).await?;
    if st.kind == crate::connection::FileKind::Directory {
        return Err(ModuleError::failed(format!("Path {path} is a directory !")));
    }
    let current = match &st.content {
        Some(c) if st.exists() => {
            Some(String::from_utf8(c.clone()).map_err(|_| format!("{path} is not UTF-8 text"))?)
        }
        _ => None,
    };
    Ok((st, current))
}

/// The shared plan of the text editors: read the file (through a link), run the pure editor on
/// its content, then write the result atomically (or only fix attributes); `follow` as
/// [`editor_follows`].
pub async fn plan_edit<A: serde::de::DeserializeOwned>(
    ctx: &ModuleCtx<'_>,
    args: &Args,
    content_args: &[&str],
    follow: bool,
    editor: impl Fn(Option<&str>, &A) -> Result<crate::modules::edit::Edit, String>,
) -> Result<crate::modules::Plan, ModuleError> {
    use crate::modules::Plan;
    let path = args.req("path")?;
    let mut sub = Map::new();
    for (k, v) in &args.map {
        if content_args.contains(&k.as_str()) && !v.is_null() {
            sub.insert(k.clone(), v.clone());
        }
    }
    let eargs: A = serde_json::from_value(Value::Object(sub)).map_err(|e| e.to_string())?;
    let spec = AttrSpec::from_args(args)?;
    let (st, current) = read_text(ctx, &path).await?;
    let edit = match editor(current.as_deref(), &eargs) {
        Ok(e) => e,
        Err(msg) => {
            return Err(ModuleError::failed(msg.replace(
                "file does not exist",
                &format!("Destination {path} does not exist"),
            )))
        }
    };
    let (ops, diff) = if edit.changed {
        plan_write_follow(
            &path,
            &st,
            edit.content.into_bytes(),
            &spec,
            args.bool("backup", false),
            follow,
        )
    } else {
        (attrs_only(&path, &st, &spec), None)
    };
    let mut result = file_result(&path, &st, &spec, None);
    result.insert("msg".into(), json!(edit.msg));
    Ok(Plan::ops(ops, diff).with_result(result))
}

/// The `Module` impl of a pure text editor: its spec, and [`plan_edit`] with its editor.
macro_rules! editor_module {
    ($ty:ident, $name:literal, $spec:expr, $content_args:expr, $edit:expr) => {
        #[async_trait::async_trait]
        impl crate::modules::Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn args(&self) -> Option<&'static [crate::modules::Arg]> {
                Some($spec)
            }

            fn reads(&self, args: &crate::modules::Args) -> Vec<(String, crate::connection::Want)> {
                super::common::text_reads(args)
            }

            async fn plan(
                &self,
                ctx: &crate::modules::ModuleCtx<'_>,
                args: &crate::modules::Args,
            ) -> Result<crate::modules::Plan, crate::modules::ModuleError> {
                let follow = super::common::editor_follows(args, $spec);
                super::common::plan_edit(ctx, args, $content_args, follow, $edit).await
            }
        }
    };
}
pub(crate) use editor_module;
