//! What `certs status` found, and what it means for monitoring: the verdict of each certificate
//! and the exit code of the run (0 ok, 2 renewal due / mismatch / a certificate missing, 3 a host
//! unreachable and nothing else wrong).
use crate::pki::CertKind;
use crate::postgres::verify::CertInfo;

/// One certificate checked: served by a server (`file: None`) or read from a file on the host.
#[derive(Debug, Clone)]
pub struct Check {
    pub kind: CertKind,
    /// Its name in the PKI (a server's is its inventory name), when known.
    pub name: Option<String>,
    /// The file on the host; `None` for the certificate a server serves.
    pub file: Option<String>,
    /// The certificate and how many certificates the file holds (the first is described), or
    /// why there is none (missing file, SSL off...).
    pub cert: Result<(CertInfo, usize), String>,
    /// Whole days until notAfter (negative once expired).
    pub days_left: Option<i64>,
    /// notAfter, seconds since the epoch.
    pub not_after_ts: Option<i64>,
    /// `None`: no PKI to compare with.
    pub matches_pki: Option<bool>,
}

impl Check {
    /// Expires within `warn_days` days (or expired).
    pub fn renewal_due(&self, warn_days: i64) -> bool {
        self.days_left.is_some_and(|d| d < warn_days)
    }

    /// Something for a human to fix: renewal due, not the PKI's certificate, or no certificate.
    pub fn needs_attention(&self, warn_days: i64) -> bool {
        self.cert.is_err() || self.renewal_due(warn_days) || self.matches_pki == Some(false)
    }
}

/// One host.
#[derive(Debug, Clone)]
pub struct HostStatus {
    pub host: String,
    /// The server's certificate as served, when the host was probed and answered.
    pub server: Option<Check>,
    /// The probe could not reach the server.
    pub server_unreachable: Option<String>,
    /// The certificate files read on the host.
    pub files: Vec<Check>,
    /// The host could not be reached over SSH to read its files.
    pub files_unreachable: Option<String>,
}

impl HostStatus {
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.server.iter().chain(self.files.iter())
    }

    pub fn unreachable(&self) -> bool {
        self.server_unreachable.is_some() || self.files_unreachable.is_some()
    }
}

/// Days and the timestamp of an RFC 3339 notAfter, from `now` (seconds since the epoch).
pub fn dates(not_after: Option<&str>, now: i64) -> (Option<i64>, Option<i64>) {
    let Some(t) = not_after.and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return (None, None);
    };
    let ts = t.unix_timestamp();
    (Some((ts - now).div_euclid(86_400)), Some(ts))
}

/// The exit code: 2 when a certificate needs attention, else 3 when a host was unreachable,
/// else 0.
pub fn exit_code(statuses: &[HostStatus], warn_days: i64) -> i32 {
    if statuses
        .iter()
        .flat_map(HostStatus::checks)
        .any(|c| c.needs_attention(warn_days))
    {
        2
    } else if statuses.iter().any(HostStatus::unreachable) {
        3
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(days: Option<i64>, matches: Option<bool>, ok: bool) -> Check {
        Check {
            kind: CertKind::Client,
            name: None,
            file: Some("/x.crt".into()),
            cert: if ok {
                Ok((CertInfo::from_der(&[]), 1))
            } else {
                Err("no such file".into())
            },
            days_left: days,
            not_after_ts: None,
            matches_pki: matches,
        }
    }

    fn host(files: Vec<Check>, unreachable: bool) -> HostStatus {
        HostStatus {
            host: "h".into(),
            server: None,
            server_unreachable: unreachable.then(|| "refused".into()),
            files,
            files_unreachable: None,
        }
    }

    #[test]
    fn exit_codes_for_monitoring() {
        let ok = check(Some(100), Some(true), true);
        assert_eq!(exit_code(&[host(vec![ok.clone()], false)], 30), 0);
        assert_eq!(
            exit_code(&[host(vec![check(Some(29), Some(true), true)], false)], 30),
            2
        );
        assert_eq!(
            exit_code(&[host(vec![check(Some(-1), None, true)], false)], 30),
            2
        );
        assert_eq!(
            exit_code(
                &[host(vec![check(Some(100), Some(false), true)], false)],
                30
            ),
            2
        );
        assert_eq!(
            exit_code(&[host(vec![check(None, None, false)], false)], 30),
            2
        );
        assert_eq!(exit_code(&[host(vec![ok.clone()], true)], 30), 3);
        // Something to fix wins over an unreachable host (DESIGN.md: 3 = unreachable, none failed).
        assert_eq!(
            exit_code(
                &[
                    host(vec![ok], true),
                    host(vec![check(Some(1), None, true)], false)
                ],
                30
            ),
            2
        );
    }

    #[test]
    fn days_round_down_and_go_negative() {
        let now = 1_000_000_000;
        let (d, ts) = dates(Some("2001-09-09T01:46:40Z"), now - 86_400 - 1);
        assert_eq!((d, ts), (Some(1), Some(now)));
        assert_eq!(dates(Some("2001-09-09T01:46:40Z"), now + 1).0, Some(-1));
        assert_eq!(dates(Some("garbage"), now), (None, None));
    }
}
