//! Shared by the secret tests: a scanner that looks for any rendering of secret material in
//! captured output (stdout, stderr, JSON reports, state files, process tables).
//!
//! What counts as a leak:
//! - of a DER key: any 8-byte window, raw, in hex (lower, upper, colon-separated), in base64 at
//!   each of the three byte alignments (11-character windows, 66 bits), or decoded lossily as
//!   UTF-8 (8-character windows with at least 4 real characters);
//! - of a PEM key: any 16-character window of a line of its base64 body (and its DER, as above);
//! - of a literal (a `no_log` value): the value itself.
//!
//! Windows that also occur in public material (the certificates, which carry the public key and
//! the algorithm identifiers that the private key repeats) are not secret and are left out.
#![allow(dead_code)]
pub mod ps;

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A rendering of bytes that a leak could take, and its window length in rendered bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Raw,
    HexLower,
    HexUpper,
    HexColon,
    Base64,
    Lossy,
    PemLine,
    Literal,
}

pub const DER_KINDS: [Kind; 6] = [
    Kind::Raw,
    Kind::HexLower,
    Kind::HexUpper,
    Kind::HexColon,
    Kind::Base64,
    Kind::Lossy,
];

fn windows_of(s: &[u8], len: usize) -> impl Iterator<Item = &[u8]> {
    s.windows(len.max(1)).filter(move |_| s.len() >= len)
}

/// Every window of the given kind in `data`, as rendered bytes.
fn rendered_windows(kind: Kind, data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match kind {
        Kind::Raw => out.extend(windows_of(data, 8).map(<[u8]>::to_vec)),
        Kind::HexLower => out.extend(windows_of(data, 8).map(|w| hex::encode(w).into_bytes())),
        Kind::HexUpper => {
            out.extend(windows_of(data, 8).map(|w| hex::encode_upper(w).into_bytes()))
        }
        Kind::HexColon => out.extend(windows_of(data, 8).map(|w| {
            w.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
                .into_bytes()
        })),
        Kind::Base64 => {
            for a in 0..3.min(data.len()) {
                let s = B64.encode(&data[a..]);
                // The last 4 characters depend on padding, not only on the data.
                let body = &s.as_bytes()[..s.len().saturating_sub(4)];
                out.extend(windows_of(body, 11).map(<[u8]>::to_vec));
            }
        }
        Kind::Lossy => {
            let s = String::from_utf8_lossy(data);
            let chars: Vec<char> = s.chars().collect();
            for w in chars.windows(8) {
                let real = w
                    .iter()
                    .filter(|c| **c != char::REPLACEMENT_CHARACTER)
                    .count();
                if real >= 4 {
                    out.push(w.iter().collect::<String>().into_bytes());
                }
            }
        }
        Kind::PemLine | Kind::Literal => {}
    }
    out
}

/// The base64 body lines of a PEM text (between BEGIN and END lines).
pub fn pem_body_lines(pem: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for l in pem.lines() {
        let l = l.trim();
        if l.starts_with("-----BEGIN") {
            inside = true;
        } else if l.starts_with("-----END") {
            inside = false;
        } else if inside && !l.is_empty() && !l.contains(':') {
            lines.push(l.to_string());
        }
    }
    lines
}

/// The DER of the first PEM block of a text.
pub fn pem_der(pem: &str) -> Vec<u8> {
    B64.decode(pem_body_lines(pem).concat()).unwrap_or_default()
}

#[derive(Default)]
pub struct Needles {
    /// Window length -> windows (rendered bytes) -> (kind, secret name).
    by_len: BTreeMap<usize, HashMap<Vec<u8>, (Kind, String)>>,
    /// Public windows per kind, left out of the needles.
    public: HashMap<Kind, HashSet<Vec<u8>>>,
    /// Needles per kind.
    pub per_kind: BTreeMap<Kind, usize>,
    /// Windows dropped because public material has them too.
    pub public_overlap: usize,
}

/// One hit: which secret, how rendered, where.
#[derive(Debug, Clone)]
pub struct Hit {
    pub secret: String,
    pub kind: Kind,
    pub source: String,
    pub context: String,
}

impl Needles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Public material (a certificate's DER or PEM text, a CRL): windows found in it are not secret.
    pub fn add_public(&mut self, data: &[u8]) {
        let der = match std::str::from_utf8(data) {
            Ok(t) if t.contains("-----BEGIN") => {
                // Every block of the file.
                let mut all = Vec::new();
                for block in t.split("-----END").filter(|b| b.contains("-----BEGIN")) {
                    all.push(pem_der(&format!("{block}-----END")));
                }
                all
            }
            _ => vec![data.to_vec()],
        };
        for d in der {
            for k in DER_KINDS {
                let set = self.public.entry(k).or_default();
                set.extend(rendered_windows(k, &d));
            }
            let pem_set = self.public.entry(Kind::PemLine).or_default();
            for a in 0..3.min(d.len()) {
                let s = B64.encode(&d[a..]);
                pem_set.extend(windows_of(s.as_bytes(), 16).map(<[u8]>::to_vec));
            }
        }
    }

    fn insert(&mut self, kind: Kind, name: &str, w: Vec<u8>) {
        if self
            .public
            .get(&kind)
            .is_some_and(|p| p.contains(w.as_slice()))
        {
            self.public_overlap += 1;
            return;
        }
        let slot = self.by_len.entry(w.len()).or_default();
        if let std::collections::hash_map::Entry::Vacant(e) = slot.entry(w) {
            *self.per_kind.entry(kind).or_default() += 1;
            e.insert((kind, name.to_string()));
        }
    }

    /// A DER private key (or any binary secret): its 8-byte windows in every rendering.
    pub fn add_der(&mut self, name: &str, der: &[u8]) {
        for k in DER_KINDS {
            for w in rendered_windows(k, der) {
                self.insert(k, name, w);
            }
        }
    }

    /// A PEM private key: 16-character windows of each body line, and its DER.
    pub fn add_pem(&mut self, name: &str, pem: &str) {
        for line in pem_body_lines(pem) {
            for w in windows_of(line.as_bytes(), 16) {
                self.insert(Kind::PemLine, name, w.to_vec());
            }
        }
        let der = pem_der(pem);
        assert!(!der.is_empty(), "{name}: not a PEM text");
        self.add_der(name, &der);
    }

    /// A literal secret (a `no_log` value).
    pub fn add_literal(&mut self, name: &str, value: &str) {
        assert!(value.len() >= 8, "a literal needle must be distinctive");
        self.insert(Kind::Literal, name, value.as_bytes().to_vec());
    }

    pub fn count(&self) -> usize {
        self.by_len.values().map(HashMap::len).sum()
    }

    /// Every hit in `data` (at most 20 reported per source).
    pub fn scan(&self, source: &str, data: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        for (len, set) in &self.by_len {
            if data.len() < *len {
                continue;
            }
            for (i, w) in data.windows(*len).enumerate() {
                if let Some((kind, name)) = set.get(w) {
                    let from = i.saturating_sub(40);
                    let to = (i + len + 40).min(data.len());
                    hits.push(Hit {
                        secret: name.clone(),
                        kind: *kind,
                        source: source.to_string(),
                        context: String::from_utf8_lossy(&data[from..to]).into_owned(),
                    });
                    if hits.len() >= 20 {
                        return hits;
                    }
                }
            }
        }
        hits
    }

    /// Scan a capture as it is and, when it is JSON, every string in it decoded (so that
    /// `\u0002` escapes of a lossily decoded key are seen as the characters they are).
    pub fn scan_capture(&self, source: &str, data: &[u8]) -> Vec<Hit> {
        let mut hits = self.scan(source, data);
        for (i, doc) in serde_json::Deserializer::from_slice(data)
            .into_iter::<serde_json::Value>()
            .enumerate()
        {
            let Ok(doc) = doc else { break };
            let mut strings = Vec::new();
            collect_strings(&doc, &mut strings);
            hits.extend(self.scan(
                &format!("{source} (JSON document {i}, strings decoded)"),
                strings.join("\n").as_bytes(),
            ));
        }
        hits
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                out.push(k.clone());
                collect_strings(x, out);
            }
        }
        _ => {}
    }
}

/// Renderings of `der[from..from + len]` as a leak would print them, one per kind.
pub fn planted(der: &[u8], from: usize, len: usize) -> Vec<(Kind, Vec<u8>)> {
    let part = &der[from..from + len];
    vec![
        (Kind::Raw, part.to_vec()),
        (Kind::HexLower, hex::encode(part).into_bytes()),
        (Kind::HexUpper, hex::encode_upper(part).into_bytes()),
        (
            Kind::HexColon,
            part.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
                .into_bytes(),
        ),
        (Kind::Base64, B64.encode(part).into_bytes()),
        (
            Kind::Lossy,
            String::from_utf8_lossy(part).into_owned().into_bytes(),
        ),
    ]
}

/// The scanner's own check: every rendering of a stretch from the middle of `der` (where the
/// private scalar or exponent lives), planted in noise, is found; so is the stretch inside a
/// JSON document (decoded lossily and escaped, as the old reports printed keys); and the
/// public material alone gives no hit. Returns the number of planted leaks found.
pub fn self_check(needles: &Needles, name: &str, der: &[u8], public: &[Vec<u8>]) -> usize {
    assert!(der.len() >= 48, "{name}: too short for the self-check");
    let from = der.len() / 2 - 12;
    let mut hays: Vec<(String, Vec<u8>)> = planted(der, from, 24)
        .into_iter()
        .map(|(kind, r)| {
            let mut hay = b"noise before: ".to_vec();
            hay.extend_from_slice(&r);
            hay.extend_from_slice(b" :noise after\n");
            (format!("{kind:?}"), hay)
        })
        .collect();
    let doc = serde_json::json!({"diff": String::from_utf8_lossy(&der[from..from + 24])});
    hays.push(("JSON".into(), serde_json::to_vec(&doc).unwrap_or_default()));
    let mut found = 0;
    for (what, hay) in &hays {
        let hits = needles.scan_capture("planted", hay);
        // The same bytes may be registered under another name (a PEM key and its DER).
        assert!(
            !hits.is_empty(),
            "{name}: the scanner missed a planted {what} leak: {}",
            String::from_utf8_lossy(hay)
        );
        found += 1;
    }
    for (i, p) in public.iter().enumerate() {
        let hits = needles.scan_capture("public", p);
        assert!(
            hits.is_empty(),
            "public file {i} gives false hits: {:?}",
            &hits[..hits.len().min(3)]
        );
    }
    found
}
