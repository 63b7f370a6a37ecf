//! `castellan certs status`: the certificate each PostgreSQL server presents (SSLRequest probe,
//! no login), its expiry, and whether it is the one in the PKI directory. For scheduled
//! rotation: exit 2 when a certificate expires within `--warn-days` (or is not ours, or SSL is
//! off), 3 when a server cannot be reached.
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{CertsStatusArgs, Output};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::postgres::verify::{probe, CertInfo};
use crate::template::Templar;

/// What one host serves.
struct HostStatus {
    name: String,
    result: std::result::Result<Option<CertInfo>, String>,
    days_left: Option<i64>,
    matches_pki: Option<bool>,
}

/// The SHA-256 of the PKI's certificate for `name` (DER), if there is one.
fn pki_sha256(dir: &Path, name: &str) -> Option<String> {
    let pem = std::fs::read(dir.join("server").join(name).join("server.crt")).ok()?;
    let der = x509_parser::pem::parse_x509_pem(&pem).ok()?.1.contents;
    Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der)))
}

fn days_left(not_after: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
        .ok()?;
    Some((t - time::OffsetDateTime::now_utc()).whole_days())
}

/// A host variable, rendered (inventory values may be templates).
fn var(templar: &Templar, vars: &Map<String, Value>, key: &str) -> Option<String> {
    let v = vars.get(key)?;
    let ctx = crate::template::context(vars);
    match templar.render_value(v, &ctx).ok()? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn run(args: CertsStatusArgs) -> Result<i32> {
    super::vault::load(&args.vault)?;
    let inv = Inventory::load(&args.inventory)?;
    let pattern = args.limit.clone().unwrap_or_else(|| "all".into());
    let hosts = inv
        .select(&pattern)
        .map_err(|e| Error::Usage(format!("--limit: {e}")))?;
    let templar = Templar::new();
    let mut targets = Vec::new();
    for name in &hosts {
        let Some(h) = inv.host(name) else { continue };
        let mut vars = h.vars.clone();
        vars.insert("inventory_hostname".into(), json!(name));
        vars.insert("inventory_dir".into(), json!(h.inventory_dir));
        let addr = var(&templar, &vars, "ansible_host").unwrap_or_else(|| name.clone());
        let port: u16 = var(&templar, &vars, "pg_port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(5432);
        let server_name = var(&templar, &vars, "pg_dns_name").unwrap_or_else(|| addr.clone());
        let pki = args
            .pki_dir
            .clone()
            .or_else(|| var(&templar, &vars, "pki_dir").map(PathBuf::from));
        targets.push((name.clone(), addr, port, server_name, pki));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let timeout = Duration::from_secs(args.timeout);
    let statuses: Vec<HostStatus> = rt.block_on(async {
        let jobs = targets
            .into_iter()
            .map(|(name, addr, port, server_name, pki)| async move {
                let result = match (addr.as_str(), port)
                    .to_socket_addrs()
                    .map(|mut a| a.next())
                {
                    Ok(Some(sa)) => probe(sa, &server_name, timeout).await,
                    Ok(None) | Err(_) => Err(format!("cannot resolve {addr}")),
                };
                let (days, matches) = match &result {
                    Ok(Some(c)) => (
                        c.not_after.as_deref().and_then(days_left),
                        pki.as_deref()
                            .map(|d| pki_sha256(d, &name).as_deref() == Some(c.sha256.as_str())),
                    ),
                    _ => (None, None),
                };
                HostStatus {
                    name,
                    result,
                    days_left: days,
                    matches_pki: matches,
                }
            });
        futures::future::join_all(jobs).await
    });

    let mut warn = false;
    let mut unreachable = false;
    let mut doc = Map::new();
    for s in &statuses {
        let entry = match &s.result {
            Ok(Some(c)) => {
                let expiring = s.days_left.is_some_and(|d| d < args.warn_days);
                warn |= expiring || s.matches_pki == Some(false);
                json!({
                    "subject": c.subject, "sans": c.sans, "issuer": c.issuer,
                    "not_after": c.not_after, "days_left": s.days_left, "sha256": c.sha256,
                    "matches_pki": s.matches_pki, "expiring": expiring,
                })
            }
            Ok(None) => {
                warn = true;
                json!({"error": "the server answered that SSL is off"})
            }
            Err(e) => {
                unreachable = true;
                json!({"error": e, "unreachable": true})
            }
        };
        doc.insert(s.name.clone(), entry);
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"hosts": doc})).unwrap_or_default()
        ),
        Output::Text => print_table(&statuses, args.warn_days),
    }
    Ok(if warn {
        2
    } else if unreachable {
        3
    } else {
        0
    })
}

fn print_table(statuses: &[HostStatus], warn_days: i64) {
    let w = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<w$}  {:>9}  {:<25}  {:<8}  SUBJECT / ERROR",
        "HOST", "DAYS LEFT", "NOT AFTER", "PKI"
    );
    for s in statuses {
        match &s.result {
            Ok(Some(c)) => {
                let days = s.days_left.map_or("?".into(), |d| d.to_string());
                let flag = if s.days_left.is_some_and(|d| d < warn_days) {
                    " (renew!)"
                } else {
                    ""
                };
                let pki = match s.matches_pki {
                    Some(true) => "same",
                    Some(false) => "DIFFERS",
                    None => "-",
                };
                println!(
                    "{:<w$}  {:>9}  {:<25}  {:<8}  {}{flag}",
                    s.name,
                    days,
                    c.not_after.clone().unwrap_or_default(),
                    pki,
                    c.subject
                );
            }
            Ok(None) => println!(
                "{:<w$}  {:>9}  {:<25}  {:<8}  SSL is off",
                s.name, "-", "-", "-"
            ),
            Err(e) => println!("{:<w$}  {:>9}  {:<25}  {:<8}  {e}", s.name, "-", "-", "-"),
        }
    }
}
