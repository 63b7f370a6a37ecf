//! `stat`: facts about a path, registered as `result.stat` with Ansible's keys.
use async_trait::async_trait;
use serde_json::{json, Map};

use super::common;
use crate::connection::{FileKind, Want};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Stat;

const ARGS: &[Arg] = &[
    Arg::new("path", Kind::Str)
        .aliases(&["dest", "name"])
        .required(),
    Arg::new("follow", Kind::Bool),
    Arg::new("get_checksum", Kind::Bool),
    Arg::new("checksum_algorithm", Kind::Str)
        .aliases(&["checksum", "checksum_algo"])
        .choices(&["sha1", "sha256"]),
    Arg::new("get_mime", Kind::Bool),
    Arg::new("get_attributes", Kind::Bool),
];

/// What the stat module reads.
fn want(args: &Args) -> Want {
    Want {
        checksum: args.bool("get_checksum", true),
        follow: args.bool("follow", false),
        content: false,
    }
}

#[async_trait]
impl Module for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, Want)> {
        args.str("path")
            .map(|p| vec![(p.to_string(), want(args))])
            .unwrap_or_default()
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = args.req("path")?;
        let st = common::read(ctx, &path, want(args)).await?;
        let mut s = Map::new();
        s.insert("exists".into(), json!(st.exists()));
        if st.exists() {
            s.insert("path".into(), json!(path));
            s.insert("mode".into(), json!(format!("{:04o}", st.mode)));
            s.insert("isdir".into(), json!(st.kind == FileKind::Directory));
            s.insert("isreg".into(), json!(st.kind == FileKind::File));
            s.insert("islnk".into(), json!(st.kind == FileKind::Link));
            s.insert("uid".into(), json!(st.uid));
            s.insert("gid".into(), json!(st.gid));
            s.insert("pw_name".into(), json!(st.owner));
            s.insert("gr_name".into(), json!(st.group));
            s.insert("size".into(), json!(st.size));
            s.insert("mtime".into(), json!(st.mtime));
            s.insert("atime".into(), json!(st.atime));
            let m = st.mode;
            for (key, bit) in [
                ("rusr", 0o400),
                ("wusr", 0o200),
                ("xusr", 0o100),
                ("rgrp", 0o040),
                ("wgrp", 0o020),
                ("xgrp", 0o010),
                ("roth", 0o004),
                ("woth", 0o002),
                ("xoth", 0o001),
                ("isuid", 0o4000),
                ("isgid", 0o2000),
            ] {
                s.insert(key.into(), json!(m & bit != 0));
            }
            if let Some(t) = &st.link_target {
                s.insert("lnk_source".into(), json!(t));
                s.insert("lnk_target".into(), json!(t));
            }
            if st.kind == FileKind::File && want(args).checksum {
                let sum = if args.str("checksum_algorithm") == Some("sha256") {
                    st.sha256.clone()
                } else {
                    st.sha1.clone()
                };
                s.insert("checksum".into(), json!(sum));
            }
        }
        Ok(Plan::ok().with("stat", s))
    }
}
