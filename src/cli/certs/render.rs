//! `certs status` as text (a table) and as JSON (DESIGN.md's `{"hosts": {...}}`: a server's
//! certificate as served in the host's entry, as before; the files read on the host under
//! `files`).
use serde_json::{json, Map, Value};

use super::status::{Check, HostStatus};

fn check_json(c: &Check, warn_days: i64) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(f) = &c.file {
        m.insert("file".into(), json!(f));
        m.insert("kind".into(), json!(c.kind.as_str()));
        m.insert("name".into(), json!(c.name));
    }
    match &c.cert {
        Ok((info, count)) => {
            for (k, v) in [
                ("subject", json!(info.subject)),
                ("sans", json!(info.sans)),
                ("issuer", json!(info.issuer)),
                ("not_after", json!(info.not_after)),
                ("days_left", json!(c.days_left)),
                ("sha256", json!(info.sha256)),
                ("matches_pki", json!(c.matches_pki)),
                ("expiring", json!(c.renewal_due(warn_days))),
            ] {
                m.insert(k.into(), v);
            }
            if c.file.is_some() {
                m.insert("certificates".into(), json!(count));
            }
        }
        Err(e) => {
            m.insert("error".into(), json!(e));
        }
    }
    m
}

/// The JSON document.
pub fn json_doc(statuses: &[HostStatus], warn_days: i64) -> Value {
    let mut hosts = Map::new();
    for s in statuses {
        let mut entry = match (&s.server, &s.server_unreachable) {
            (Some(c), _) => check_json(c, warn_days),
            (None, Some(e)) => {
                let mut m = Map::new();
                m.insert("error".into(), json!(e));
                m.insert("unreachable".into(), json!(true));
                m
            }
            (None, None) => Map::new(),
        };
        if !s.files.is_empty() || s.files_unreachable.is_some() {
            let files: Vec<Value> = s
                .files
                .iter()
                .map(|c| Value::Object(check_json(c, warn_days)))
                .collect();
            entry.insert("files".into(), json!(files));
        }
        if let Some(e) = &s.files_unreachable {
            entry.insert("files_error".into(), json!(e));
            entry.insert("unreachable".into(), json!(true));
        }
        hosts.insert(s.host.clone(), Value::Object(entry));
    }
    json!({ "hosts": hosts })
}

/// The text table: one line per certificate, one per host that could not be reached.
pub fn table(statuses: &[HostStatus], warn_days: i64) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "HOST".into(),
        "KIND".into(),
        "WHERE".into(),
        "DAYS LEFT".into(),
        "NOT AFTER".into(),
        "PKI".into(),
        "SUBJECT / ERROR".into(),
    ]];
    for s in statuses {
        if let Some(e) = &s.server_unreachable {
            rows.push(row(&s.host, "server", "served", "-", "-", "-", e));
        }
        if let Some(e) = &s.files_unreachable {
            rows.push(row(&s.host, "client", "files", "-", "-", "-", e));
        }
        for c in s.checks() {
            let place = c.file.as_deref().unwrap_or("served");
            match &c.cert {
                Ok((info, _)) => {
                    let days = c.days_left.map_or("?".into(), |d| d.to_string());
                    let flag = if c.renewal_due(warn_days) {
                        " (renew!)"
                    } else {
                        ""
                    };
                    let pki = match c.matches_pki {
                        Some(true) => "same",
                        Some(false) => "DIFFERS",
                        None => "-",
                    };
                    rows.push(row(
                        &s.host,
                        c.kind.as_str(),
                        place,
                        &days,
                        info.not_after.as_deref().unwrap_or("-"),
                        pki,
                        &format!("{}{flag}", info.subject),
                    ));
                }
                Err(e) => rows.push(row(&s.host, c.kind.as_str(), place, "-", "-", "-", e)),
            }
        }
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn row(
    host: &str,
    kind: &str,
    place: &str,
    days: &str,
    not_after: &str,
    pki: &str,
    last: &str,
) -> [String; 7] {
    [
        host.into(),
        kind.into(),
        place.into(),
        days.into(),
        not_after.into(),
        pki.into(),
        last.into(),
    ]
}
