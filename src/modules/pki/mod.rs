//! `pki_ca`, `pki_cert`, `pki_crl`, `pki_check`: the PKI library ([`crate::pki`]) in
//! playbooks; `pki_csr` works on the host too (its key never leaves it); and `secret`, the
//! other key material kept on the control node (a random secret made once).
//!
//! These modules work on the control node (the PKI directory is local), whatever the host's
//! connection: the engine gives them the local connection and they return no ops. Their plan
//! calls the library's `plan_*` functions, which decide and fail like the `ensure_*` ones but
//! write nothing; when something would change, the plan holds an issuing [`Action`] (with the
//! reason) that calls `ensure_*`, which the engine runs outside check mode only. The library runs
//! in a blocking thread (RSA-4096 generation takes a while, and the directory lock may wait for
//! another host).
//!
//! `pki_ca`, `pki_cert` and `pki_csr` take `not_before_margin` (seconds a new certificate's
//! notBefore is set back for clock skew; default [`pki::DEFAULT_NOT_BEFORE_MARGIN_S`], one hour).
//!
//! Several hosts may issue into the same directory at once: the library serialises them with a
//! lock on the directory. Results carry paths, fingerprints, serials and dates, never key
//! material, and there is no diff.
pub mod ca;
pub mod cert;
pub mod check;
pub mod crl;
pub mod csr;
pub mod host_key;
pub mod rollover;
pub mod secret;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use async_trait::async_trait;

use crate::modules::{Action, ActionCtx, ActionOutput, Args, ModuleCtx, ModuleError, Plan};
use crate::pki::{self, KeyType, PkiError};
use crate::template::is_template;

/// A literal (not templated) string argument: what can be checked at load time.
pub(crate) fn literal<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.str(name).filter(|s| !is_template(s))
}

/// A literal whole number of days: `None` when absent or still a template.
pub(crate) fn literal_days(args: &Args, name: &str) -> Result<Option<u32>, String> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if is_template(s) => Ok(None),
        Some(_) => days(args, name),
    }
}

/// A number of days (rendered arguments).
pub(crate) fn days(args: &Args, name: &str) -> Result<Option<u32>, String> {
    let Some(v) = args.get(name) else {
        return Ok(None);
    };
    args.int(name)
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| format!("argument `{name}` must be a whole number of days, got {v}"))
}

/// The `not_before_margin` argument (seconds notBefore is set back at issue, for clock skew):
/// the library's default when absent. At load time a template is `None`.
pub(crate) fn not_before_margin(args: &Args, lenient: bool) -> Result<Option<u32>, String> {
    let v = match args.get("not_before_margin") {
        None => return Ok(Some(pki::DEFAULT_NOT_BEFORE_MARGIN_S)),
        Some(Value::String(s)) if lenient && is_template(s) => return Ok(None),
        Some(v) => v,
    };
    let secs = args
        .int("not_before_margin")
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            format!("argument `not_before_margin` must be a whole number of seconds, got {v}")
        })?;
    pki::validate_not_before_margin(secs)
        .map_err(|e| format!("argument `not_before_margin`: {e}"))?;
    Ok(Some(secs))
}

/// Checks a literal `key_type` and returns it.
pub(crate) fn key_type(args: &Args) -> Result<Option<KeyType>, String> {
    literal(args, "key_type")
        .map(KeyType::parse)
        .transpose()
        .map_err(|e| format!("argument `key_type`: {e}"))
}

/// Checks a literal `days` (1..=MAX_DAYS) and that a literal `renew_before` is shorter than it
/// (or than `default_days`).
pub(crate) fn check_renew(args: &Args, default_days: u32) -> Result<(), String> {
    let days = literal_days(args, "days")?;
    if let Some(d) = days {
        if d == 0 || d > pki::ca::MAX_DAYS {
            return Err(format!(
                "argument `days` must be between 1 and {}, not {d}",
                pki::ca::MAX_DAYS
            ));
        }
    }
    let renew = literal_days(args, "renew_before")?;
    if let Some(r) = renew {
        let d = days.unwrap_or(default_days);
        if r >= d {
            return Err(format!(
                "argument `renew_before` ({r} days) must be shorter than `days` ({d}): otherwise every run would renew"
            ));
        }
    }
    Ok(())
}

/// The variable a scheduled rotation sets to renew every certificate (`-e rotate_force=true`):
/// the default of `pki_cert`'s `force`, so every role's certificates obey it (a host-made key,
/// `pki_csr`, is renewed by the role asking for a new key: `rekey`).
pub(crate) const FORCE_VAR: &str = "rotate_force";

/// `force`: the argument, else the variable [`FORCE_VAR`], else false.
pub(crate) fn force(ctx: &ModuleCtx<'_>, args: &Args) -> Result<bool, String> {
    if args.has("force") {
        return Ok(args.bool("force", false));
    }
    match ctx.vars.get(FORCE_VAR) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => crate::boolean::parse(s.trim())
            .ok_or_else(|| format!("variable `{FORCE_VAR}` must be true or false, got `{s}`")),
        Some(other) => Err(format!(
            "variable `{FORCE_VAR}` must be true or false, got {other}"
        )),
    }
}

fn var_str(ctx: &ModuleCtx<'_>, name: &str) -> Option<String> {
    match ctx.vars.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The PKI directory: `dir`, else the `pki_dir` variable, else `{{ inventory_dir }}/pki`. A
/// relative path is taken from the playbook's directory.
pub(crate) fn pki_dir(ctx: &ModuleCtx<'_>, args: &Args) -> PathBuf {
    let dir = args
        .string("dir")
        .filter(|s| !s.is_empty())
        .or_else(|| var_str(ctx, "pki_dir"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            var_str(ctx, "inventory_dir")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join("pki")
        });
    if dir.is_absolute() {
        return dir;
    }
    match var_str(ctx, "playbook_dir") {
        Some(base) => Path::new(&base).join(dir),
        None => dir,
    }
}

/// Runs a PKI library call in a blocking thread; its error becomes the task's message.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> pki::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("internal error: the PKI task panicked ({e})"))?
        .map_err(|e: PkiError| e.to_string())
}

pub(crate) fn path_value(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// The plan of a PKI module: nothing to do, or `action` because of `reason`; `result` holds
/// the keys as the directory is now (or will be: paths, the request).
pub(crate) fn plan(
    reason: Option<String>,
    mut result: Map<String, Value>,
    action: impl Action + 'static,
) -> Plan {
    match reason {
        None => Plan::ok().with_result(result),
        Some(r) => {
            result.insert("reason".into(), Value::String(r));
            Plan::action(action).with_result(result)
        }
    }
}

/// What a library call that changes the directory reports: whether it changed something, why,
/// and the result keys.
pub(crate) struct Report {
    pub changed: bool,
    pub reason: Option<String>,
    pub result: Map<String, Value>,
}

/// The deferred action of a PKI module: `ensure(dir, spec)` (the library's `ensure_*`) in a
/// blocking thread, its outcome turned into the result by `report`. The engine runs it outside
/// check mode only.
pub(crate) struct Ensure<S, O> {
    /// What it does, for the report.
    pub what: String,
    pub dir: PathBuf,
    pub spec: S,
    pub ensure: fn(&Path, &S) -> pki::Result<O>,
    pub report: fn(&O, &Path) -> Report,
}

#[async_trait]
impl<S, O> Action for Ensure<S, O>
where
    S: Clone + Send + Sync + 'static,
    O: Send + 'static,
{
    fn describe(&self) -> String {
        format!("{} in {}", self.what, self.dir.display())
    }

    async fn run(&self, _ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let (d, spec, ensure) = (self.dir.clone(), self.spec.clone(), self.ensure);
        let o = blocking(move || ensure(&d, &spec)).await?;
        let Report {
            changed,
            reason,
            mut result,
        } = (self.report)(&o, &self.dir);
        if let Some(r) = reason.filter(|_| changed) {
            result.insert("reason".into(), Value::String(r));
        }
        Ok(ActionOutput {
            changed,
            result,
            ..ActionOutput::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        Args {
            map: v.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn not_before_margin_defaults_to_an_hour_and_is_bounded() {
        assert_eq!(not_before_margin(&args(json!({})), false), Ok(Some(3600)));
        assert_eq!(
            not_before_margin(&args(json!({"not_before_margin": 0})), false),
            Ok(Some(0))
        );
        assert_eq!(
            not_before_margin(&args(json!({"not_before_margin": 7200})), false),
            Ok(Some(7200))
        );
        let t = args(json!({"not_before_margin": "{{ skew }}"}));
        assert_eq!(not_before_margin(&t, true), Ok(None));
        for bad in [json!(-1), json!(604_801), json!("1h")] {
            let e = not_before_margin(&args(json!({"not_before_margin": bad})), false).unwrap_err();
            assert!(e.contains("not_before_margin"), "{e}");
        }
    }
}
