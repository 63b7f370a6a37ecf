//! `template`: render a tera template from the control node and put it on the host.
use async_trait::async_trait;

use super::common;
use super::copy::{dest_want, plan_content, resolve_dest};
use crate::modules::args::FILE_ATTRS;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Template;

/// What `ansible_managed` is when the inventory does not set it (Ansible's default).
pub const ANSIBLE_MANAGED: &str = "Ansible managed";

const ARGS: &[Arg] = &[
    Arg::new("src", Kind::Str).required(),
    Arg::new("dest", Kind::Str).required(),
    Arg::new("backup", Kind::Bool),
    Arg::new("force", Kind::Bool),
    Arg::new("follow", Kind::Bool),
    Arg::new("newline_sequence", Kind::Str).choices(&["\n", "\r\n", "\r"]),
    FILE_ATTRS[0],
    FILE_ATTRS[1],
    FILE_ATTRS[2],
];

#[async_trait]
impl Module for Template {
    fn name(&self) -> &'static str {
        "template"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, crate::connection::Want)> {
        args.str("dest")
            .and_then(|d| resolve_dest(d, None).ok())
            .map(|d| vec![(d, dest_want(args))])
            .unwrap_or_default()
    }

    fn check_files(
        &self,
        args: &Args,
        search_dirs: &[std::path::PathBuf],
        templar: &crate::template::Templar,
    ) -> Result<crate::template::Names, String> {
        let Some(src) = args.str("src").filter(|s| !crate::template::is_template(s)) else {
            return Ok(Default::default());
        };
        let path = common::find_in(search_dirs, src, "templates")?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("could not read template {}: {e}", path.display()))?;
        let mut names = templar
            .names_file(&text)
            .map_err(|e| format!("in template {}: {e}", path.display()))?;
        names.required.retain(|n| n != "ansible_managed");
        Ok(names)
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let src = args.req("src")?;
        let path = common::find_in(ctx.search_dirs, &src, "templates")?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("could not read template {}: {e}", path.display()))?;
        let mut vars = ctx.vars.clone();
        if !vars.contains_key("ansible_managed") {
            vars.insert("ansible_managed", ANSIBLE_MANAGED);
        }
        let mut out = ctx
            .templar
            .render_template_file(&text, &vars)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(nl) = args.str("newline_sequence").filter(|n| *n != "\n") {
            out = out.replace('\n', nl);
        }
        let dest = resolve_dest(&args.req("dest")?, None)?;
        plan_content(ctx, args, &dest, None, out.into_bytes()).await
    }
}
