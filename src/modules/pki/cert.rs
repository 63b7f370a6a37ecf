//! `pki_cert`: make sure a server or client certificate signed by the PKI's CA exists, matches
//! the request and is not about to expire; (re-)issue it otherwise, with the reason.
//!
//! Defaults for a server: `name` = the inventory hostname, `cn` = `name`, `sans` = the host's
//! `ansible_host` (when set) and its inventory hostname, each as an IP or DNS SAN.
//!
//! A client directory also holds the client bundle: `client.pk8` (PKCS#8 DER, JDBC),
//! `client.pem.pk8` (PKCS#8 PEM), `client.pfx` (PKCS#12 with the certificate, the key and the
//! CA certificate, for .NET) and `root.crt` (a copy of the CA certificate). `pfx_password`
//! (default: empty) is the PKCS#12 password: a secret, never in a result, a diff or a log line.
//! With the empty password the key in `client.pfx` is protected by nothing but the file's mode
//! (0600). A `client.pfx` that opens with the password and holds the current certificate and
//! key is kept; it is rewritten when the certificate is re-issued or the password changes.
//! Missing bundle files (a directory made by an older castellan) are written without
//! re-issuing the certificate.
//!
//! `force: true` re-issues the certificate even when nothing else asks for it, once per run (a
//! second task naming it in the same run keeps it); without the argument the variable
//! `rotate_force` decides (false when undefined), so that `-e rotate_force=true` renews every
//! certificate of every role.
//!
//! Registers `cert`, `key`, `ca`, for a client `pk8`, `pem_pk8`, `pfx` and `root` (paths),
//! `sha256`, `serial`, `not_before`, `not_after`, `days_left`, `cn`, `sans`, `key_type`,
//! `kind`, `name`, `dir`, and `reason` when something was (or, in check mode, would be) written.
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    blocking, check_renew, key_type, literal, not_before_margin, path_value, pki_dir, Ensure,
    Report,
};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::pki::store::{LeafFile, PkiDir};
use crate::pki::{
    self, CertKind, CertOutcome, CertSpec, PfxPassword, San, DEFAULT_LEAF_DAYS,
    DEFAULT_RENEW_BEFORE_DAYS,
};
use crate::template::is_template;

pub struct PkiCert;

const ARGS: &[Arg] = &[
    Arg::new("dir", Kind::Str),
    Arg::new("kind", Kind::Str)
        .required()
        .choices(&["server", "client"]),
    Arg::new("name", Kind::Str),
    Arg::new("cn", Kind::Str),
    Arg::new("sans", Kind::ListCsv).aliases(&["san"]),
    Arg::new("key_type", Kind::Str),
    Arg::new("days", Kind::Int),
    Arg::new("renew_before", Kind::Int),
    Arg::new("not_before_margin", Kind::Int),
    // Raw, checked here: a value that is not a scalar is refused without being quoted.
    Arg::new("pfx_password", Kind::Raw),
    Arg::new("force", Kind::Bool),
];

/// The `pfx_password` argument (empty when absent). At load time (`lenient`) a template is
/// `None`: it is checked once rendered.
fn pfx_password(args: &Args, lenient: bool) -> Result<Option<PfxPassword>, String> {
    let text = match args.get("pfx_password") {
        None | Some(Value::Null) => return Ok(Some(PfxPassword::default())),
        Some(Value::String(s)) if lenient && is_template(s) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Some(_) => {
            return Err("argument `pfx_password` must be a string (its value is not shown)".into())
        }
    };
    PfxPassword::new(text)
        .map(Some)
        .map_err(|e| format!("argument `pfx_password`: {e}"))
}

fn kind_of(s: &str) -> Result<CertKind, String> {
    match s {
        "server" => Ok(CertKind::Server),
        "client" => Ok(CertKind::Client),
        other => Err(format!(
            "argument `kind` must be one of server, client, got `{other}`"
        )),
    }
}

fn result_of(o: &CertOutcome, dir: &std::path::Path) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("dir".into(), path_value(dir));
    r.insert("kind".into(), o.kind.as_str().into());
    r.insert("name".into(), o.name.clone().into());
    r.insert("cn".into(), o.cn.clone().into());
    r.insert("sans".into(), o.sans.clone().into());
    r.insert("key_type".into(), o.key_type.clone().into());
    r.insert("cert".into(), path_value(&o.cert_path));
    r.insert("key".into(), path_value(&o.key_path));
    for (key, path) in [
        ("pk8", &o.pk8_path),
        ("pem_pk8", &o.pem_pk8_path),
        ("pfx", &o.pfx_path),
        ("root", &o.root_path),
    ] {
        if let Some(p) = path {
            r.insert(key.into(), path_value(p));
        }
    }
    r.insert("ca".into(), path_value(&o.ca_path));
    r.insert("sha256".into(), o.sha256.clone().into());
    r.insert("serial".into(), o.serial.clone().into());
    r.insert("not_before".into(), o.not_before.clone().into());
    r.insert("not_after".into(), o.not_after.clone().into());
    r.insert("days_left".into(), o.days_left.into());
    if !o.warnings.is_empty() {
        r.insert("warnings".into(), o.warnings.clone().into());
    }
    r
}

/// What the result says before anything is issued (check mode): the paths and the request.
fn planned_result(spec: &CertSpec, dir: &std::path::Path) -> Map<String, Value> {
    let layout = PkiDir::new(dir);
    let mut r = Map::new();
    r.insert("dir".into(), path_value(dir));
    r.insert("kind".into(), spec.kind.as_str().into());
    r.insert("name".into(), spec.name.clone().into());
    r.insert("cn".into(), spec.cn.clone().into());
    let sans: Vec<String> = spec
        .sans
        .iter()
        .map(|s| San::parse(s).map_or_else(|_| s.clone(), |s| s.to_string()))
        .collect();
    r.insert("sans".into(), sans.into());
    r.insert("key_type".into(), spec.key_type.name().into());
    r.insert(
        "cert".into(),
        path_value(&layout.leaf_cert(spec.kind, &spec.name)),
    );
    r.insert(
        "key".into(),
        path_value(&layout.leaf_key(spec.kind, &spec.name)),
    );
    for (key, file) in [
        ("pk8", LeafFile::Pk8),
        ("pem_pk8", LeafFile::PemPk8),
        ("pfx", LeafFile::Pfx),
        ("root", LeafFile::Root),
    ] {
        if let Some(p) = layout.leaf_file(spec.kind, &spec.name, file) {
            r.insert(key.into(), path_value(&p));
        }
    }
    r.insert("ca".into(), path_value(&layout.ca_cert()));
    r
}

fn var_string(ctx: &ModuleCtx<'_>, name: &str) -> Option<String> {
    match ctx.vars.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The default SANs of a server certificate: the host's `ansible_host` (when set) and its
/// inventory hostname, leaving out what is neither a DNS name nor an IP address.
pub(crate) fn default_sans(ctx: &ModuleCtx<'_>) -> Result<Vec<String>, String> {
    let mut cands: Vec<String> = Vec::new();
    if let Some(h) = var_string(ctx, "ansible_host") {
        cands.push(h);
    }
    cands.push(ctx.inventory_hostname.to_string());
    let mut out: Vec<String> = Vec::new();
    for c in cands {
        if let Ok(san) = San::parse(&c) {
            let s = san.to_string();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no default SAN for host {:?}: its inventory hostname (and ansible_host) is neither a DNS name nor an IP address; give `sans`",
            ctx.inventory_hostname
        ));
    }
    Ok(out)
}

const PFX_FOR_CLIENTS: &str = "argument `pfx_password` is for client certificates (client.pfx): a server certificate has no PKCS#12 file";

fn spec_of(ctx: &ModuleCtx<'_>, args: &Args) -> Result<CertSpec, String> {
    let kind = kind_of(&args.req("kind")?)?;
    if kind == CertKind::Server && args.has("pfx_password") {
        return Err(PFX_FOR_CLIENTS.into());
    }
    let name = match (args.string("name"), kind) {
        (Some(n), _) => n,
        (None, CertKind::Server) => ctx.inventory_hostname.to_string(),
        (None, CertKind::Client) => args.string("cn").ok_or_else(|| {
            "a client certificate needs `name` or `cn` (the database user)".to_string()
        })?,
    };
    let cn = args.string("cn").unwrap_or_else(|| name.clone());
    let sans: Vec<String> = if args.has("sans") {
        args.list("sans")
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect()
    } else if kind == CertKind::Server {
        default_sans(ctx)?
    } else {
        Vec::new()
    };
    Ok(CertSpec {
        kind,
        name,
        cn,
        sans,
        key_type: key_type(args)?.unwrap_or_default(),
        days: super::days(args, "days")?.unwrap_or(DEFAULT_LEAF_DAYS),
        renew_before_days: super::days(args, "renew_before")?.unwrap_or(DEFAULT_RENEW_BEFORE_DAYS),
        pfx_password: pfx_password(args, false)?.unwrap_or_default(),
        force: super::force(ctx, args)?,
        not_before_margin_s: not_before_margin(args, false)?
            .unwrap_or(pki::DEFAULT_NOT_BEFORE_MARGIN_S),
    })
}

#[async_trait]
impl Module for PkiCert {
    fn name(&self) -> &'static str {
        "pki_cert"
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
        check_renew(args, DEFAULT_LEAF_DAYS)?;
        not_before_margin(args, true)?;
        if let Some(n) = literal(args, "name") {
            pki::store::validate_name(n).map_err(|e| format!("argument `name`: {e}"))?;
        }
        if let Some(cn) = literal(args, "cn") {
            pki::ca::validate_cn(cn).map_err(|e| format!("argument `cn`: {e}"))?;
        }
        if let Some(Value::Array(sans)) = args.get("sans") {
            for s in sans {
                if let Value::String(s) = s {
                    if !is_template(s) {
                        San::parse(s).map_err(|e| format!("argument `sans`: {e}"))?;
                    }
                }
            }
        }
        if literal(args, "kind") == Some("client") && !args.has("name") && !args.has("cn") {
            return Err("a client certificate needs `name` or `cn` (the database user)".into());
        }
        pfx_password(args, true)?;
        if literal(args, "kind") == Some("server") && args.has("pfx_password") {
            return Err(PFX_FOR_CLIENTS.into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let dir = pki_dir(ctx, args);
        let spec = spec_of(ctx, args)?;
        let (d, s) = (dir.clone(), spec.clone());
        let p = blocking(move || pki::plan_cert(&d, &s)).await?;
        let result = match &p.current {
            Some(o) => result_of(o, &dir),
            None => planned_result(&spec, &dir),
        };
        let issue = Ensure {
            what: format!(
                "issue the {} certificate {:?} from the CA",
                spec.kind.as_str(),
                spec.name
            ),
            dir,
            spec,
            ensure: pki::ensure_cert,
            report: |o, dir| Report {
                changed: o.changed,
                reason: o.reason.clone(),
                result: result_of(o, dir),
            },
        };
        Ok(super::plan(p.reason, result, issue))
    }
}
