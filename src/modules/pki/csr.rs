//! `pki_csr`: a certificate whose private key is born on the host and never leaves it (EDB's
//! "local CA" model, `pg_tls_ca_mode: local-csr`). The key is made on the host by its owner with
//! the `openssl` command-line tool under `umask 077`; a certificate signing request made from it
//! is checked and signed by the PKI's CA on the control node (the request's subject kept, the
//! SANs added); only the certificate travels back. The PKI directory keeps the certificate and
//! never a key ([`crate::pki::csr`]).
//!
//! The plan reads: the key's metadata (never its content), a request made from the key by
//! `openssl req` (read-only), the host's certificate, the PKI directory. It decides:
//! - a new key when there is none, `rekey: true`, the key is not of `key_type`, the key is the
//!   one castellan made on the control node for this name, or its certificate is due for renewal
//!   (expires within `renew_before` days); then the action makes the key at a temporary name
//!   beside the key, signs its request, writes the certificate, and puts the key in place;
//! - else a new certificate for the same key when the PKI's certificate does not fit (new SANs,
//!   subject, another CA...): the action signs and writes it;
//! - else the PKI's certificate is written to the host when the host's differs; nothing when
//!   both files are right. Key and certificate are 0600, `owner`:`group`.
//!
//! Registers `key` and `cert` (paths on the host), `pki_cert` and `ca` (on the control node),
//! `name`, `subject`, `sans`, `key_type`, `sha256`, `serial`, `not_before`, `not_after`,
//! `days_left` (once there is a certificate), `rekeyed`, and `reason` when something changed.
//! Neither the key's bytes nor its digest appear anywhere.
use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::cert::default_sans;
use super::host_key::{no_openssl, KeyScripts, NO_OPENSSL};
use super::{blocking, key_type, literal, path_value, pki_dir};
use crate::connection::backup::Suffixes;
use crate::connection::{Backup, ExecOutput, ExecRequest, FileKind, FileState, Op, Want};
use crate::modules::files::common::{attrs_only, plan_write, AttrSpec};
use crate::modules::files::mode::ModeSpec;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan, Step,
};
use crate::pki::store::PkiDir;
use crate::pki::{
    self, CertKind, Csr, CsrSpec, KeyType, SignedCert, DEFAULT_LEAF_DAYS, DEFAULT_RENEW_BEFORE_DAYS,
};

pub struct PkiCsr;

const ARGS: &[Arg] = &[
    Arg::new("dir", Kind::Str),
    Arg::new("kind", Kind::Str).choices(&["server", "client"]),
    Arg::new("name", Kind::Str),
    Arg::new("cn", Kind::Str),
    Arg::new("subject", Kind::Str),
    Arg::new("sans", Kind::ListCsv).aliases(&["san"]),
    Arg::new("key_type", Kind::Str),
    Arg::new("days", Kind::Int),
    Arg::new("renew_before", Kind::Int),
    Arg::new("not_before_margin", Kind::Int),
    Arg::new("key", Kind::Str).required(),
    Arg::new("cert", Kind::Str).required(),
    Arg::new("owner", Kind::Str),
    Arg::new("group", Kind::Str),
    Arg::new("rekey", Kind::Bool),
    Arg::new("openssl", Kind::Str),
    Arg::new("backup", Kind::Bool),
];

/// The task's request, resolved.
#[derive(Clone, Debug)]
struct Wanted {
    dir: std::path::PathBuf,
    kind: CertKind,
    name: String,
    subject: String,
    sans: Vec<String>,
    key_type: KeyType,
    days: u32,
    renew_before: u32,
    not_before_margin: u32,
    key: String,
    cert: String,
    owner: Option<String>,
    group: Option<String>,
    rekey: bool,
    openssl: String,
    backup: bool,
    host: String,
}

impl Wanted {
    fn resolve(ctx: &ModuleCtx<'_>, args: &Args) -> Result<Wanted, String> {
        let kind = match args.str("kind") {
            Some("client") => CertKind::Client,
            _ => CertKind::Server,
        };
        let name = args
            .string("name")
            .unwrap_or_else(|| ctx.inventory_hostname.to_string());
        pki::store::validate_name(&name).map_err(|e| format!("argument `name`: {e}"))?;
        let subject = match (args.string("subject"), args.string("cn")) {
            (Some(s), _) => s,
            (None, Some(cn)) => format!("/CN={}", cn.replace('/', "\\/")),
            (None, None) => format!("/CN={name}"),
        };
        let attrs =
            pki::ca::parse_subject(&subject).map_err(|e| format!("argument `subject`: {e}"))?;
        if !attrs.iter().any(|(o, _)| o == "2.5.4.3") {
            return Err(format!(
                "argument `subject`: {subject:?} has no CN (the name a server is known by, the database user of a client)"
            ));
        }
        let sans = if args.has("sans") {
            args.list("sans")
                .into_iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        } else if kind == CertKind::Server {
            default_sans(ctx)?
        } else {
            Vec::new()
        };
        Ok(Wanted {
            dir: pki_dir(ctx, args),
            kind,
            name,
            subject: pki::ca::render_subject(&attrs),
            sans,
            key_type: key_type(args)?.unwrap_or_default(),
            days: super::days(args, "days")?.unwrap_or(DEFAULT_LEAF_DAYS),
            renew_before: super::days(args, "renew_before")?.unwrap_or(DEFAULT_RENEW_BEFORE_DAYS),
            not_before_margin: super::not_before_margin(args, false)?
                .unwrap_or(pki::DEFAULT_NOT_BEFORE_MARGIN_S),
            key: args.req("key")?,
            cert: args.req("cert")?,
            owner: args.string("owner"),
            group: args.string("group"),
            rekey: args.bool("rekey", false),
            openssl: args
                .string("openssl")
                .unwrap_or_else(|| "openssl".to_string()),
            backup: args.bool("backup", false),
            host: ctx.inventory_hostname.to_string(),
        })
    }

    fn scripts(&self) -> KeyScripts {
        KeyScripts {
            openssl: self.openssl.clone(),
            key: self.key.clone(),
            subject: self.subject.clone(),
            key_type: self.key_type,
            group: self.group.clone(),
        }
    }

    fn spec(&self, csr_pem: String) -> CsrSpec {
        CsrSpec {
            kind: self.kind,
            name: self.name.clone(),
            csr_pem,
            sans: self.sans.clone(),
            key_type: Some(self.key_type),
            days: self.days,
            renew_before_days: self.renew_before,
            not_before_margin_s: self.not_before_margin,
        }
    }

    /// Owner, group and mode 0600 of both files.
    fn attrs(&self) -> AttrSpec {
        AttrSpec {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: Some(ModeSpec::Octal(0o600)),
        }
    }

    fn exec(&self, script: String) -> ExecRequest {
        ExecRequest {
            shell: Some(script),
            become_user: self.owner.clone(),
            ..ExecRequest::default()
        }
    }

    /// A script's failure as the task's: no openssl, or its own words.
    fn script_failed(&self, what: &str, out: &ExecOutput) -> ModuleError {
        if out.rc == NO_OPENSSL {
            return ModuleError::failed(no_openssl(&self.host, &self.openssl));
        }
        let mut r = Map::new();
        r.insert("rc".into(), json!(out.rc));
        ModuleError::failed_with(
            format!(
                "{what} failed on {} (rc {}): {}",
                self.host,
                out.rc,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            r,
        )
    }

    fn base_result(&self) -> Map<String, Value> {
        let layout = PkiDir::new(&self.dir);
        let mut r = Map::new();
        r.insert("dir".into(), path_value(&self.dir));
        r.insert("kind".into(), self.kind.as_str().into());
        r.insert("name".into(), self.name.clone().into());
        r.insert("key".into(), self.key.clone().into());
        r.insert("cert".into(), self.cert.clone().into());
        r.insert(
            "pki_cert".into(),
            path_value(&layout.leaf_cert(self.kind, &self.name)),
        );
        r.insert("ca".into(), path_value(&layout.ca_cert()));
        r.insert("subject".into(), self.subject.clone().into());
        r.insert("sans".into(), json!(self.sans));
        r.insert("key_type".into(), self.key_type.name().into());
        r.insert("rekeyed".into(), json!(false));
        r
    }
}

/// The certificate's facts into the result.
fn signed_result(r: &mut Map<String, Value>, s: &SignedCert) {
    r.insert("subject".into(), s.subject.clone().into());
    r.insert("cn".into(), s.cn.clone().into());
    r.insert("sans".into(), json!(s.sans));
    r.insert("key_type".into(), s.key_type.clone().into());
    r.insert("sha256".into(), s.sha256.clone().into());
    r.insert("serial".into(), s.serial.clone().into());
    r.insert("not_before".into(), s.not_before.clone().into());
    r.insert("not_after".into(), s.not_after.clone().into());
    r.insert("days_left".into(), s.days_left.into());
    if !s.warnings.is_empty() {
        r.insert("warnings".into(), json!(s.warnings));
    }
}

/// Why the host needs a new key, if it does.
fn new_key_reason(
    w: &Wanted,
    key: &FileState,
    csr: Option<&Csr>,
    host_cert: &FileState,
) -> Result<Option<String>, String> {
    let Some(csr) = csr.filter(|_| key.exists()) else {
        return Ok(Some(format!(
            "no key at {} yet: one is made on the host",
            w.key
        )));
    };
    if w.rekey {
        return Ok(Some(format!("rekey: a new key replaces {}", w.key)));
    }
    if csr.key_type != w.key_type {
        return Ok(Some(format!(
            "the key at {} is {}, {} is asked: a new one is made on the host",
            w.key, csr.key_type, w.key_type
        )));
    }
    if let Some(p) = pki::control_node_key(&w.dir, w.kind, &w.name, &csr.public_key)
        .map_err(|e| e.to_string())?
    {
        return Ok(Some(format!(
            "the key at {} is the one castellan made on the control node ({}): a new one is made on the host",
            w.key,
            p.display()
        )));
    }
    let pki_cert = pki::store::PkiDir::new(&w.dir).leaf_cert(w.kind, &w.name);
    let mut certs: Vec<Vec<u8>> = Vec::new();
    if let Ok(b) = std::fs::read(&pki_cert) {
        certs.push(b);
    }
    certs.extend(host_cert.content.clone());
    for c in certs {
        if let Some(why) =
            pki::due_for_renewal(&c, &csr.public_key, w.renew_before).map_err(|e| e.to_string())?
        {
            return Ok(Some(format!(
                "the certificate of the key at {} {why}: its renewal makes a new key",
                w.key
            )));
        }
    }
    Ok(None)
}

#[async_trait]
impl Module for PkiCsr {
    fn name(&self) -> &'static str {
        "pki_csr"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        key_type(args)?;
        super::check_renew(args, DEFAULT_LEAF_DAYS)?;
        super::not_before_margin(args, true)?;
        if let Some(s) = literal(args, "subject") {
            pki::ca::parse_subject(s).map_err(|e| format!("argument `subject`: {e}"))?;
        }
        if let Some(n) = literal(args, "name") {
            pki::store::validate_name(n).map_err(|e| format!("argument `name`: {e}"))?;
        }
        if args.has("subject") && args.has("cn") {
            return Err("give `subject` or `cn`, not both".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let w = Wanted::resolve(ctx, args)?;
        let scripts = w.scripts();
        let key_st = ctx.host.stat(&w.key, Want::default()).await?;
        if !matches!(key_st.kind, FileKind::Missing | FileKind::File) {
            return Err(ModuleError::failed(format!(
                "{} is not a regular file: the key goes there",
                w.key
            )));
        }
        let cert_st = ctx
            .host
            .stat(
                &w.cert,
                Want {
                    content: true,
                    checksum: true,
                    follow: false,
                },
            )
            .await?;
        let mut result = w.base_result();
        // The key stays where it is: what comes here is a request made from it.
        let csr = if key_st.exists() {
            let out = ctx.host.query(&w.exec(scripts.request()?)).await?;
            if out.rc != 0 {
                return Err(
                    w.script_failed(&format!("making a request from the key at {}", w.key), &out)
                );
            }
            let pem = String::from_utf8_lossy(&out.stdout).into_owned();
            let csr =
                pki::read_csr(&pem).map_err(|e| format!("the request made from {}: {e}", w.key))?;
            Some((pem, csr))
        } else {
            None
        };
        let why = {
            let (w2, k, c, h) = (
                w.clone(),
                key_st.clone(),
                csr.as_ref().map(|(_, c)| c.clone()),
                cert_st.clone(),
            );
            tokio::task::spawn_blocking(move || new_key_reason(&w2, &k, c.as_ref(), &h))
                .await
                .map_err(|e| format!("internal error: the PKI task panicked ({e})"))??
        };
        let key_attrs = attrs_only(&w.key, &key_st, &w.attrs());
        if let Some(why) = why {
            result.insert("reason".into(), why.clone().into());
            let action = NewKey {
                w,
                cert_exists: cert_st.exists(),
            };
            return Ok(Plan::action(action).with_result(result));
        }
        let Some((pem, _)) = csr else {
            return Err(ModuleError::failed("internal error: no request"));
        };
        let spec = w.spec(pem);
        let (d, s) = (w.dir.clone(), spec.clone());
        let p = blocking(move || pki::plan_signed_csr(&d, &s)).await?;
        match p.current {
            None => {
                let why = p.reason.unwrap_or_else(|| "new certificate".into());
                result.insert("reason".into(), why.into());
                let mut steps: Vec<Step> = key_attrs.into_iter().map(Step::Op).collect();
                steps.push(Step::Action(Box::new(Sign {
                    w,
                    spec,
                    cert_exists: cert_st.exists(),
                })));
                Ok(Plan::steps(steps, None).with_result(result))
            }
            Some(cur) => {
                signed_result(&mut result, &cur);
                let (mut ops, diff) = plan_write(
                    &w.cert,
                    &cert_st,
                    cur.cert_pem.into_bytes(),
                    &w.attrs(),
                    w.backup,
                );
                ops.extend(key_attrs);
                Ok(Plan::ops(ops, diff).with_result(result))
            }
        }
    }
}

/// Signs `spec` on the control node and writes the certificate to the host (0600, owner,
/// group); returns the certificate and the backup the write kept.
async fn sign_and_write(
    ctx: &ActionCtx<'_>,
    w: &Wanted,
    spec: &CsrSpec,
    cert_exists: bool,
) -> Result<(SignedCert, Option<Backup>), ModuleError> {
    let (d, s) = (w.dir.clone(), spec.clone());
    let signed = blocking(move || pki::ensure_signed_csr(&d, &s)).await?;
    let a = w.attrs();
    let op = Op::Write {
        path: w.cert.clone(),
        content: std::sync::Arc::new(signed.cert_pem.clone().into_bytes()),
        attrs: crate::connection::Attrs {
            owner: a.owner,
            group: a.group,
            mode: Some(0o600),
        },
        backup: w.backup && cert_exists,
        follow: false,
    };
    let out = ctx.conn.apply(&op, ctx.become_user).await?;
    let backup = out.backup_file.map(|b| Backup {
        path: w.cert.clone(),
        backup: b,
    });
    Ok((signed, backup))
}

/// A new certificate for the key already on the host.
struct Sign {
    w: Wanted,
    spec: CsrSpec,
    cert_exists: bool,
}

#[async_trait]
impl Action for Sign {
    fn describe(&self) -> String {
        format!(
            "sign the request of the key at {} with the CA in {} and write {}",
            self.w.key,
            self.w.dir.display(),
            self.w.cert
        )
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let (signed, backup) = sign_and_write(ctx, &self.w, &self.spec, self.cert_exists).await?;
        let mut result = Map::new();
        signed_result(&mut result, &signed);
        Ok(ActionOutput {
            changed: true,
            result,
            backups: backup.into_iter().collect(),
        })
    }
}

/// A new key on the host, its request signed, the certificate written, the key put in place.
struct NewKey {
    w: Wanted,
    cert_exists: bool,
}

impl NewKey {
    async fn discard(&self, ctx: &ActionCtx<'_>, scripts: &KeyScripts, tmp: &str) {
        if let Ok(s) = scripts.discard(tmp) {
            let _ = ctx.conn.exec(&self.w.exec(s)).await;
        }
    }
}

fn section(out: &str, name: &str) -> Option<String> {
    let marker = format!("@@{name}");
    let mut lines = out.lines().skip_while(|l| *l != marker);
    lines.next()?;
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("@@")).collect();
    Some(body.join("\n"))
}

#[async_trait]
impl Action for NewKey {
    fn describe(&self) -> String {
        format!(
            "make a {} key at {} on the host (as {}), sign its request with the CA in {}, write {}",
            self.w.key_type,
            self.w.key,
            self.w.owner.as_deref().unwrap_or("the connecting user"),
            self.w.dir.display(),
            self.w.cert
        )
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let w = &self.w;
        let scripts = w.scripts();
        let out = ctx.conn.exec(&w.exec(scripts.generate()?)).await?;
        if out.rc != 0 {
            return Err(w.script_failed(&format!("making a key at {}", w.key), &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let tmp = section(&text, "tmp").unwrap_or_default();
        if !scripts.is_tmp(&tmp) {
            return Err(ModuleError::failed(format!(
                "making a key at {}: the script did not say where it put it",
                w.key
            )));
        }
        let pem = section(&text, "csr").unwrap_or_default();
        let spec = w.spec(pem);
        let (signed, cert_backup) = match sign_and_write(ctx, w, &spec, self.cert_exists).await {
            Ok(x) => x,
            Err(e) => {
                self.discard(ctx, &scripts, &tmp).await;
                return Err(e);
            }
        };
        let suffixes = Suffixes::now();
        let promote = scripts.promote(&tmp, w.backup.then_some(&suffixes))?;
        let out = ctx.conn.exec(&w.exec(promote)).await?;
        if out.rc != 0 {
            self.discard(ctx, &scripts, &tmp).await;
            return Err(w.script_failed(&format!("putting the new key at {}", w.key), &out));
        }
        let mut backups: Vec<Backup> = cert_backup.into_iter().collect();
        if let Some(b) = section(&String::from_utf8_lossy(&out.stdout), "backup") {
            backups.push(Backup {
                path: w.key.clone(),
                backup: b.trim().to_string(),
            });
        }
        let mut result = Map::new();
        signed_result(&mut result, &signed);
        result.insert("rekeyed".into(), json!(true));
        Ok(ActionOutput {
            changed: true,
            result,
            backups,
        })
    }
}
