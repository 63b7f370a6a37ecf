//! `pki_crl`: revoke certificates by name (optional) and make sure `crl.pem` lists exactly the
//! revoked certificates and is not close to its next update.
//!
//! Revoking a name that is already revoked changes nothing, so the task is idempotent. Registers
//! `crl`, `ca`, `sha256` (of crl.pem), `crl_number`, `next_update` and `not_after` (RFC 3339),
//! `days_left`, `revoked` (names revoked by this run), `revoked_serials` (everything the CRL
//! lists), `dir`, and `reason` when something changed.
use std::path::Path;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{blocking, check_renew, literal, path_value, pki_dir, Ensure, Report};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::pki::store::PkiDir;
use crate::pki::{
    self, CertKind, CrlSpec, RevocationReason, RevokeSpec, DEFAULT_CRL_DAYS,
    DEFAULT_CRL_RENEW_BEFORE_DAYS,
};
use crate::template::is_template;

pub struct PkiCrl;

const ARGS: &[Arg] = &[
    Arg::new("dir", Kind::Str),
    Arg::new("revoke", Kind::ListCsv),
    Arg::new("kind", Kind::Str).choices(&["server", "client"]),
    Arg::new("reason", Kind::Str),
    Arg::new("days", Kind::Int),
    Arg::new("renew_before", Kind::Int),
];

fn names(args: &Args) -> Vec<String> {
    args.list("revoke")
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

fn reason_of(args: &Args) -> Result<RevocationReason, String> {
    args.str("reason")
        .map(RevocationReason::parse)
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("argument `reason`: {e}"))
}

/// Days from now to an RFC 3339 time (negative once past).
fn days_left(t: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    Some(
        (t - time::OffsetDateTime::now_utc())
            .whole_seconds()
            .div_euclid(86_400),
    )
}

/// What the task found or did, gathered in the blocking thread.
#[derive(Default)]
struct Done {
    reasons: Vec<String>,
    revoked: Vec<String>,
    crl: Option<pki::CrlOutcome>,
    sha256: Option<String>,
}

impl Done {
    fn read_sha256(&mut self, dir: &Path) {
        if self.crl.is_some() {
            let path = PkiDir::new(dir).crl();
            self.sha256 = std::fs::read(&path).ok().map(|b| pki::sha256_hex(&b));
        }
    }
}

fn result_of(dir: &Path, done: &Done) -> Map<String, Value> {
    let layout = PkiDir::new(dir);
    let mut r = Map::new();
    r.insert("dir".into(), path_value(dir));
    r.insert("crl".into(), path_value(&layout.crl()));
    r.insert("ca".into(), path_value(&layout.ca_cert()));
    r.insert("revoked".into(), done.revoked.clone().into());
    if let Some(c) = &done.crl {
        if let Some(sha) = &done.sha256 {
            r.insert("sha256".into(), sha.clone().into());
        }
        r.insert("crl_number".into(), c.number.into());
        r.insert("next_update".into(), c.next_update.clone().into());
        r.insert("not_after".into(), c.next_update.clone().into());
        if let Some(n) = days_left(&c.next_update) {
            r.insert("days_left".into(), n.into());
        }
        r.insert("revoked_serials".into(), c.revoked_serials.clone().into());
    }
    r
}

/// What the CRL task wants: names to revoke, and how the CRL should be.
#[derive(Clone)]
struct CrlWork {
    revokes: Vec<RevokeSpec>,
    crl: CrlSpec,
}

/// Revoke, then (re)write crl.pem: [`pki::ensure_revoked`] and [`pki::ensure_crl`].
fn ensure(dir: &Path, w: &CrlWork) -> pki::Result<Done> {
    let mut done = Done::default();
    for r in &w.revokes {
        let o = pki::ensure_revoked(dir, r)?;
        if o.changed {
            done.reasons.push(format!(
                "revoked {} certificate {:?} (serial {}, {})",
                o.kind, o.name, o.serial, o.reason
            ));
            done.revoked.push(o.name);
        }
    }
    let o = pki::ensure_crl(dir, &w.crl)?;
    done.reasons.extend(o.reason.clone());
    done.crl = Some(o);
    done.read_sha256(dir);
    Ok(done)
}

fn report(done: &Done, dir: &Path) -> Report {
    let changed = !done.reasons.is_empty();
    Report {
        changed,
        reason: changed.then(|| done.reasons.join("; ")),
        result: result_of(dir, done),
    }
}

#[async_trait]
impl Module for PkiCrl {
    fn name(&self) -> &'static str {
        "pki_crl"
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
        if literal(args, "reason").is_some() {
            reason_of(args)?;
        }
        check_renew(args, DEFAULT_CRL_DAYS)?;
        if let Some(Value::Array(list)) = args.get("revoke") {
            for n in list {
                if let Value::String(n) = n {
                    if !is_template(n) {
                        pki::store::validate_name(n)
                            .map_err(|e| format!("argument `revoke`: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let dir = pki_dir(ctx, args);
        let days = super::days(args, "days")?.unwrap_or(DEFAULT_CRL_DAYS);
        let crl_spec = CrlSpec {
            days,
            renew_before_days: super::days(args, "renew_before")?
                .unwrap_or(DEFAULT_CRL_RENEW_BEFORE_DAYS),
        };
        let kind = match args.str("kind") {
            Some("server") => Some(CertKind::Server),
            Some("client") => Some(CertKind::Client),
            _ => None,
        };
        let reason = reason_of(args)?;
        let revokes: Vec<RevokeSpec> = names(args)
            .into_iter()
            .map(|name| RevokeSpec {
                name,
                kind,
                reason,
                crl_days: days,
            })
            .collect();
        let (d, work, cs) = (dir.clone(), revokes.clone(), crl_spec.clone());
        let done = blocking(move || {
            let mut done = Done::default();
            for r in &work {
                if let Some(why) = pki::plan_revoked(&d, r)? {
                    done.reasons.push(why);
                    done.revoked.push(r.name.clone());
                }
            }
            let p = pki::plan_crl(&d, &cs)?;
            // A revocation above would write a new CRL anyway.
            if done.revoked.is_empty() {
                done.reasons.extend(p.reason);
                done.crl = p.current;
            }
            done.read_sha256(&d);
            Ok(done)
        })
        .await?;
        let reason = (!done.reasons.is_empty()).then(|| done.reasons.join("; "));
        let result = result_of(&dir, &done);
        let names: Vec<&str> = revokes.iter().map(|r| r.name.as_str()).collect();
        let what = if names.is_empty() {
            "write the CRL of the CA".to_string()
        } else {
            format!("revoke {} and write the CRL of the CA", names.join(", "))
        };
        let work = Ensure {
            what,
            dir,
            spec: CrlWork {
                revokes,
                crl: crl_spec,
            },
            ensure,
            report,
        };
        Ok(super::plan(reason, result, work))
    }
}
