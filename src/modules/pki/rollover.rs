//! `pki_rollover`: the PKI side of a phased CA rollover ([`crate::pki::rollover`]), for
//! `playbooks/rotate-ca.yml`.
//!
//! - `state: plan` (the default without `phase`): where the rollover stands and the phases this
//!   run would do (`summary`, `todo`); changes nothing.
//! - `phase: N` (`state: started`, the default with `phase`): when N is the phase to do (and not
//!   beyond `stop_after`), applies its PKI step (or converges it again) and registers
//!   `run: true`, so that the tasks after it bring every holder the phase's files; otherwise
//!   changes nothing and registers `run: false`. Hosts that run it after the first find it
//!   applied (`ok`, `run: true`).
//! - `phase: N, state: done`: records phase N complete (run it once every holder has the files).
//!
//! Registers `run`, `phase`, `todo` (the phases still to do in this run), `summary`, `rollover`
//! (the record of `rollover.json`, or null), `dir`, `ca`, and `reason` when something changed.
//! The new CA's key type (`key_type`) defaults to the old CA's, its lifetime (`days`) to the old
//! CA's; `not_before_margin` as for `pki_ca`.
use std::path::Path;

use serde_json::{Map, Value};

use super::{key_type, path_value, pki_dir, Ensure, Report};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::pki::rollover::{
    ensure_rollover, plan_rollover, RolloverOutcome, RolloverSpec, RolloverStep, PHASES,
};
use crate::pki::store::PkiDir;

pub struct PkiRollover;

const ARGS: &[Arg] = &[
    Arg::new("dir", Kind::Str),
    Arg::new("phase", Kind::Int).range(1, PHASES as i64),
    Arg::new("state", Kind::Str).choices(&["plan", "started", "done"]),
    Arg::new("stop_after", Kind::Int).range(1, PHASES as i64),
    Arg::new("key_type", Kind::Str),
    Arg::new("days", Kind::Int),
    Arg::new("not_before_margin", Kind::Int),
];

fn result_of(o: &RolloverOutcome, dir: &Path) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("dir".into(), path_value(dir));
    r.insert("ca".into(), path_value(&PkiDir::new(dir).ca_cert()));
    r.insert("run".into(), o.run.into());
    r.insert("phase".into(), o.phase.map_or(Value::Null, Value::from));
    r.insert("todo".into(), o.todo.clone().into());
    r.insert("summary".into(), o.summary.clone().into());
    r.insert(
        "rollover".into(),
        serde_json::to_value(&o.state).unwrap_or(Value::Null),
    );
    if !o.warnings.is_empty() {
        r.insert("warnings".into(), o.warnings.clone().into());
    }
    r
}

fn step_of(args: &Args) -> Result<RolloverStep, String> {
    let phase = args.int("phase").map(|p| p.clamp(0, 255) as u8);
    match (args.str("state"), phase) {
        (None | Some("plan"), None) => Ok(RolloverStep::Plan),
        (Some("plan"), Some(_)) => Err("`state: plan` takes no `phase`".into()),
        (None | Some("started"), Some(p)) => Ok(RolloverStep::Start(p)),
        (Some("done"), Some(p)) => Ok(RolloverStep::Done(p)),
        (Some(s), None) => Err(format!("`state: {s}` needs `phase` (1, 2 or 3)")),
        (Some(s), Some(_)) => Err(format!(
            "argument `state` must be one of plan, started, done, got `{s}`"
        )),
    }
}

#[async_trait::async_trait]
impl Module for PkiRollover {
    fn name(&self) -> &'static str {
        "pki_rollover"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn runs_on_control_node(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        key_type(args)?;
        super::not_before_margin(args, true)?;
        let templated = |k: &str| args.str(k).is_some_and(crate::template::is_template);
        if !templated("phase") && !templated("state") {
            step_of(args)?;
        }
        if let Some(d) = super::literal_days(args, "days")? {
            if d == 0 || d > crate::pki::ca::MAX_DAYS {
                return Err(format!(
                    "argument `days` must be between 1 and {}, not {d}",
                    crate::pki::ca::MAX_DAYS
                ));
            }
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let dir = pki_dir(ctx, args);
        let spec = RolloverSpec {
            step: step_of(args)?,
            stop_after: args
                .int("stop_after")
                .map_or(PHASES, |p| p.clamp(1, PHASES as i64) as u8),
            key_type: key_type(args)?,
            days: super::days(args, "days")?,
            not_before_margin_s: super::not_before_margin(args, false)?
                .unwrap_or(crate::pki::DEFAULT_NOT_BEFORE_MARGIN_S),
        };
        let (d, s) = (dir.clone(), spec.clone());
        let o = super::blocking(move || plan_rollover(&d, &s)).await?;
        let result = result_of(&o, &dir);
        let what = match spec.step {
            RolloverStep::Plan => "report the CA rollover".to_string(),
            RolloverStep::Start(p) => format!("apply phase {p} of the CA rollover"),
            RolloverStep::Done(p) => format!("record phase {p} of the CA rollover complete"),
        };
        let apply = Ensure {
            what,
            dir,
            spec,
            ensure: ensure_rollover,
            report: |o, dir| Report {
                changed: o.changed,
                reason: o.reason.clone(),
                result: result_of(o, dir),
            },
        };
        let reason = if o.changed { o.reason } else { None };
        Ok(super::plan(reason, result, apply))
    }
}
