//! `pki_check`: check a server certificate made outside castellan (files on the control node)
//! before anything is pushed: the key matches the certificate, the chain verifies against the
//! CA, every name in `names` is a SAN (a CN alone passes with a warning: rustls-based clients
//! need a SAN), it is valid now, and its key usages fit a TLS server. A failed check fails the
//! host with the reason ([`crate::pki::check`]).
//!
//! Reads only (the files, on the control node): the result is `ok`, in check mode too.
//! Registers `cert`, `key`, `ca` (absolute paths), `sha256`, `subject`, `cn`, `sans`,
//! `key_type`, `not_after`, `days_left` and `warnings`: the keys `pki_cert` registers for the
//! files, so the tasks after it take either.
use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::path_value;
use crate::modules::files::common::find_src;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::pki::{check_server_files, ServerCheck};

pub struct PkiCheck;

const ARGS: &[Arg] = &[
    Arg::new("cert", Kind::Str).required(),
    Arg::new("key", Kind::Str).required(),
    Arg::new("ca", Kind::Str).required(),
    Arg::new("names", Kind::ListCsv)
        .required()
        .aliases(&["name"]),
];

#[async_trait]
impl Module for PkiCheck {
    fn name(&self) -> &'static str {
        "pki_check"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn runs_on_control_node(&self) -> bool {
        true
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let find = |name: &str| -> Result<std::path::PathBuf, ModuleError> {
            let given = args.req(name)?;
            find_src(ctx, &given, "files")
                .map_err(|e| ModuleError::failed(format!("argument `{name}`: {e}")))
        };
        let (cert, key, ca) = (find("cert")?, find("key")?, find("ca")?);
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let (cert_pem, key_pem, ca_pem) = (read(&cert)?, read(&key)?, read(&ca)?);
        let names: Vec<String> = args
            .list("names")
            .into_iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .filter(|s| !s.trim().is_empty())
            .collect();
        if names.is_empty() {
            return Err(ModuleError::InvalidArgs(
                "argument `names` is empty: give the names clients use (sslmode=verify-full)"
                    .into(),
            ));
        }
        let mut result = Map::new();
        result.insert("cert".into(), path_value(&cert));
        result.insert("key".into(), path_value(&key));
        result.insert("ca".into(), path_value(&ca));
        result.insert("names".into(), json!(names));
        let report = check_server_files(&ServerCheck {
            cert_pem: &cert_pem,
            key_pem: &key_pem,
            ca_pem: &ca_pem,
            names: &names,
            now: time::OffsetDateTime::now_utc(),
        })
        .map_err(|why| {
            ModuleError::failed_with(
                format!(
                    "{} (key {}, CA {}) is refused: {why}",
                    cert.display(),
                    key.display(),
                    ca.display()
                ),
                result.clone(),
            )
        })?;
        for (k, v) in [
            ("sha256", json!(report.sha256)),
            ("subject", json!(report.subject)),
            ("cn", json!(report.cn)),
            ("sans", json!(report.sans)),
            ("key_type", json!(report.key_type)),
            ("not_after", json!(report.not_after)),
            ("days_left", json!(report.days_left)),
        ] {
            result.insert(k.into(), v);
        }
        if !report.warnings.is_empty() {
            result.insert("warnings".into(), Value::from(report.warnings));
        }
        Ok(Plan::ok().with_result(result))
    }
}
