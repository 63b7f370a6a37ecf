//! `castellan pki ...`: the command-line face of the PKI library.
//!
//! ```text
//! castellan pki init-ca --dir D --cn NAME [--key-type T] [--days N] [--subject "/C=../O=.."] [--import-cert F [--import-key F]] [--not-before-margin S]
//! castellan pki issue   --dir D server NAME [--cn CN] [--san DNS|IP]... [--key-type T] [--days N] [--renew-before DAYS] [--not-before-margin S]
//! castellan pki issue   --dir D client NAME [--cn CN] [--key-type T] [--days N] [--renew-before DAYS] [--pfx-password-file F] [--not-before-margin S]
//! castellan pki revoke  --dir D NAME [--kind server|client] [--reason keyCompromise|superseded|...]
//! castellan pki crl     --dir D [--days N] [--renew-before DAYS]
//! castellan pki list    --dir D [--output json]
//! castellan pki export  --dir D NAME --to DIR [--kind server|client] [--force]
//! castellan pki rollover --dir D [--phase N [--done]] [--stop-after N] [--key-type T] [--days N]
//!                         [--not-before-margin S] [--check]
//! ```
//! Every subcommand takes `--output text|json`. Key types and reasons are checked here, not by
//! clap, so that a wrong value is invalid input (exit 4) with the list of valid values.
//!
//! The PKCS#12 password of a client (`client.pfx`) never comes from the command line, where
//! every user of the machine can read it in the process table: it is read from
//! `--pfx-password-file` or from the environment variable `CASTELLAN_PFX_PASSWORD`, and is empty
//! without either.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::pki::ca::{CaSpec, DEFAULT_CA_DAYS};
use crate::pki::crl::{
    CrlSpec, RevocationReason, RevokeSpec, DEFAULT_CRL_DAYS, DEFAULT_CRL_RENEW_BEFORE_DAYS,
};
use crate::pki::issue::{CertSpec, DEFAULT_LEAF_DAYS, DEFAULT_RENEW_BEFORE_DAYS};
use crate::pki::list::render_table;
use crate::pki::rollover::{ensure_rollover, plan_rollover, RolloverSpec, RolloverStep};
use crate::pki::{
    ensure_ca, ensure_cert, ensure_crl, export, list, revoke, CertKind, ExportSpec, KeyType,
    PfxPassword, PkiError, DEFAULT_NOT_BEFORE_MARGIN_S,
};

/// The environment variable that holds a client's PKCS#12 password (when no
/// `--pfx-password-file` is given).
pub const PFX_PASSWORD_ENV: &str = "CASTELLAN_PFX_PASSWORD";

/// `castellan pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the certificate authority, or import an existing one (does nothing if it is there)
    InitCa(InitCaArgs),
    /// Issue a server or client certificate, or renew it when needed (idempotent)
    Issue(IssueArgs),
    /// Revoke a name's certificate (and its earlier unexpired ones) and write crl.pem
    Revoke(RevokeArgs),
    /// Write crl.pem, or refresh it when it is stale
    Crl(CrlArgs),
    /// List the CA and the certificates with their expiry and their files
    List(ListArgs),
    /// Copy a certificate's files and the CA certificate (root.crt) into a folder, all 0600, with
    /// a README.txt, for someone who carries them by hand
    Export(ExportArgs),
    /// CA rollover, the PKI side of a phase: without --phase, where it stands and the phases to
    /// do; --phase N applies phase N (1: a new CA, ca.crt = old + new; 2: the new CA signs;
    /// 3: the old CA leaves ca.crt); --phase N --done records that every holder has its files
    Rollover(RolloverArgs),
}

#[derive(Debug, Args)]
pub struct RolloverArgs {
    /// PKI directory (it must hold a CA castellan signs with)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The phase to apply (1, 2 or 3); without it: report only
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=3))]
    pub phase: Option<u8>,
    /// Record phase --phase complete (every server and client has its files)
    #[arg(long, requires = "phase")]
    pub done: bool,
    /// The last phase of this run (1, 2 or 3)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub stop_after: u8,
    /// Key type of the new CA (default: the old CA's)
    #[arg(long, value_name = "TYPE")]
    pub key_type: Option<String>,
    /// Lifetime of the new CA, in days (default: the old CA's)
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Seconds the new CA's notBefore is set back (clock skew between hosts)
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_NOT_BEFORE_MARGIN_S)]
    pub not_before_margin: u32,
    /// Say what would be done; write nothing
    #[arg(long)]
    pub check: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// `--output text|json`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub output: String,
}

impl OutputArgs {
    fn json(&self) -> bool {
        self.output == "json"
    }
}

#[derive(Debug, Args)]
pub struct InitCaArgs {
    /// PKI directory (created 0700 if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Common name of the CA
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,
    /// ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096
    #[arg(long, value_name = "TYPE")]
    pub key_type: Option<String>,
    /// Lifetime of a new CA, in days
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CA_DAYS)]
    pub days: u32,
    /// Seconds a new CA's notBefore is set back (hosts whose clock is behind), 0 to 604800
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_NOT_BEFORE_MARGIN_S)]
    pub not_before_margin: u32,
    /// Full subject, OpenSSL style: "/C=FR/O=Example/CN=Example CA"
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// Import this CA certificate (PEM or DER) instead of creating a CA
    #[arg(long, value_name = "FILE")]
    pub import_cert: Option<PathBuf>,
    /// The private key of --import-cert (without it the CA is external: no issuing)
    #[arg(long, value_name = "FILE", requires = "import_cert")]
    pub import_key: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// PKI directory (it must hold a CA)
    #[arg(long, value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub what: IssueWhat,
}

#[derive(Debug, Subcommand)]
pub enum IssueWhat {
    /// A server certificate: SAN DNS/IP entries, serverAuth
    Server(ServerArgs),
    /// A client certificate: CN = the database user, clientAuth, with client.pk8 (JDBC),
    /// client.pem.pk8, client.pfx (.NET) and root.crt
    Client(ClientArgs),
}

#[derive(Debug, Args)]
pub struct LeafArgs {
    /// ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256")]
    pub key_type: String,
    /// Lifetime, in days
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LEAF_DAYS)]
    pub days: u32,
    /// Re-issue when the certificate expires within this many days
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RENEW_BEFORE_DAYS)]
    pub renew_before: u32,
    /// Seconds a new certificate's notBefore is set back (hosts whose clock is behind), 0 to 604800
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_NOT_BEFORE_MARGIN_S)]
    pub not_before_margin: u32,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Name of the certificate (directory server/NAME)
    pub name: String,
    /// Common name (default: NAME)
    #[arg(long, value_name = "CN")]
    pub cn: Option<String>,
    /// Subject alternative name: a DNS name or an IP address (repeat for several)
    #[arg(long = "san", value_name = "DNS|IP")]
    pub sans: Vec<String>,
    #[command(flatten)]
    pub leaf: LeafArgs,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Name of the certificate (directory client/NAME)
    pub name: String,
    /// Common name = the database user (default: NAME)
    #[arg(long, value_name = "CN")]
    pub cn: Option<String>,
    /// File holding the client.pfx password (its trailing newline dropped); without it the
    /// password comes from the environment variable CASTELLAN_PFX_PASSWORD, else it is empty
    /// (the key in client.pfx is then protected by the file's 0600 mode alone)
    #[arg(long, value_name = "FILE")]
    pub pfx_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub leaf: LeafArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// PKI directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Name of the certificate to revoke
    pub name: String,
    /// server or client, when both kinds have this name
    #[arg(long, value_name = "KIND", value_parser = ["server", "client"])]
    pub kind: Option<String>,
    /// unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise
    #[arg(long, value_name = "REASON", default_value = "unspecified")]
    pub reason: String,
    /// Lifetime of the CRL written, in days
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CRL_DAYS)]
    pub crl_days: u32,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CrlArgs {
    /// PKI directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Lifetime of the CRL, in days
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CRL_DAYS)]
    pub days: u32,
    /// Write a new CRL when the current one's next update is within this many days
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_CRL_RENEW_BEFORE_DAYS)]
    pub renew_before: u32,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// PKI directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Name of the certificate to export
    pub name: String,
    /// The folder to write to (created 0700 if missing)
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// server or client, when both kinds have this name
    #[arg(long, value_name = "KIND", value_parser = ["server", "client"])]
    pub kind: Option<String>,
    /// Replace files of --to that hold other content (otherwise: exit 4, nothing written)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// PKI directory
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn print_json<T: Serialize>(value: &T) -> Result<(), PkiError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| PkiError::Internal(format!("serializing the result: {e}")))?;
    println!("{text}");
    Ok(())
}

fn warn_all(warnings: &[String]) {
    let mut err = std::io::stderr().lock();
    for w in warnings {
        let _ = writeln!(err, "warning: {w}");
    }
}

fn status_word(changed: bool) -> &'static str {
    if changed {
        "changed"
    } else {
        "ok"
    }
}

fn leaf_spec(
    kind: CertKind,
    name: String,
    cn: Option<String>,
    sans: Vec<String>,
    leaf: &LeafArgs,
) -> Result<CertSpec, PkiError> {
    Ok(CertSpec {
        kind,
        cn: cn.unwrap_or_else(|| name.clone()),
        name,
        sans,
        key_type: KeyType::parse(&leaf.key_type)?,
        days: leaf.days,
        renew_before_days: leaf.renew_before,
        pfx_password: PfxPassword::default(),
        force: false,
        not_before_margin_s: leaf.not_before_margin,
    })
}

/// The client.pfx password: `--pfx-password-file` (one trailing newline dropped), else
/// `CASTELLAN_PFX_PASSWORD`, else empty. Errors never quote it.
fn pfx_password(file: Option<&std::path::Path>) -> Result<PfxPassword, PkiError> {
    let text = match file {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                PkiError::InvalidArgument(format!(
                    "cannot read --pfx-password-file {}: {e}",
                    path.display()
                ))
            })?;
            let mut text = String::from_utf8(bytes).map_err(|_| {
                PkiError::InvalidArgument(format!(
                    "--pfx-password-file {} is not UTF-8 text",
                    path.display()
                ))
            })?;
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            text
        }
        None => match std::env::var(PFX_PASSWORD_ENV) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => String::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(PkiError::InvalidArgument(format!(
                    "{PFX_PASSWORD_ENV} is not valid UTF-8"
                )))
            }
        },
    };
    PfxPassword::new(text)
}

/// Runs a `pki` subcommand. Returns the exit code on success (0, or 5 for a usage error clap
/// could not catch); errors carry their own code ([`PkiError::exit_code`]).
/// `output_json` forces JSON output (a global `--output json`), as does each subcommand's own
/// `--output json`.
pub fn run(cmd: PkiCommand, output_json: bool) -> Result<i32, PkiError> {
    match cmd {
        PkiCommand::InitCa(a) => {
            let spec = CaSpec {
                cn: a.cn.clone(),
                subject: a.subject.clone(),
                key_type: a.key_type.as_deref().map(KeyType::parse).transpose()?,
                days: a.days,
                import_cert: a.import_cert.clone(),
                import_key: a.import_key.clone(),
                not_before_margin_s: a.not_before_margin,
            };
            let o = ensure_ca(&a.dir, &spec)?;
            warn_all(&o.warnings);
            if output_json || a.out.json() {
                print_json(&o)?;
            } else if o.changed {
                println!(
                    "changed: {}: {} ({}), expires {} ({} days)\n  {}",
                    o.reason.as_deref().unwrap_or("CA written"),
                    o.subject,
                    o.key_type,
                    o.not_after,
                    o.days_left,
                    o.cert_path.display()
                );
            } else {
                println!(
                    "ok: CA {} ({}) already in place, expires {} ({} days)",
                    o.subject, o.key_type, o.not_after, o.days_left
                );
            }
        }
        PkiCommand::Issue(a) => {
            let Some(dir) = a.dir else {
                eprintln!("error: the following required argument was not provided: --dir <DIR>\n\nUsage: castellan pki issue --dir <DIR> <server|client> NAME ...");
                return Ok(5);
            };
            let (spec, json) = match a.what {
                IssueWhat::Server(s) => {
                    let json = s.leaf.out.json();
                    (
                        leaf_spec(CertKind::Server, s.name, s.cn, s.sans, &s.leaf)?,
                        json,
                    )
                }
                IssueWhat::Client(c) => {
                    let json = c.leaf.out.json();
                    let mut spec = leaf_spec(CertKind::Client, c.name, c.cn, Vec::new(), &c.leaf)?;
                    spec.pfx_password = pfx_password(c.pfx_password_file.as_deref())?;
                    (spec, json)
                }
            };
            let o = ensure_cert(&dir, &spec)?;
            warn_all(&o.warnings);
            if output_json || json {
                print_json(&o)?;
            } else {
                let what = match &o.reason {
                    Some(r) if o.issued => format!("issued ({r})"),
                    Some(r) if o.changed => format!("kept, files written ({r})"),
                    _ => "unchanged".to_string(),
                };
                println!(
                    "{}: {} {} {what}: CN={}, {}, serial {}, expires {} ({} days)",
                    status_word(o.changed),
                    o.kind,
                    o.name,
                    o.cn,
                    o.key_type,
                    o.serial,
                    o.not_after,
                    o.days_left
                );
                println!("  cert:    {}", o.cert_path.display());
                println!("  key:     {}", o.key_path.display());
                for (what, path) in [
                    ("pk8:    ", &o.pk8_path),
                    ("pem_pk8:", &o.pem_pk8_path),
                    ("pfx:    ", &o.pfx_path),
                    ("root:   ", &o.root_path),
                ] {
                    if let Some(p) = path {
                        println!("  {what} {}", p.display());
                    }
                }
                if !o.sans.is_empty() {
                    println!("  sans: {}", o.sans.join(", "));
                }
                if !o.revoked_superseded.is_empty() {
                    println!(
                        "  revoked (superseded): serial {}",
                        o.revoked_superseded.join(", ")
                    );
                }
            }
        }
        PkiCommand::Revoke(a) => {
            let spec = RevokeSpec {
                name: a.name.clone(),
                kind: match a.kind.as_deref() {
                    Some("server") => Some(CertKind::Server),
                    Some("client") => Some(CertKind::Client),
                    _ => None,
                },
                reason: RevocationReason::parse(&a.reason)?,
                crl_days: a.crl_days,
            };
            let o = revoke(&a.dir, &spec)?;
            if output_json || a.out.json() {
                print_json(&o)?;
            } else {
                let serials = if o.serials.is_empty() {
                    o.serial.clone()
                } else {
                    o.serials.join(", ")
                };
                println!(
                    "{}: revoked {} {} (serial {serials}, {}); {} #{} lists {} certificate(s), next update {}",
                    status_word(o.changed),
                    o.kind,
                    o.name,
                    o.reason,
                    o.crl_path.display(),
                    o.crl_number,
                    o.revoked_count,
                    o.crl_next_update
                );
            }
        }
        PkiCommand::Crl(a) => {
            let spec = CrlSpec {
                days: a.days,
                renew_before_days: a.renew_before,
            };
            let o = ensure_crl(&a.dir, &spec)?;
            if output_json || a.out.json() {
                print_json(&o)?;
            } else {
                println!(
                    "{}: {} #{} ({}), {} revoked, next update {}",
                    status_word(o.changed),
                    o.crl_path.display(),
                    o.number,
                    o.reason.as_deref().unwrap_or("up to date"),
                    o.revoked_serials.len(),
                    o.next_update
                );
            }
        }
        PkiCommand::Export(a) => {
            let spec = ExportSpec {
                name: a.name.clone(),
                kind: match a.kind.as_deref() {
                    Some("server") => Some(CertKind::Server),
                    Some("client") => Some(CertKind::Client),
                    _ => None,
                },
                to: a.to.clone(),
                force: a.force,
            };
            let o = export(&a.dir, &spec)?;
            warn_all(&o.warnings);
            if output_json || a.out.json() {
                print_json(&o)?;
            } else {
                let written = o.files.iter().filter(|f| f.written).count();
                println!(
                    "{}: {} {} exported to {} ({written} of {} files written)",
                    status_word(o.changed),
                    o.kind,
                    o.name,
                    o.to.display(),
                    o.files.len()
                );
                for f in &o.files {
                    let what = if f.written { "written" } else { "unchanged" };
                    println!("  {what:<9} {}", f.path.display());
                }
            }
        }
        PkiCommand::Rollover(a) => {
            let step = match (a.phase, a.done) {
                (None, _) => RolloverStep::Plan,
                (Some(p), false) => RolloverStep::Start(p),
                (Some(p), true) => RolloverStep::Done(p),
            };
            let spec = RolloverSpec {
                step,
                stop_after: a.stop_after,
                key_type: a.key_type.as_deref().map(KeyType::parse).transpose()?,
                days: a.days,
                not_before_margin_s: a.not_before_margin,
            };
            let o = if a.check {
                plan_rollover(&a.dir, &spec)?
            } else {
                ensure_rollover(&a.dir, &spec)?
            };
            warn_all(&o.warnings);
            if output_json || a.out.json() {
                print_json(&o)?;
            } else {
                match (&o.reason, a.check) {
                    (Some(r), true) => println!("would change: {r}"),
                    (Some(r), false) => println!("changed: {r}"),
                    (None, _) => match o.phase {
                        Some(p) if o.run => println!("ok: phase {p} is in place"),
                        Some(p) => println!("ok: nothing to do for phase {p}"),
                        None => {}
                    },
                }
                println!("{}", o.summary);
            }
        }
        PkiCommand::List(a) => {
            let l = list(&a.dir)?;
            if output_json || a.out.json() {
                print_json(&l)?;
            } else {
                print!("{}", render_table(&l));
            }
        }
    }
    Ok(0)
}
