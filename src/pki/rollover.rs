//! A CA rollover in three phases with an overlapping trust bundle (`playbooks/rotate-ca.yml`),
//! the PKI side of it. The new CA has the old one's subject and a new key (trust.rs says why).
//!
//! 1. A new CA is made (`ca-next.crt`/`.key`) with the link certificate (`ca-link.crt`); `ca.crt`
//!    becomes old CA + new CA, so every copy of it (servers' `ssl_ca_file`, clients' `root.crt`,
//!    the PKI's client bundles) becomes the trust bundle; a published crl.pem gets the new CA's
//!    CRL after the old one's (a server that checks CRLs needs one per CA it trusts).
//! 2. The new CA signs: it is `ca.crt`'s first certificate and `ca.key`; the old CA moves to
//!    `retired/ID/`. Every certificate is then re-issued by what ensures it (`pki_cert`,
//!    `pki_csr` find it issued by another key of the CA's name), server certificates with the link certificate
//!    after them; the replaced ones are not revoked (index.rs, `supersede`).
//! 3. The old CA leaves `ca.crt` and the link certificate is removed (server certificates are
//!    written again without it); the old CA's CRL stays in crl.pem until its last certificate
//!    expires.
//!
//! Between the PKI steps, the playbook brings every holder its files. `rollover.json` records
//! the phase reached: `phase` N with `done: false` once N's PKI step is applied, `done: true` once
//! every holder has N's files ([`RolloverStep::Done`]). A completed rollover (phase 3 done) makes
//! the next one start a new CA. Each PKI step converges: applied again, or after a crash in the
//! middle (every file is written atomically, the record last), it writes what is still missing
//! and nothing else.
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ca::{check_days, inspect_ca, load_ca, load_ca_files, Ca, CaCert, DEFAULT_CA_DAYS};
use super::crl::{crl_stale, refresh_crl};
use super::index::{EntryStatus, Index};
use super::key::{key_matches_spki, parse_private_key_pem, private_key_pem, KeyType};
use super::store::{lock, read_opt, PkiDir, Txn, PRIVATE_MODE, PUBLIC_MODE};
use super::trust;
use super::{now, rfc3339, PkiError, Result};

/// The number of phases.
pub const PHASES: u8 = 3;

/// What one phase does, for messages and the phase plan.
pub fn describe(phase: u8) -> &'static str {
    match phase {
        1 => "a new CA (same name, new key) is made and every trust bundle becomes old CA + new CA",
        2 => "the new CA signs: every server and client certificate is re-issued by it",
        3 => "the old CA leaves every trust bundle (its CRL stays until its last certificate expires)",
        _ => "no such phase",
    }
}

/// One change of the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub phase: u8,
    pub done: bool,
    pub at: String,
}

/// `rollover.json`: the rollover in progress, or the last one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloverState {
    pub version: u32,
    /// The phase reached, 1 to 3.
    pub phase: u8,
    /// True once every holder has the phase's files.
    pub done: bool,
    /// SHA-256 of the certificate of the CA being replaced.
    pub old_ca: String,
    /// SHA-256 of the certificate of the new CA.
    pub new_ca: String,
    pub started_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub history: Vec<Event>,
}

impl RolloverState {
    /// True once phase 3 is done: the next rollover makes a new CA.
    pub fn complete(&self) -> bool {
        self.phase >= PHASES && self.done
    }
}

/// What a call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloverStep {
    /// Say which phases are to do; change nothing.
    Plan,
    /// Apply the PKI side of this phase (if it is the phase to do), or converge it again.
    Start(u8),
    /// Record that every holder has this phase's files.
    Done(u8),
}

/// A rollover call.
#[derive(Clone, Debug)]
pub struct RolloverSpec {
    pub step: RolloverStep,
    /// The last phase this run performs (1 to 3): teams that wait days between phases stop
    /// early and run again later.
    pub stop_after: u8,
    /// Key type of the new CA (default: the old CA's).
    pub key_type: Option<KeyType>,
    /// Lifetime of the new CA, in days (default: the old CA's).
    pub days: Option<u32>,
    /// Seconds the new CA's and the link certificate's notBefore are set back (clock skew).
    pub not_before_margin_s: u32,
}

impl RolloverSpec {
    pub fn new(step: RolloverStep) -> Self {
        RolloverSpec {
            step,
            stop_after: PHASES,
            key_type: None,
            days: None,
            not_before_margin_s: super::DEFAULT_NOT_BEFORE_MARGIN_S,
        }
    }
}

/// What a call found or did. No key material.
#[derive(Clone, Debug, Serialize)]
pub struct RolloverOutcome {
    pub changed: bool,
    /// What was (or, for a plan, would be) done, and why.
    pub reason: Option<String>,
    /// The phase the call is about (`None` for a plan).
    pub phase: Option<u8>,
    /// True when the holders must get this phase's files now (the phase is the one to do and
    /// not beyond `stop_after`).
    pub run: bool,
    /// The phases still to do in this run, in order (none beyond `stop_after`).
    pub todo: Vec<u8>,
    /// The record after the call.
    pub state: Option<RolloverState>,
    /// One line for people: where the rollover stands and what is to do.
    pub summary: String,
    pub warnings: Vec<String>,
}

fn load_state(pki: &PkiDir) -> Result<Option<RolloverState>> {
    let path = pki.rollover();
    match read_opt(&path)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PkiError::BadIndex {
                path,
                why: e.to_string(),
            }),
    }
}

fn save_state(pki: &PkiDir, state: &RolloverState, txn: &mut Txn) -> Result<()> {
    let mut text = serde_json::to_string_pretty(state)
        .map_err(|e| PkiError::Internal(format!("serializing rollover.json: {e}")))?;
    text.push('\n');
    txn.write(&pki.rollover(), text.as_bytes(), PUBLIC_MODE)
}

/// The first phase still to do: the one started, the one after the last done, 1 with no
/// rollover or a completed one.
fn first_todo(state: Option<&RolloverState>) -> u8 {
    match state {
        None => 1,
        Some(s) if s.complete() => 1,
        Some(s) if s.done => s.phase + 1,
        Some(s) => s.phase,
    }
}

/// The phases still to do, up to `stop_after`.
pub fn todo(state: Option<&RolloverState>, stop_after: u8) -> Vec<u8> {
    (first_todo(state)..=stop_after.min(PHASES)).collect()
}

fn where_it_stands(state: Option<&RolloverState>) -> String {
    match state {
        None => "no CA rollover yet".to_string(),
        Some(s) if s.complete() => format!("the last CA rollover is complete ({})", s.updated_at),
        Some(s) if s.done => format!("CA rollover: phase {} of {PHASES} complete", s.phase),
        Some(s) => format!(
            "CA rollover: phase {} of {PHASES} started, not complete (the holders did not all get its files)",
            s.phase
        ),
    }
}

fn summary(state: Option<&RolloverState>, todo: &[u8], stop_after: u8) -> String {
    let stands = where_it_stands(state);
    if todo.is_empty() {
        return format!("{stands}; nothing to do (stops after phase {stop_after})");
    }
    let steps: Vec<String> = todo
        .iter()
        .map(|p| format!("phase {p}: {}", describe(*p)))
        .collect();
    let new = if state.is_none_or(RolloverState::complete) {
        " (a new rollover)"
    } else {
        ""
    };
    format!("{stands}; to do{new}: {}", steps.join("; "))
}

/// The CA whose certificate has SHA-256 `sha`, with its key, wherever the PKI keeps them: the
/// certificate in `ca.crt` (any position), `ca-next.crt` or `retired/ID/ca.crt`, the key in
/// `ca.key`, `ca-next.key` or `retired/ID/ca.key`, whichever matches. So a step cut short
/// between two of its writes (`ca.crt` new, `ca.key` not yet) still finds both CAs.
fn find(pki: &PkiDir, sha: &str) -> Result<Option<Ca>> {
    let retired = pki.retired(sha);
    let mut found: Option<(super::ca::CaCert, std::path::PathBuf)> = trust::bundle(pki)?
        .into_iter()
        .find(|c| c.sha256 == sha)
        .map(|c| (c, pki.ca_cert()));
    for path in [pki.ca_next_cert(), retired.join("ca.crt")] {
        if found.is_some() {
            break;
        }
        if let Some(bytes) = read_opt(&path)? {
            if let Ok(der) = super::ca::decode_cert(&bytes) {
                let c = inspect_ca(&der, &path)?;
                if c.sha256 == sha {
                    found = Some((c, path));
                }
            }
        }
    }
    let Some((cert, cert_path)) = found else {
        return Ok(None);
    };
    let Some(x509) = super::ca::parse_der(&cert.der) else {
        return Ok(None);
    };
    for key_path in [pki.ca_key(), pki.ca_next_key(), retired.join("ca.key")] {
        let Some(bytes) = read_opt(&key_path)? else {
            continue;
        };
        if let Ok(key) = parse_private_key_pem(&String::from_utf8_lossy(&bytes)) {
            if key_matches_spki(&key, x509.public_key()) {
                return Ok(Some(Ca {
                    cert,
                    key,
                    cert_path,
                }));
            }
        }
    }
    Ok(None)
}

/// The old and new CA of the recorded rollover.
fn pair(pki: &PkiDir, state: &RolloverState) -> Result<(Ca, Ca)> {
    let lost = |which: &str, sha: &str| {
        PkiError::BadCaFile {
        path: pki.rollover(),
        why: format!(
            "the {which} CA of the rollover (sha256 {sha}) is neither ca.crt, ca-next.crt nor under retired/: restore it from a backup"
        ),
    }
    };
    let old = find(pki, &state.old_ca)?.ok_or_else(|| lost("old", &state.old_ca))?;
    let new = find(pki, &state.new_ca)?.ok_or_else(|| lost("new", &state.new_ca))?;
    Ok((old, new))
}

/// Where the writes of a step go: a transaction, or nowhere (a plan: only what would change is
/// collected).
enum Sink<'a> {
    Write(&'a mut Txn),
    Dry,
}

impl Sink<'_> {
    fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        match self {
            Sink::Write(txn) => txn.write(path, bytes, mode),
            Sink::Dry => Ok(()),
        }
    }
    fn remove(&mut self, path: &Path) -> Result<()> {
        match self {
            Sink::Write(txn) => txn.remove(path),
            Sink::Dry => Ok(()),
        }
    }
    fn mkdir(&mut self, path: &Path) -> Result<()> {
        match self {
            Sink::Write(txn) => txn.create_dir_all(path),
            Sink::Dry => Ok(()),
        }
    }
}

fn name(p: &Path, pki: &PkiDir) -> String {
    p.strip_prefix(pki.root())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// True when `path` holds the private key of `ca`.
fn key_ok(path: &Path, ca: &Ca) -> Result<bool> {
    let Some(bytes) = read_opt(path)? else {
        return Ok(false);
    };
    let Some(x509) = super::ca::parse_der(&ca.cert.der) else {
        return Ok(false);
    };
    Ok(parse_private_key_pem(&String::from_utf8_lossy(&bytes))
        .is_ok_and(|k| key_matches_spki(&k, x509.public_key())))
}

/// True when `ca-link.crt` is a link from `old` to `new`.
fn link_ok(pki: &PkiDir, old: &Ca, new: &Ca) -> Result<bool> {
    let Some(bytes) = read_opt(&pki.ca_link())? else {
        return Ok(false);
    };
    let (Ok(der), Some(old_x), Some(new_x)) = (
        super::ca::decode_cert(&bytes),
        super::ca::parse_der(&old.cert.der),
        super::ca::parse_der(&new.cert.der),
    ) else {
        return Ok(false);
    };
    let Some(link) = super::ca::parse_der(&der) else {
        return Ok(false);
    };
    Ok(link.public_key().raw == new_x.public_key().raw
        && link.verify_signature(Some(old_x.public_key())).is_ok())
}

/// Brings the PKI directory to what phase `phase` (1 to 3) wants for the CAs `old` and `new`,
/// writing only what differs. Returns what it wrote (or would write), in words.
fn converge(
    pki: &PkiDir,
    (phase, margin_s): (u8, u32),
    (old, new): (&Ca, &Ca),
    index: &mut Index,
    now: OffsetDateTime,
    sink: &mut Sink<'_>,
) -> Result<Vec<String>> {
    let mut did: Vec<String> = Vec::new();
    let put = |sink: &mut Sink<'_>,
               did: &mut Vec<String>,
               path: &Path,
               bytes: &[u8],
               mode: u32,
               why: &str| {
        if read_opt(path)?.as_deref() != Some(bytes) {
            sink.write(path, bytes, mode)?;
            did.push(format!("{} {why}", name(path, pki)));
        }
        Ok::<(), PkiError>(())
    };
    let (signing, bundle) = match phase {
        1 => (old, trust::bundle_pem(&[&old.cert, &new.cert])),
        2 => (new, trust::bundle_pem(&[&new.cert, &old.cert])),
        _ => (new, trust::bundle_pem(&[&new.cert])),
    };
    if phase >= 2 {
        let dir = pki.retired(&old.cert.sha256);
        if std::fs::symlink_metadata(&dir).is_err() {
            sink.mkdir(&dir)?;
        }
        put(
            sink,
            &mut did,
            &dir.join("ca.crt"),
            old.cert.pem.as_bytes(),
            PUBLIC_MODE,
            "(the old CA, kept to sign its CRL)",
        )?;
        if !key_ok(&dir.join("ca.key"), old)? {
            put(
                sink,
                &mut did,
                &dir.join("ca.key"),
                private_key_pem(&old.key).as_bytes(),
                PRIVATE_MODE,
                "(the old CA's key)",
            )?;
        }
    }
    let what = match phase {
        1 => "(old CA + new CA: the trust bundle)",
        2 => "(new CA, signing, + old CA)",
        _ => "(the new CA alone)",
    };
    put(
        sink,
        &mut did,
        &pki.ca_cert(),
        bundle.as_bytes(),
        PUBLIC_MODE,
        what,
    )?;
    if !key_ok(&pki.ca_key(), signing)? {
        put(
            sink,
            &mut did,
            &pki.ca_key(),
            private_key_pem(&signing.key).as_bytes(),
            PRIVATE_MODE,
            "(the signing CA's key)",
        )?;
    }
    if phase == 1 {
        put(
            sink,
            &mut did,
            &pki.ca_next_cert(),
            new.cert.pem.as_bytes(),
            PUBLIC_MODE,
            "(the new CA)",
        )?;
        if !key_ok(&pki.ca_next_key(), new)? {
            put(
                sink,
                &mut did,
                &pki.ca_next_key(),
                private_key_pem(&new.key).as_bytes(),
                PRIVATE_MODE,
                "(the new CA's key)",
            )?;
        }
    }
    if phase <= 2 && !link_ok(pki, old, new)? {
        if let Some(der) = trust::link(old, &new.cert, now, margin_s)? {
            put(
                sink,
                &mut did,
                &pki.ca_link(),
                super::ca::pem_encode("CERTIFICATE", &der).as_bytes(),
                PUBLIC_MODE,
                "(the link certificate: the new CA's key certified by the old CA)",
            )?;
        }
    }
    if phase == 3 && std::fs::symlink_metadata(pki.ca_link()).is_ok() {
        sink.remove(&pki.ca_link())?;
        did.push("ca-link.crt removed".into());
    }
    // The entries written before rollovers existed say no CA: the old one signed them.
    if phase >= 2 {
        let before = index.clone();
        for e in index.certs.iter_mut().filter(|e| e.ca.is_none()) {
            e.ca = Some(old.cert.sha256.clone());
        }
        index.ca = Some(new.cert.record(false));
        if *index != before {
            did.push("index.json (the new CA; the certificates the old one signed)".into());
        }
    }
    match sink {
        Sink::Write(txn) => {
            if let Some(why) = refresh_crl(pki, signing, index, now, txn)? {
                did.push(format!("crl.pem ({why})"));
            }
        }
        Sink::Dry => {
            if let Some(why) = crl_stale(pki, signing, index, now)? {
                did.push(format!("crl.pem ({why})"));
            }
        }
    }
    // Last: once the new CA signs, its `ca-next` copy goes.
    if phase >= 2 {
        for p in [pki.ca_next_cert(), pki.ca_next_key()] {
            if std::fs::symlink_metadata(&p).is_ok() {
                sink.remove(&p)?;
                did.push(format!("{} removed (the new CA signs now)", name(&p, pki)));
            }
        }
    }
    Ok(did)
}

/// The new CA of a rollover that starts: `ca-next.*` when a crash left them (same subject as the
/// signing CA), else a new key and certificate (`None` in a plan).
fn next_ca(
    pki: &PkiDir,
    old: &Ca,
    spec: &RolloverSpec,
    now: OffsetDateTime,
    make: bool,
) -> Result<Option<Ca>> {
    if std::fs::symlink_metadata(pki.ca_next_cert()).is_ok() {
        if let Ok(ca) = load_ca_files(&pki.ca_next_cert(), &pki.ca_next_key()) {
            if ca.cert.subject_attrs == old.cert.subject_attrs && ca.cert.sha256 != old.cert.sha256
            {
                return Ok(Some(ca));
            }
        }
    }
    if !make {
        return Ok(None);
    }
    let key_type = match spec.key_type.or(old.cert.key_type_enum) {
        Some(k) => k,
        None => {
            return Err(PkiError::InvalidArgument(format!(
            "the CA's key ({}) is of a type castellan does not make: give the new CA's key type",
            old.cert.key_type
        )))
        }
    };
    let days = match spec.days {
        Some(d) => d,
        None => lifetime(&old.cert),
    };
    let key = key_type.generate()?;
    let der = trust::successor(
        &old.cert,
        &key,
        (days, spec.not_before_margin_s),
        now,
        &pki.ca_next_cert(),
    )?;
    let cert = inspect_ca(&der, &pki.ca_next_cert())?;
    Ok(Some(Ca {
        cert,
        key,
        cert_path: pki.ca_next_cert(),
    }))
}

/// A CA certificate's lifetime in whole days (the default lifetime of its successor).
fn lifetime(ca: &CaCert) -> u32 {
    super::ca::parse_der(&ca.der)
        .map(|x| {
            (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86_400
        })
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| check_days(*d, "days").is_ok())
        .unwrap_or(DEFAULT_CA_DAYS)
}

fn check(spec: &RolloverSpec) -> Result<()> {
    let bad = |p: u8| p == 0 || p > PHASES;
    if bad(spec.stop_after) {
        return Err(PkiError::InvalidArgument(format!(
            "stop_after must be 1, 2 or 3, not {}",
            spec.stop_after
        )));
    }
    match spec.step {
        RolloverStep::Start(p) | RolloverStep::Done(p) if bad(p) => Err(PkiError::InvalidArgument(
            format!("phase must be 1, 2 or 3, not {p}"),
        )),
        _ => {
            super::validate_not_before_margin(spec.not_before_margin_s)?;
            spec.days.map_or(Ok(()), |d| check_days(d, "--days"))
        }
    }
}

/// The names whose current certificate the old CA still signs (after phase 2 they should be
/// none: a name no holder ensured in this run, a host left out with --limit...).
fn still_old(index: &Index, old: &str, new: &str, now: OffsetDateTime) -> Vec<String> {
    let mut names: Vec<String> = index
        .certs
        .iter()
        .filter(|e| e.status == EntryStatus::Valid && !e.expired(now) && e.issued_by(old, new))
        .map(|e| format!("{} {}", e.kind, e.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn run(dir: &Path, spec: &RolloverSpec, write: bool) -> Result<RolloverOutcome> {
    check(spec)?;
    let pki = PkiDir::new(dir);
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let now = now()?;
    let state = load_state(&pki)?;
    let mut index = Index::load(&pki)?;
    let first = first_todo(state.as_ref());
    let mut out = RolloverOutcome {
        changed: false,
        reason: None,
        phase: None,
        run: false,
        todo: todo(state.as_ref(), spec.stop_after),
        state: state.clone(),
        summary: summary(
            state.as_ref(),
            &todo(state.as_ref(), spec.stop_after),
            spec.stop_after,
        ),
        warnings: Vec::new(),
    };
    let stamp = rfc3339(now);
    let mut txn = Txn::new();
    let mut new_state = state.clone();
    match spec.step {
        RolloverStep::Plan => return Ok(out),
        RolloverStep::Done(p) => {
            out.phase = Some(p);
            match &state {
                Some(s) if s.phase == p && !s.done => {
                    if p == 2 {
                        let left = still_old(&index, &s.old_ca, &s.new_ca, now);
                        if !left.is_empty() {
                            out.warnings.push(format!(
                                "still signed by the old CA (they stop being trusted in phase 3): {}",
                                left.join(", ")
                            ));
                        }
                    }
                    let mut s = s.clone();
                    s.done = true;
                    s.updated_at = stamp.clone();
                    s.history.push(Event {
                        phase: p,
                        done: true,
                        at: stamp.clone(),
                    });
                    out.reason = Some(format!("phase {p} complete: every holder has its files"));
                    new_state = Some(s);
                }
                _ => return Ok(out),
            }
        }
        RolloverStep::Start(p) => {
            out.phase = Some(p);
            if p != first || p > spec.stop_after {
                out.reason = None;
                return Ok(out);
            }
            out.run = true;
            let started = state.as_ref().is_some_and(|s| s.phase == p && !s.done);
            let (old, new) = if started || p > 1 {
                let s = state.as_ref().ok_or_else(|| {
                    PkiError::Internal("a rollover phase after 1 without a record".into())
                })?;
                pair(&pki, s)?
            } else {
                let old = load_ca(&pki)?;
                match next_ca(&pki, &old, spec, now, write)? {
                    Some(new) => (old, new),
                    None => {
                        // A plan of a new rollover: the CA to make does not exist yet.
                        out.reason = Some(format!("phase 1: {}", describe(1)));
                        out.changed = true;
                        return Ok(out);
                    }
                }
            };
            let did = {
                let mut sink = if write {
                    Sink::Write(&mut txn)
                } else {
                    Sink::Dry
                };
                converge(
                    &pki,
                    (p, spec.not_before_margin_s),
                    (&old, &new),
                    &mut index,
                    now,
                    &mut sink,
                )?
            };
            if !started {
                let mut s = match (&state, p) {
                    (Some(s), 2 | 3) => s.clone(),
                    _ => RolloverState {
                        version: 1,
                        phase: 1,
                        done: false,
                        old_ca: old.cert.sha256.clone(),
                        new_ca: new.cert.sha256.clone(),
                        started_at: stamp.clone(),
                        updated_at: stamp.clone(),
                        history: Vec::new(),
                    },
                };
                s.phase = p;
                s.done = false;
                s.updated_at = stamp.clone();
                s.history.push(Event {
                    phase: p,
                    done: false,
                    at: stamp.clone(),
                });
                new_state = Some(s);
                out.reason = Some(format!("phase {p}: {}", describe(p)));
            } else if !did.is_empty() {
                out.reason = Some(format!("phase {p} again: {}", did.join("; ")));
            }
            if !did.is_empty() {
                let detail = did.join("; ");
                out.reason = out.reason.map(|r| {
                    if r.contains(&detail) {
                        r
                    } else {
                        format!("{r} ({detail})")
                    }
                });
            }
        }
    }
    out.changed = out.reason.is_some();
    if !out.changed {
        return Ok(out);
    }
    if write {
        if index != Index::load(&pki)? {
            index.version = 1;
            index.save(&pki, &mut txn)?;
        }
        if let Some(s) = &new_state {
            save_state(&pki, s, &mut txn)?;
        }
        txn.commit();
    }
    out.todo = todo(new_state.as_ref(), spec.stop_after);
    if write {
        out.state = new_state.clone();
    }
    out.summary = summary(new_state.as_ref(), &out.todo, spec.stop_after);
    Ok(out)
}

/// Does what `spec` says: reports (plan), applies the PKI side of a phase, or records a phase
/// complete. Idempotent; see the module documentation.
pub fn ensure_rollover(dir: &Path, spec: &RolloverSpec) -> Result<RolloverOutcome> {
    run(dir, spec, true)
}

/// Says what [`ensure_rollover`] would do, failing where it would fail, writing nothing.
pub fn plan_rollover(dir: &Path, spec: &RolloverSpec) -> Result<RolloverOutcome> {
    if std::fs::symlink_metadata(PkiDir::new(dir).ca_cert()).is_err() {
        check(spec)?;
        let todo = todo(None, spec.stop_after);
        return Ok(RolloverOutcome {
            changed: matches!(spec.step, RolloverStep::Start(1)),
            reason: matches!(spec.step, RolloverStep::Start(1))
                .then(|| format!("phase 1: {} (there is no CA yet)", describe(1))),
            phase: match spec.step {
                RolloverStep::Start(p) | RolloverStep::Done(p) => Some(p),
                RolloverStep::Plan => None,
            },
            run: matches!(spec.step, RolloverStep::Start(1)),
            summary: summary(None, &todo, spec.stop_after),
            todo,
            state: None,
            warnings: Vec::new(),
        });
    }
    run(dir, spec, false)
}

/// The record, as `pki list` shows it (`None` without a rollover).
pub fn state(dir: &Path) -> Result<Option<RolloverState>> {
    load_state(&PkiDir::new(dir))
}
