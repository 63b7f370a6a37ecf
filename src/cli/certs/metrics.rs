//! `certs status` as Prometheus metrics (node_exporter's textfile collector). Every certificate
//! has one series of each `castellan_cert_*` family, labelled `host`, `kind` (server|client),
//! `name` (its name in the PKI, empty when unknown), `file` (the path on the host; empty for the
//! certificate a server serves) and `subject`.
use super::status::{Check, HostStatus};
use crate::report::prometheus::{render, Family};

/// The families, in the order they are written.
pub const DAYS_LEFT: &str = "castellan_cert_days_left";
pub const NOT_AFTER: &str = "castellan_cert_not_after_timestamp_seconds";
pub const MATCHES_PKI: &str = "castellan_cert_matches_pki";
pub const RENEWAL_DUE: &str = "castellan_cert_renewal_due";
pub const READ_OK: &str = "castellan_cert_read_ok";
pub const UP: &str = "castellan_cert_status_up";
pub const LAST_RUN: &str = "castellan_cert_status_last_run_timestamp_seconds";
pub const EXIT_CODE: &str = "castellan_cert_status_exit_code";

fn labels(host: &str, c: &Check) -> Vec<(&'static str, String)> {
    let subject = c
        .cert
        .as_ref()
        .map(|(info, _)| info.subject.clone())
        .unwrap_or_default();
    vec![
        ("host", host.to_string()),
        ("kind", c.kind.to_string()),
        ("name", c.name.clone().unwrap_or_default()),
        ("file", c.file.clone().unwrap_or_default()),
        ("subject", subject),
    ]
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The metrics text for a run that ended with `exit_code` at `now` (seconds since the epoch).
pub fn metrics(statuses: &[HostStatus], warn_days: i64, exit_code: i32, now: i64) -> String {
    let mut days = Family::gauge(
        DAYS_LEFT,
        "Whole days until the certificate's notAfter (negative once expired).",
    );
    let mut not_after = Family::gauge(NOT_AFTER, "The certificate's notAfter, Unix time.");
    let mut matches = Family::gauge(
        MATCHES_PKI,
        "1 when the certificate is the PKI's current one for its name, else 0 (absent without a PKI to compare with).",
    );
    let mut due = Family::gauge(
        RENEWAL_DUE,
        "1 when the certificate expires within --warn-days days.",
    );
    let mut read_ok = Family::gauge(
        READ_OK,
        "1 when the certificate was read (file present and holding a certificate, server serving TLS), else 0.",
    );
    let mut up = Family::gauge(
        UP,
        "1 when the host answered: kind=server the TLS probe of its PostgreSQL server, kind=client the SSH connection that reads its certificate files.",
    );
    let mut last = Family::gauge(LAST_RUN, "When castellan certs status ran, Unix time.");
    let mut code = Family::gauge(
        EXIT_CODE,
        "The exit code of that run: 0 ok, 2 renewal due or mismatch, 3 unreachable.",
    );
    for s in statuses {
        for c in s.checks() {
            let l = labels(&s.host, c);
            read_ok.push(l.clone(), flag(c.cert.is_ok()));
            if let Some(d) = c.days_left {
                days.push(l.clone(), d as f64);
                due.push(l.clone(), flag(c.renewal_due(warn_days)));
            }
            if let Some(t) = c.not_after_ts {
                not_after.push(l.clone(), t as f64);
            }
            if let Some(m) = c.matches_pki {
                matches.push(l, flag(m));
            }
        }
        let probed = s.server.is_some() || s.server_unreachable.is_some();
        if probed {
            up.push(
                vec![("host", s.host.clone()), ("kind", "server".into())],
                flag(s.server_unreachable.is_none()),
            );
        }
        if !s.files.is_empty() || s.files_unreachable.is_some() {
            up.push(
                vec![("host", s.host.clone()), ("kind", "client".into())],
                flag(s.files_unreachable.is_none()),
            );
        }
    }
    last.push(vec![], now as f64);
    code.push(vec![], f64::from(exit_code));
    render(&[days, not_after, matches, due, read_ok, up, last, code])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::CertKind;
    use crate::postgres::verify::CertInfo;

    #[test]
    fn one_series_per_certificate_and_up_per_host() {
        let mut info = CertInfo::from_der(&[]);
        info.subject = "CN=app \"x\"".into();
        let cert = Check {
            kind: CertKind::Client,
            name: Some("app.h1".into()),
            file: Some("/etc/ssl/client.crt".into()),
            cert: Ok((info, 1)),
            days_left: Some(12),
            not_after_ts: Some(1_900_000_000),
            matches_pki: Some(false),
        };
        let missing = Check {
            file: Some("/etc/ssl/other.crt".into()),
            cert: Err("no such file".into()),
            days_left: None,
            not_after_ts: None,
            matches_pki: None,
            ..cert.clone()
        };
        let statuses = [
            HostStatus {
                host: "h1".into(),
                server: None,
                server_unreachable: None,
                files: vec![cert, missing],
                files_unreachable: None,
            },
            HostStatus {
                host: "db1".into(),
                server: None,
                server_unreachable: Some("refused".into()),
                files: vec![],
                files_unreachable: None,
            },
        ];
        let text = metrics(&statuses, 30, 2, 1_800_000_000);
        let l = r#"{host="h1",kind="client",name="app.h1",file="/etc/ssl/client.crt",subject="CN=app \"x\""}"#;
        for want in [
            format!("castellan_cert_days_left{l} 12\n"),
            format!("castellan_cert_not_after_timestamp_seconds{l} 1900000000\n"),
            format!("castellan_cert_matches_pki{l} 0\n"),
            format!("castellan_cert_renewal_due{l} 1\n"),
            format!("castellan_cert_read_ok{l} 1\n"),
            r#"castellan_cert_read_ok{host="h1",kind="client",name="app.h1",file="/etc/ssl/other.crt",subject=""} 0"#.to_string() + "\n",
            "castellan_cert_status_up{host=\"h1\",kind=\"client\"} 1\n".into(),
            "castellan_cert_status_up{host=\"db1\",kind=\"server\"} 0\n".into(),
            "castellan_cert_status_last_run_timestamp_seconds 1800000000\n".into(),
            "castellan_cert_status_exit_code 2\n".into(),
        ] {
            assert!(text.contains(&want), "{want} not in\n{text}");
        }
        assert_eq!(text.matches("castellan_cert_days_left{").count(), 1);
        assert_eq!(text.matches("# TYPE ").count(), 8);
    }
}
