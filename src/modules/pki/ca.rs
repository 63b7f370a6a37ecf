//! `pki_ca`: make sure the PKI directory has its certificate authority (create or import it).
//!
//! An existing CA is checked against `cn`/`subject`/`key_type`, never replaced. Registers `cert`
//! (ca.crt), `key` (ca.key, absent for an external CA), `ca`, `subject`, `key_type`, `sha256`,
//! `serial`, `not_after`, `days_left`, `external`, `dir`, and `reason` when something changed.
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    blocking, check_renew, key_type, literal, not_before_margin, path_value, pki_dir, Ensure,
    Report,
};
use crate::modules::files::common::find_src;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::pki::{self, CaOutcome, CaSpec, DEFAULT_CA_DAYS};

pub struct PkiCa;

const ARGS: &[Arg] = &[
    Arg::new("dir", Kind::Str),
    Arg::new("cn", Kind::Str),
    Arg::new("subject", Kind::Str),
    Arg::new("key_type", Kind::Str),
    Arg::new("days", Kind::Int),
    Arg::new("import_cert", Kind::Str),
    Arg::new("import_key", Kind::Str),
    Arg::new("not_before_margin", Kind::Int),
];

fn result_of(o: &CaOutcome, dir: &std::path::Path) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("dir".into(), path_value(dir));
    r.insert("cert".into(), path_value(&o.cert_path));
    r.insert("ca".into(), path_value(&o.cert_path));
    if let Some(k) = &o.key_path {
        r.insert("key".into(), path_value(k));
    }
    r.insert("subject".into(), o.subject.clone().into());
    r.insert("key_type".into(), o.key_type.clone().into());
    r.insert("sha256".into(), o.sha256.clone().into());
    r.insert("serial".into(), o.serial.clone().into());
    r.insert("not_after".into(), o.not_after.clone().into());
    r.insert("days_left".into(), o.days_left.into());
    r.insert("external".into(), o.external.into());
    if !o.warnings.is_empty() {
        r.insert("warnings".into(), o.warnings.clone().into());
    }
    r
}

#[async_trait]
impl Module for PkiCa {
    fn name(&self) -> &'static str {
        "pki_ca"
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
        check_renew(args, DEFAULT_CA_DAYS)?;
        not_before_margin(args, true)?;
        if let Some(s) = literal(args, "subject") {
            pki::ca::parse_subject(s).map_err(|e| format!("argument `subject`: {e}"))?;
        }
        if let Some(cn) = literal(args, "cn") {
            pki::ca::validate_cn(cn).map_err(|e| format!("argument `cn`: {e}"))?;
        }
        if args.has("import_key") && !args.has("import_cert") {
            return Err(
                "`import_key` needs `import_cert` (the CA certificate that goes with it)".into(),
            );
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let dir = pki_dir(ctx, args);
        let find = |name: &str| -> Result<Option<std::path::PathBuf>, String> {
            args.str(name)
                .map(|f| find_src(ctx, f, "files").map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        let spec = CaSpec {
            cn: args.string("cn"),
            subject: args.string("subject"),
            key_type: key_type(args)?,
            days: super::days(args, "days")?.unwrap_or(DEFAULT_CA_DAYS),
            import_cert: find("import_cert")?,
            import_key: find("import_key")?,
            not_before_margin_s: not_before_margin(args, false)?
                .unwrap_or(pki::DEFAULT_NOT_BEFORE_MARGIN_S),
        };
        let (d, s) = (dir.clone(), spec.clone());
        let p = blocking(move || pki::plan_ca(&d, &s)).await?;
        let result = match &p.current {
            Some(o) => result_of(o, &dir),
            None => {
                let layout = pki::store::PkiDir::new(&dir);
                let mut r = Map::new();
                r.insert("dir".into(), path_value(&dir));
                r.insert("cert".into(), path_value(&layout.ca_cert()));
                r.insert("ca".into(), path_value(&layout.ca_cert()));
                r
            }
        };
        let create = Ensure {
            what: "create the certificate authority".into(),
            dir,
            spec,
            ensure: pki::ensure_ca,
            report: |o, dir| Report {
                changed: o.changed,
                reason: o.reason.clone(),
                result: result_of(o, dir),
            },
        };
        Ok(super::plan(p.reason, result, create))
    }
}
