//! `systemd` (also `systemd_service`): a unit's `state` (`started`, `stopped`, `restarted`,
//! `reloaded`), `enabled`, `masked`, `daemon_reload`, `daemon_reexec`, `no_block`, `force`.
//! Result keys as Ansible's: `name`, `state`, `enabled`, `status` (`systemctl show`
//! properties: a fixed set, not `Environment` or `ExecStart`, which can hold secrets). The
//! decisions are in `systemd_plan.rs`.
use async_trait::async_trait;

use super::systemd_plan::{self, SystemdReq};
use super::{SvcState, STATES};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Systemd;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::Str).aliases(&["service", "unit"]),
    Arg::new("state", Kind::Str).choices(STATES),
    Arg::new("enabled", Kind::Bool),
    Arg::new("masked", Kind::Bool),
    Arg::new("daemon_reload", Kind::Bool).aliases(&["daemon-reload"]),
    Arg::new("daemon_reexec", Kind::Bool).aliases(&["daemon-reexec"]),
    Arg::new("no_block", Kind::Bool),
    Arg::new("force", Kind::Bool),
];

#[async_trait]
impl Module for Systemd {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        let asks = ["state", "enabled", "masked"];
        if !asks
            .iter()
            .chain(&["daemon_reload", "daemon_reexec"])
            .any(|k| args.has(k))
        {
            return Err("one of the following is required: state, enabled, masked, \
                        daemon_reload, daemon_reexec"
                .into());
        }
        if let Some(k) = asks.iter().find(|k| args.has(k)) {
            if !args.has("name") {
                return Err(format!("missing parameter(s) required by '{k}': name"));
            }
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let req = SystemdReq {
            name: args.string("name"),
            state: SvcState::of(args),
            enabled: args.has("enabled").then(|| args.bool("enabled", false)),
            masked: args.has("masked").then(|| args.bool("masked", false)),
            daemon_reload: args.bool("daemon_reload", false),
            daemon_reexec: args.bool("daemon_reexec", false),
            no_block: args.bool("no_block", false),
            force: args.bool("force", false),
        };
        systemd_plan::plan(ctx, &req).await
    }
}
