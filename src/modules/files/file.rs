//! `file`: directories, links, empty files, removal, and owner/group/mode of existing paths.
use async_trait::async_trait;
use serde_json::json;

use super::common::{self, AttrSpec};
use crate::connection::{FileKind, Op, Want};
use crate::modules::args::FILE_ATTRS;
use crate::modules::{Arg, Args, Diff, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct File;

const ARGS: &[Arg] = &[
    Arg::new("path", Kind::Str)
        .aliases(&["dest", "name"])
        .required(),
    Arg::new("state", Kind::Str).choices(&["file", "directory", "absent", "touch", "link", "hard"]),
    Arg::new("src", Kind::Str),
    Arg::new("force", Kind::Bool),
    Arg::new("follow", Kind::Bool),
    Arg::new("recurse", Kind::Bool),
    Arg::new("access_time", Kind::Str),
    Arg::new("modification_time", Kind::Str),
    FILE_ATTRS[0],
    FILE_ATTRS[1],
    FILE_ATTRS[2],
];

fn kind_name(k: FileKind) -> &'static str {
    match k {
        FileKind::Missing => "absent",
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Link => "link",
        FileKind::Other => "file",
    }
}

/// The path as the module works on it: without a trailing slash (`/` stays `/`).
fn target(path: &str) -> String {
    match path.trim_end_matches('/') {
        "" => "/".to_string(),
        p => p.to_string(),
    }
}

/// What the module reads of the path first: metadata, through a link unless `follow: no`.
fn first_want(args: &Args) -> Want {
    Want {
        follow: args.bool("follow", true),
        ..Want::default()
    }
}

#[async_trait]
impl Module for File {
    fn name(&self) -> &'static str {
        "file"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, Want)> {
        args.str("path")
            .map(|p| vec![(target(p), first_want(args))])
            .unwrap_or_default()
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        match args.str("state") {
            Some("link") | Some("hard") if !args.has("src") => {
                Err("src is required when state is link or hard".into())
            }
            Some("hard") => Err("state=hard is not supported; use state=link".into()),
            Some("file") | Some("directory") | Some("absent") | Some("touch")
                if args.has("src") =>
            {
                Err("src option requires state to be 'link' or 'hard'".into())
            }
            _ => Ok(()),
        }
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = target(&args.req("path")?);
        let spec = AttrSpec::from_args(args)?;
        let follow = args.bool("follow", true);
        let st = common::read(ctx, &path, first_want(args)).await?;
        let state = args.str("state").map(str::to_string).unwrap_or_else(|| {
            if st.exists() {
                kind_name(st.kind).to_string()
            } else {
                "file".into()
            }
        });
        let mut ops: Vec<Op> = Vec::new();
        let mut diff: Option<Diff> = None;
        let mut result = serde_json::Map::new();
        result.insert("path".into(), json!(path));
        result.insert("state".into(), json!(state));
        match state.as_str() {
            "absent" => {
                if st.exists() {
                    ops.push(Op::Remove { path: path.clone() });
                    diff = Some(Diff {
                        path: path.clone(),
                        before: format!("state: {}\n", kind_name(st.kind)),
                        after: "state: absent\n".into(),
                        secret: false,
                    });
                }
            }
            "file" => {
                if !st.exists() {
                    return Err(ModuleError::failed(format!(
                        "file ({path}) is absent, cannot continue (use state: touch to create it)"
                    )));
                }
                if st.kind == FileKind::Directory {
                    return Err(ModuleError::failed(format!(
                        "file ({path}) is a directory, not a file"
                    )));
                }
                push_attrs(&mut ops, &mut diff, &path, &spec, &st, follow);
            }
            "directory" => match st.kind {
                FileKind::Missing => ops.push(Op::Mkdir {
                    path: path.clone(),
                    attrs: spec.for_new(true),
                }),
                FileKind::Directory => push_attrs(&mut ops, &mut diff, &path, &spec, &st, follow),
                k => {
                    return Err(ModuleError::failed(format!(
                        "{path} already exists as a {}",
                        kind_name(k)
                    )))
                }
            },
            "touch" => {
                ops.push(Op::Touch {
                    path: path.clone(),
                    attrs: if st.exists() {
                        spec.changes(&st)
                    } else {
                        spec.for_new(false)
                    },
                });
            }
            "link" => {
                let src = args.req("src")?;
                let lst = common::read(ctx, &path, Want::default()).await?;
                if lst.kind == FileKind::Link && lst.link_target.as_deref() == Some(src.as_str()) {
                    // Attributes of a link are those of its target.
                } else {
                    if lst.kind == FileKind::File && !args.bool("force", false) {
                        return Err(ModuleError::failed(format!(
                            "refusing to convert from file to symlink for {path} (set force: true)"
                        )));
                    }
                    if lst.kind == FileKind::Directory {
                        return Err(ModuleError::failed(format!(
                            "refusing to convert from directory to symlink for {path}"
                        )));
                    }
                    ops.push(Op::Symlink {
                        src: src.clone(),
                        path: path.clone(),
                        force: args.bool("force", false),
                    });
                }
                result.insert("src".into(), json!(src));
            }
            other => {
                return Err(ModuleError::InvalidArgs(format!(
                    "unsupported state {other}"
                )))
            }
        }
        let after = common::file_result(&path, &st, &spec, None);
        for (k, v) in after {
            result.entry(k).or_insert(v);
        }
        Ok(Plan::ops(ops, diff).with_result(result))
    }
}

fn push_attrs(
    ops: &mut Vec<Op>,
    diff: &mut Option<Diff>,
    path: &str,
    spec: &AttrSpec,
    st: &crate::connection::FileState,
    follow: bool,
) {
    let changes = spec.changes(st);
    if !changes.is_empty() {
        *diff = Some(Diff {
            path: path.to_string(),
            before: attr_text(&st.owner, &st.group, st.mode),
            after: attr_text(
                changes.owner.as_deref().unwrap_or(&st.owner),
                changes.group.as_deref().unwrap_or(&st.group),
                changes.mode.unwrap_or(st.mode),
            ),
            secret: false,
        });
        ops.push(Op::SetAttrs {
            path: path.to_string(),
            attrs: changes,
            follow,
        });
    }
}

fn attr_text(owner: &str, group: &str, mode: u32) -> String {
    format!("owner: {owner}\ngroup: {group}\nmode: {mode:04o}\n")
}
