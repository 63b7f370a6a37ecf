//! `apt`: Debian packages by name (`name=version` pins an exact version) or from local `.deb`
//! files (`deb`, or a `name` ending in `.deb`), `state: present|latest|absent`, `update_cache`
//! with `cache_valid_time`, `purge`, `autoremove`, `install_recommends`, `allow_downgrade`,
//! `lock_timeout`. Result keys as Ansible's: `cache_updated`, `cache_update_time`, `stdout`,
//! `stderr`. The decisions are in `apt_plan.rs`.
use async_trait::async_trait;

use super::apt_plan::{self, AptOpts};
use super::request::{self, Family, PkgState};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Apt;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::ListCsv).aliases(&["pkg", "package"]),
    Arg::new("state", Kind::Str).choices(request::STATES),
    Arg::new("deb", Kind::Str),
    Arg::new("update_cache", Kind::Bool).aliases(&["update-cache"]),
    Arg::new("cache_valid_time", Kind::Int).range(0, 31_536_000),
    Arg::new("install_recommends", Kind::Bool).aliases(&["install-recommends"]),
    Arg::new("purge", Kind::Bool),
    Arg::new("autoremove", Kind::Bool),
    Arg::new("allow_downgrade", Kind::Bool).aliases(&[
        "allow-downgrade",
        "allow_downgrades",
        "allow-downgrades",
    ]),
    Arg::new("lock_timeout", Kind::Int).range(0, 86_400),
];

#[async_trait]
impl Module for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if args.has("name") && args.has("deb") {
            return Err("parameters are mutually exclusive: deb|name".into());
        }
        if !["name", "deb", "update_cache", "cache_valid_time"]
            .iter()
            .any(|k| args.has(k))
        {
            return Err("one of the following is required: name, deb, update_cache".into());
        }
        request::check_literal_names(args, Family::Deb)
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let wanted = request::wanted(args, Family::Deb).map_err(ModuleError::InvalidArgs)?;
        apt_plan::plan(ctx, &wanted, PkgState::of(args), AptOpts::from_args(args)).await
    }
}
