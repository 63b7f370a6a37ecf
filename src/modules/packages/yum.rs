//! `yum`: RPM packages through yum (RHEL 7 and older; on newer systems
//! `yum` is dnf) by name or from local `.rpm` files (a `name` ending in `.rpm`),
//! `state: present|latest|absent`, `update_cache`, `disable_gpg_check`, `enablerepo`,
//! `disablerepo`, `allow_downgrade`. Result keys as Ansible's: `msg`, `rc`, `results`
//! (`Installed: name-version`, `Removed: ...`). The decisions are in `rpm_plan.rs`.
use async_trait::async_trait;

use super::request::{self, Family, PkgState};
use super::rpm_plan::{self, RpmOpts};
use crate::modules::{Arg, Args, Module, ModuleCtx, ModuleError, Plan};
use crate::os::rpm::Tool;

pub struct Yum;

#[async_trait]
impl Module for Yum {
    fn name(&self) -> &'static str {
        "yum"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(super::RPM_ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        super::validate_rpm(args)
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let wanted = request::wanted(args, Family::Rpm).map_err(ModuleError::InvalidArgs)?;
        let opts = RpmOpts::from_args(args);
        rpm_plan::plan(ctx, Tool::Yum, &wanted, PkgState::of(args), opts).await
    }
}
