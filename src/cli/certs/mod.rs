//! `castellan certs status`: the monitoring entry point. For every host of the inventory (or
//! `--limit`): the certificate its PostgreSQL server presents (SSLRequest probe, no login) and
//! the certificate files it holds (read on the host over SSH: certificates only, never a key
//! file), each with its expiry and whether it is the PKI's current certificate. Output as a
//! table, JSON, or Prometheus metrics (node_exporter textfile collector, `--prometheus-file`
//! written atomically). Exit 2 when a certificate expires within `--warn-days`, is not the
//! PKI's, or is missing (or SSL is off); else 3 when a host cannot be reached; else 0.
pub mod holders;
pub mod metrics;
pub mod pki_view;
pub mod remote;
pub mod render;
pub mod status;
pub mod targets;

use std::collections::HashMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use self::pki_view::PkiView;
use self::remote::FileRead;
use self::status::{dates, Check, HostStatus};
use self::targets::{CertFile, ServerProbe, Target};
use super::{CertsStatusArgs, StatusOutput};
use crate::connection::{Attrs, ConnError, ExecRequest};
use crate::engine::connections::Pool;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::pki::CertKind;
use crate::postgres::verify::probe;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A check from a certificate that was read, compared with the PKI.
fn checked(
    kind: CertKind,
    name: Option<String>,
    file: Option<String>,
    read: std::result::Result<(crate::postgres::verify::CertInfo, usize), String>,
    pki: Option<&PkiView>,
) -> Check {
    let (days_left, not_after_ts) = match &read {
        Ok((info, _)) => dates(info.not_after.as_deref(), now()),
        Err(_) => (None, None),
    };
    let matches_pki = match (&read, pki) {
        (Ok((info, _)), Some(v)) => Some(v.matches(kind, name.as_deref(), &info.sha256)),
        _ => None,
    };
    Check {
        kind,
        name,
        file,
        cert: read,
        days_left,
        not_after_ts,
        matches_pki,
    }
}

/// The server's certificate as served: a check, or why the server could not be reached.
async fn served(
    host: &str,
    p: &ServerProbe,
    timeout: Duration,
    pki: Option<&PkiView>,
) -> std::result::Result<Check, String> {
    let sa = match (p.addr.as_str(), p.port).to_socket_addrs() {
        Ok(mut a) => a
            .next()
            .ok_or_else(|| format!("cannot resolve {}", p.addr))?,
        Err(_) => return Err(format!("cannot resolve {}", p.addr)),
    };
    let read = match probe(sa, &p.server_name, timeout).await? {
        Some(info) => Ok((info, 1)),
        None => Err("the server answered that SSL is off".to_string()),
    };
    Ok(checked(
        CertKind::Server,
        Some(host.to_string()),
        None,
        read,
        pki,
    ))
}

/// The files read on the host: checks, or why the host could not be reached.
async fn files(
    pool: &Pool,
    t: &Target,
    pki: Option<&PkiView>,
) -> std::result::Result<Vec<Check>, String> {
    let paths: Vec<&str> = t.files.iter().map(|f| f.path.as_str()).collect();
    let script = remote::script(&paths)?;
    let conn = pool
        .get(&t.host, &t.vars)
        .await
        .map_err(|e| e.to_string())?;
    let req = ExecRequest {
        shell: Some(script),
        become_user: t.become_user.clone(),
        ..ExecRequest::default()
    };
    let reads = match conn.query(&req).await {
        Ok(out) if out.rc == 0 => remote::parse(&out.stdout, paths.len()),
        Ok(out) => {
            let why = format!(
                "reading the certificates failed (rc {}): {}",
                out.rc,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            vec![FileRead::Problem(why); paths.len()]
        }
        Err(ConnError::Unreachable(e)) => return Err(e),
        Err(ConnError::Failed(e)) => vec![FileRead::Problem(e); paths.len()],
    };
    Ok(t.files
        .iter()
        .zip(reads)
        .map(|(f, r): (&CertFile, FileRead)| {
            let read = match r {
                FileRead::Cert { info, count } => Ok((info, count)),
                FileRead::Problem(p) => Err(p),
            };
            checked(f.kind, f.name.clone(), Some(f.path.clone()), read, pki)
        })
        .collect())
}

/// Replace `path` with `text` atomically (a temp file in the same directory, renamed: the
/// textfile collector never sees a partial file; the temp name does not end in `.prom`).
fn write_metrics(path: &Path, text: &str) -> Result<()> {
    let shown = path.display().to_string();
    let attrs = Attrs {
        mode: Some(0o644),
        ..Attrs::default()
    };
    crate::connection::local::write_atomic(&shown, text.as_bytes(), &attrs, false, false)
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot write --prometheus-file {shown}: {e}")))
}

pub fn run(args: CertsStatusArgs) -> Result<i32> {
    super::vault::load(&args.vault)?;
    if let Some(p) = &args.prometheus_file {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() || p.is_dir() {
            return Err(Error::Usage(format!(
                "--prometheus-file {}: its directory {} does not exist, or it is a directory",
                p.display(),
                dir.display()
            )));
        }
    }
    let inv = Inventory::load(&args.inventory)?;
    let pattern = args.limit.clone().unwrap_or_else(|| "all".into());
    let hosts = inv
        .select(&pattern)
        .map_err(|e| Error::Usage(format!("--limit: {e}")))?;
    let targets = targets::targets(&inv, &hosts, args.pki_dir.as_deref())?;
    if targets.is_empty() {
        eprintln!(
            "warning: nothing to check on the {} host(s) selected: no host of group postgres \
             (or with {}: true), none holding certificate files ({} or a holder group: {})",
            hosts.len(),
            targets::SERVER_VAR,
            targets::FILES_VAR,
            holders::HOLDERS
                .iter()
                .map(|h| h.group)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let mut views: HashMap<PathBuf, Option<Arc<PkiView>>> = HashMap::new();
    for t in &targets {
        if let Some(d) = &t.pki {
            views
                .entry(d.clone())
                .or_insert_with(|| PkiView::load(d).map(Arc::new));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    let timeout = Duration::from_secs(args.timeout);
    let pool = Pool::new(false);
    let statuses: Vec<HostStatus> = rt.block_on(async {
        let jobs = targets.iter().map(|t| {
            let pki = t.pki.as_ref().and_then(|d| views.get(d).cloned().flatten());
            let pool = &pool;
            async move {
                let pki = pki.as_deref();
                let server = async {
                    match &t.server {
                        Some(p) => Some(served(&t.host, p, timeout, pki).await),
                        None => None,
                    }
                };
                let held = async {
                    if t.files.is_empty() {
                        Ok(Vec::new())
                    } else {
                        files(pool, t, pki).await
                    }
                };
                let (server, held) = futures::join!(server, held);
                let (server, server_unreachable) = match server {
                    Some(Ok(c)) => (Some(c), None),
                    Some(Err(e)) => (None, Some(e)),
                    None => (None, None),
                };
                let (files, files_unreachable) = match held {
                    Ok(f) => (f, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                HostStatus {
                    host: t.host.clone(),
                    server,
                    server_unreachable,
                    files,
                    files_unreachable,
                }
            }
        });
        let out: Vec<HostStatus> = futures::stream::iter(jobs)
            .buffered(args.forks as usize)
            .collect()
            .await;
        pool.close_all().await;
        out
    });

    let code = status::exit_code(&statuses, args.warn_days);
    let prometheus = (args.prometheus_file.is_some() || args.output == StatusOutput::Prometheus)
        .then(|| metrics::metrics(&statuses, args.warn_days, code, now()));
    if let (Some(p), Some(text)) = (&args.prometheus_file, &prometheus) {
        write_metrics(p, text)?;
    }
    match args.output {
        StatusOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json_doc(&statuses, args.warn_days))
                .unwrap_or_default()
        ),
        StatusOutput::Text => print!("{}", render::table(&statuses, args.warn_days)),
        StatusOutput::Prometheus => print!("{}", prometheus.unwrap_or_default()),
    }
    Ok(code)
}
