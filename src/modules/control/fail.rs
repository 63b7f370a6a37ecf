//! `fail`: fail the host with a message.
use async_trait::async_trait;

use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Fail;

const ARGS: &[Arg] = &[Arg::new("msg", Kind::Raw)];

#[async_trait]
impl Module for Fail {
    fn name(&self) -> &'static str {
        "fail"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    async fn plan(&self, _ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        Err(ModuleError::failed(
            args.string("msg")
                .unwrap_or_else(|| "Failed as requested from task".into()),
        ))
    }
}
