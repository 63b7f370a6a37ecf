//! `package`: Ansible's generic package module (`name`, `state`, `use`). `use: auto` takes the
//! `ansible_pkg_mgr` variable when the inventory sets it, else the first of `apt-get`, `dnf`,
//! `yum` found on the host; `use: apt|dnf|yum` names one. The chosen manager's plan does the
//! rest (`apt_plan.rs`, `rpm_plan.rs`) with its defaults; its result keys are returned.
use async_trait::async_trait;

use super::apt_plan::{self, AptOpts};
use super::request::{self, Family, PkgState};
use super::rpm_plan::{self, RpmOpts};
use crate::connection::ExecRequest;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::os::rpm::Tool;

pub struct Package;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::ListCsv).aliases(&["pkg"]).required(),
    Arg::new("state", Kind::Str)
        .choices(request::STATES)
        .required(),
    Arg::new("use", Kind::Str).choices(&["auto", "apt", "dnf", "yum"]),
];

/// The first package manager the host has.
const DETECT: &str = "for t in apt-get dnf yum; do \
                      if command -v \"$t\" >/dev/null 2>&1; then echo \"$t\"; break; fi; done\n";

/// The manager for a name (`ansible_pkg_mgr` values included).
fn manager(word: &str) -> Option<Option<Tool>> {
    match word.trim() {
        "apt" | "apt-get" => Some(None),
        "dnf" | "dnf5" => Some(Some(Tool::Dnf)),
        "yum" => Some(Some(Tool::Yum)),
        _ => None,
    }
}

#[async_trait]
impl Module for Package {
    fn name(&self) -> &'static str {
        "package"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        // A `.deb` or an `.rpm` is a file either way; other checks are the same.
        request::check_literal_names(args, Family::Rpm)
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let wanted_use = args.str("use").unwrap_or("auto");
        let chosen = if wanted_use != "auto" {
            manager(wanted_use)
        } else if let Some(v) = ctx.vars.get("ansible_pkg_mgr").and_then(|v| v.as_str()) {
            Some(manager(v).ok_or_else(|| {
                ModuleError::failed(format!(
                    "package: ansible_pkg_mgr is `{v}`; castellan drives apt, dnf and yum"
                ))
            })?)
        } else {
            let req = ExecRequest {
                shell: Some(DETECT.to_string()),
                ..ExecRequest::default()
            };
            let out = ctx.host.query(&req).await?;
            manager(&String::from_utf8_lossy(&out.stdout))
        };
        let state = PkgState::of(args);
        match chosen {
            Some(None) => {
                let wanted =
                    request::wanted(args, Family::Deb).map_err(ModuleError::InvalidArgs)?;
                apt_plan::plan(ctx, &wanted, state, AptOpts::default()).await
            }
            Some(Some(tool)) => {
                let wanted =
                    request::wanted(args, Family::Rpm).map_err(ModuleError::InvalidArgs)?;
                rpm_plan::plan(ctx, tool, &wanted, state, RpmOpts::default()).await
            }
            None => Err(ModuleError::failed(
                "package: no package manager found on the host (looked for apt-get, dnf, yum); \
                 set `use` or ansible_pkg_mgr",
            )),
        }
    }
}
