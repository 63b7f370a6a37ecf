//! `copy`: put a file from the control node (`src`) or inline `content` on the host.
//! SHA-256 is compared first: nothing is sent when the file is already right.
use std::os::unix::fs::PermissionsExt;

use async_trait::async_trait;

use super::common::{self, AttrSpec};
use crate::connection::{FileKind, Want};
use crate::modules::args::FILE_ATTRS;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::report::diff;

pub struct Copy;

const ARGS: &[Arg] = &[
    Arg::new("src", Kind::Str),
    Arg::new("content", Kind::Raw),
    Arg::new("dest", Kind::Str).required(),
    Arg::new("backup", Kind::Bool),
    Arg::new("force", Kind::Bool).aliases(&["thirsty"]),
    Arg::new("remote_src", Kind::Bool),
    Arg::new("follow", Kind::Bool),
    Arg::new("directory_mode", Kind::Mode),
    FILE_ATTRS[0],
    FILE_ATTRS[1],
    FILE_ATTRS[2],
];

/// `dest/` (a trailing slash) names a directory: the file keeps `src`'s name in it.
pub fn resolve_dest(dest: &str, src: Option<&str>) -> Result<String, String> {
    if !dest.ends_with('/') {
        return Ok(dest.to_string());
    }
    match src.and_then(|s| std::path::Path::new(s).file_name()) {
        Some(b) => Ok(format!("{dest}{}", b.to_string_lossy())),
        None => Err(format!(
            "dest '{dest}' must be a file path when content is given"
        )),
    }
}

/// What copy and template read of `dest` first: checksums, through a link with `follow`.
pub fn dest_want(args: &Args) -> Want {
    Want {
        checksum: true,
        follow: args.bool("follow", false),
        content: false,
    }
}

/// Plan writing `data` to `dest` with the usual copy semantics (`force`, `backup`, attributes,
/// `follow`: default no, a symbolic link at `dest` is replaced, as Ansible's copy and template).
/// When `dest` turns out to be a directory and the content came from a file (`src_name`), the
/// file goes into it under that name, as Ansible does; that costs a second stat only then.
pub async fn plan_content(
    ctx: &ModuleCtx<'_>,
    args: &Args,
    dest: &str,
    src_name: Option<&str>,
    data: Vec<u8>,
) -> Result<Plan, ModuleError> {
    let spec = AttrSpec::from_args(args)?;
    let follow = args.bool("follow", false);
    let want = dest_want(args);
    let mut dest = dest.to_string();
    let mut st = common::read(ctx, &dest, want).await?;
    if !follow && st.kind == FileKind::Link {
        // Not followed (Ansible's default): the link is replaced by a regular file that takes
        // the attributes of the file it pointed to. A link to a directory counts as the
        // directory when the content comes from a file.
        let target = common::read(
            ctx,
            &dest,
            Want {
                follow: true,
                ..want
            },
        )
        .await?;
        st = if target.kind == FileKind::Directory && src_name.is_some() {
            target
        } else {
            common::link_replacement(&st, &target)
        };
    }
    if st.kind == FileKind::Directory {
        let Some(name) = src_name.and_then(|s| std::path::Path::new(s).file_name()) else {
            return Err(ModuleError::failed(format!("dest '{dest}' is a directory")));
        };
        dest = format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy());
        st = common::read(ctx, &dest, want).await?;
        if st.kind == FileKind::Directory {
            return Err(ModuleError::failed(format!("dest '{dest}' is a directory")));
        }
    }
    let dest = dest.as_str();
    if st.exists() && !args.bool("force", true) {
        let mut result = common::file_result(dest, &st, &AttrSpec::default(), None);
        result.insert("msg".into(), "file already exists".into());
        return Ok(Plan::ok().with_result(result));
    }
    // Editors need the old text for the diff; fetch it only when the content differs.
    if st.kind == FileKind::File
        && st.sha256.as_deref() != Some(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data)))
    {
        st = common::read(
            ctx,
            dest,
            Want {
                content: true,
                checksum: true,
                follow,
            },
        )
        .await?;
    }
    let result = common::file_result(dest, &st, &spec, Some(&data));
    let (ops, diff) =
        common::plan_write_follow(dest, &st, data, &spec, args.bool("backup", false), follow);
    Ok(Plan::ops(ops, diff).with_result(result))
}

/// A source file that is private (not readable by group or others) is never diffed.
fn private_source(mut plan: Plan, private: bool) -> Plan {
    if let Some(d) = plan.diff_mut().filter(|_| private) {
        *d = diff::content(&d.path, b"", b"", true);
    }
    plan
}

#[async_trait]
impl Module for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, Want)> {
        let Some(dest) = args.str("dest") else {
            return Vec::new();
        };
        let src = args.str("src");
        let mut out = Vec::new();
        if args.bool("remote_src", false) {
            if let Some(s) = src {
                out.push((s.to_string(), common::TEXT));
            }
        }
        if let Ok(dest) = resolve_dest(dest, src) {
            out.push((dest, dest_want(args)));
        }
        out
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        match (args.has("src"), args.map.contains_key("content")) {
            (true, true) => Err("parameters are mutually exclusive: content|src".into()),
            (false, false) => Err("one of the following is required: src, content".into()),
            _ => Ok(()),
        }
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let dest = args.req("dest")?;
        if let Some(src) = args.str("src") {
            if args.bool("remote_src", false) {
                let st = common::read(
                    ctx,
                    src,
                    Want {
                        content: true,
                        follow: true,
                        checksum: false,
                    },
                )
                .await?;
                let private = st.exists() && diff::is_private_mode(st.mode);
                let data = st
                    .content
                    .ok_or_else(|| format!("Source {src} not found"))?;
                let dest = resolve_dest(&dest, Some(src))?;
                let plan = plan_content(ctx, args, &dest, Some(src), data).await?;
                return Ok(private_source(plan, private));
            }
            let path = common::find_src(ctx, src, "files")?;
            if path.is_dir() {
                return Err(ModuleError::failed(format!(
                    "src '{src}' is a directory: copying directories is not supported yet; copy its files one by one (loop)"
                )));
            }
            let data = std::fs::read(&path)
                .map_err(|e| format!("could not read {}: {e}", path.display()))?;
            // The PKI writes keys 0600: a private source is a secret wherever it goes.
            let private = std::fs::metadata(&path)
                .is_ok_and(|m| diff::is_private_mode(m.permissions().mode()));
            let dest = resolve_dest(&dest, Some(src))?;
            let mut plan = private_source(
                plan_content(ctx, args, &dest, Some(src), data).await?,
                private,
            );
            plan.result
                .insert("src".into(), path.display().to_string().into());
            return Ok(plan);
        }
        let content = match args.map.get("content") {
            Some(serde_json::Value::String(s)) => s.clone().into_bytes(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            // Ansible writes structured content as JSON.
            Some(other) => other.to_string().into_bytes(),
        };
        let dest = resolve_dest(&dest, None)?;
        plan_content(ctx, args, &dest, None, content).await
    }
}
