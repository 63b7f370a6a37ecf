//! Reading certificate files on a host: one POSIX `sh` script for all of a host's files (one
//! round trip), and its output parsed here.
//!
//! The script opens only the paths it is given (checked in `targets.rs`: never a key file's
//! name), reads at most [`MAX_BYTES`] of each, and sends back only the lines of its PEM
//! `CERTIFICATE` blocks (the markers and base64 lines between them): whatever else a file holds
//! never leaves the host.
use std::fmt::Write as _;

use crate::connection::quote::quote_str;
use crate::postgres::verify::CertInfo;

/// The most read of one file.
pub const MAX_BYTES: usize = 1 << 20;

const MARK: &str = "@@castellan-cert-file";

/// The script that reads `paths` (each quoted as one shell word).
pub fn script(paths: &[&str]) -> Result<String, String> {
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL\n\
         r() {\n\
         \tif [ ! -e \"$2\" ]; then echo \"@@castellan-cert-file $1 missing\"\n\
         \telif [ ! -f \"$2\" ]; then echo \"@@castellan-cert-file $1 not-a-file\"\n\
         \telif [ ! -r \"$2\" ]; then echo \"@@castellan-cert-file $1 unreadable\"\n\
         \telse\n\
         \t\techo \"@@castellan-cert-file $1 ok\"\n",
    );
    let _ = writeln!(
        s,
        "\t\thead -c {MAX_BYTES} -- \"$2\" | tr -d '\\r' | sed -n \
         '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/{{\n\
         /^-----BEGIN CERTIFICATE-----$/p\n\
         /^-----END CERTIFICATE-----$/p\n\
         \\,^[A-Za-z0-9+/=][A-Za-z0-9+/=]*$,p\n\
         }}'"
    );
    s.push_str("\tfi\n}\n");
    for (i, p) in paths.iter().enumerate() {
        let q = quote_str(p).map_err(|e| format!("{p:?}: {e}"))?;
        let _ = writeln!(s, "r {i} {q}");
    }
    Ok(s)
}

/// What the host said about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRead {
    /// The first certificate of the file (the leaf), and how many certificates it holds.
    Cert { info: CertInfo, count: usize },
    /// Why there is no certificate to show.
    Problem(String),
}

/// The script's output: one [`FileRead`] per path, in order.
pub fn parse(stdout: &[u8], n: usize) -> Vec<FileRead> {
    let text = String::from_utf8_lossy(stdout);
    let mut blocks: Vec<Option<(String, String)>> = vec![None; n];
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            let mut words = rest.split_whitespace();
            let idx = words.next().and_then(|w| w.parse::<usize>().ok());
            let status = words.next().unwrap_or_default().to_string();
            current = idx.filter(|i| *i < n);
            if let Some(i) = current {
                blocks[i] = Some((status, String::new()));
            }
            continue;
        }
        if let Some(Some((_, body))) = current.map(|i| &mut blocks[i]) {
            body.push_str(line);
            body.push('\n');
        }
    }
    blocks
        .into_iter()
        .map(|b| match b {
            None => FileRead::Problem("the host did not report on this file".into()),
            Some((status, body)) => match status.as_str() {
                "ok" => certificates(&body),
                "missing" => FileRead::Problem("no such file".into()),
                "not-a-file" => FileRead::Problem("not a regular file".into()),
                "unreadable" => FileRead::Problem("not readable by the connecting user".into()),
                other => FileRead::Problem(format!("unexpected answer {other:?}")),
            },
        })
        .collect()
}

/// The certificates in PEM text: the first one described, all counted.
fn certificates(body: &str) -> FileRead {
    let mut ders = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(body.as_bytes()) {
        match pem {
            Ok(p) if p.label == "CERTIFICATE" => ders.push(p.contents),
            Ok(_) => {}
            Err(_) => return FileRead::Problem("a damaged PEM certificate block".into()),
        }
    }
    let Some(first) = ders.first() else {
        return FileRead::Problem("no PEM certificate in the file".into());
    };
    if x509_parser::parse_x509_certificate(first).is_err() {
        return FileRead::Problem("its PEM CERTIFICATE block is not an X.509 certificate".into());
    }
    FileRead::Cert {
        info: CertInfo::from_der(first),
        count: ders.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn cert_pem(cn: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn run(script: &str) -> Vec<u8> {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The real script under `sh`, against files of every kind: only certificate lines come
    /// back, and each file gets its verdict.
    #[test]
    fn the_script_sends_certificate_lines_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let a = cert_pem("a.example");
        let b = cert_pem("b.example");
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        // A chain with CRLF line ends, a key in the middle and text around.
        let mixed = format!("intro\r\n{}{key}{}trailer\n", a.replace('\n', "\r\n"), b);
        std::fs::write(d.join("chain.crt"), &mixed).unwrap();
        std::fs::write(d.join("only-key.crt"), &key).unwrap();
        std::fs::create_dir(d.join("dir.crt")).unwrap();
        let weird = d.join("it's $(x) a.crt");
        std::fs::write(&weird, &a).unwrap();
        let paths: Vec<String> = vec![
            d.join("chain.crt").display().to_string(),
            d.join("only-key.crt").display().to_string(),
            d.join("missing.crt").display().to_string(),
            d.join("dir.crt").display().to_string(),
            weird.display().to_string(),
        ];
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let out = run(&script(&refs).unwrap());
        let text = String::from_utf8_lossy(&out);
        let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for l in &key_body {
            assert!(!text.contains(l), "a key line left the host: {l}");
        }
        assert!(!text.contains("intro") && !text.contains("trailer") && !text.contains("PRIVATE"));
        let reads = parse(&out, paths.len());
        match &reads[0] {
            FileRead::Cert { info, count } => {
                assert_eq!(*count, 2);
                assert!(info.subject.contains("rcgen"), "{info:?}");
                assert_eq!(info.sans, vec!["DNS:a.example".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            reads[1],
            FileRead::Problem("no PEM certificate in the file".into())
        );
        assert_eq!(reads[2], FileRead::Problem("no such file".into()));
        assert_eq!(reads[3], FileRead::Problem("not a regular file".into()));
        assert!(matches!(&reads[4], FileRead::Cert { count: 1, .. }));
    }

    #[test]
    fn a_missing_answer_is_a_problem_not_a_panic() {
        let reads = parse(
            b"@@castellan-cert-file 7 ok\n@@castellan-cert-file 0 weird\n",
            2,
        );
        assert_eq!(
            reads[0],
            FileRead::Problem("unexpected answer \"weird\"".into())
        );
        assert_eq!(
            reads[1],
            FileRead::Problem("the host did not report on this file".into())
        );
    }
}
