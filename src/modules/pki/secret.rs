//! `secret`: a random secret made once on the control node and the same on every later run (a
//! session key such as CAP's `SECRET_KEY`, a password for a service account); `rotate: true`
//! replaces it. Ansible users know this as `lookup('password', 'credentials/NAME
//! length=N chars=...')`; here it is a task whose result holds the value.
//!
//! Stored in `path`, or `{{ inventory_dir }}/secrets/NAME` (directory 0700, file 0600, written
//! atomically). When a vault password was given (`--vault-password-file`...), the file is
//! encrypted with the first one as `ansible-vault encrypt` does, so it can be committed and
//! `ansible-vault view` shows it; otherwise it holds the value on one line. A file written by
//! Ansible's `password` lookup (`VALUE salt=...`) is read too.
//!
//! Registers `secret` (the value: a secret, masked wherever castellan prints, see
//! `report::secret`), `path`, `encrypted`, and `reason` (`created`, `rotated`, `mode`) when it
//! changed something. The plan only reads: a new value is drawn in the plan but stored by the
//! deferred action, so check mode creates nothing. Several hosts running the task in one run get
//! one value: the first host's store wins and the others adopt it (also across processes: the
//! directory is locked while storing).
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::{blocking, path_value};
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan,
};
use crate::pki::{self, store, PkiError};
use crate::template::is_template;
use crate::vault::{self, keyring, revealed, Secret};

pub struct SecretModule;

/// The mode of the stored file.
const FILE_MODE: u32 = 0o600;
/// Most random bytes a secret may have.
const MAX_BYTES: i64 = 4096;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::Str),
    Arg::new("path", Kind::Str),
    Arg::new("bytes", Kind::Int).range(1, MAX_BYTES),
    Arg::new("format", Kind::Str).choices(&["hex", "base64"]),
    Arg::new("rotate", Kind::Bool),
];

/// The values this process stored, by file: hosts that run the task later in the run (or at
/// the same time) adopt them rather than draw their own.
static STORED: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

fn stored(path: &Path) -> Option<String> {
    let g = STORED.lock().unwrap_or_else(|e| e.into_inner());
    g.as_ref().and_then(|m| m.get(path).cloned())
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "argument `name` must be letters, digits, `-`, `_` and `.` (not first), got `{name}`"
        ))
    }
}

fn var_str(ctx: &ModuleCtx<'_>, name: &str) -> Option<String> {
    match ctx.vars.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The file: `path` (relative to the playbook's directory), else `{{ inventory_dir }}/secrets/NAME`.
fn file_of(ctx: &ModuleCtx<'_>, args: &Args) -> Result<PathBuf, String> {
    if let Some(p) = args.string("path").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            return Ok(p);
        }
        return Ok(match var_str(ctx, "playbook_dir") {
            Some(base) => Path::new(&base).join(p),
            None => p,
        });
    }
    let name = args.req("name")?;
    check_name(&name)?;
    let dir = var_str(ctx, "inventory_dir").ok_or_else(|| {
        "the host has no `inventory_dir` to keep the secret under: give `path`".to_string()
    })?;
    Ok(Path::new(&dir).join("secrets").join(name))
}

/// How the random bytes are written.
#[derive(Debug, Clone, Copy)]
enum Format {
    Hex,
    Base64,
}

fn draw(bytes: usize, format: Format) -> Result<String, String> {
    let mut b = vec![0u8; bytes];
    crate::entropy::fill(&mut b)?;
    Ok(match format {
        Format::Hex => hex::encode(&b),
        Format::Base64 => base64::engine::general_purpose::STANDARD.encode(&b),
    })
}

/// The stored value of a file's content: vault-encrypted or not, one line, Ansible's
/// ` salt=...` suffix dropped.
fn value_of(content: &[u8], path: &Path) -> Result<(String, bool), String> {
    let encrypted = vault::is_vault(content);
    let plain = if encrypted {
        vault::decrypt(&String::from_utf8_lossy(content))
            .map_err(|e| format!("cannot read the secret in {}: {e}", path.display()))?
    } else {
        content.to_vec()
    };
    let text = String::from_utf8(plain)
        .map_err(|_| format!("the secret in {} is not UTF-8 text", path.display()))?;
    let line = text.trim_end_matches(['\n', '\r']);
    let value = line.rsplit_once(" salt=").map_or(line, |(v, _)| v);
    if value.is_empty() || value.contains('\n') {
        return Err(format!(
            "{} does not hold a secret on one line: remove it to have a new one made",
            path.display()
        ));
    }
    Ok((value.to_string(), encrypted))
}

/// What the file holds now: its value, whether it is encrypted, whether its mode is wider than
/// 0600. `None` when it does not exist.
fn read_stored(path: &Path) -> Result<Option<(String, bool, bool)>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let wide = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false);
    let (v, enc) = value_of(&bytes, path)?;
    Ok(Some((v, enc, wide)))
}

fn result_of(path: &Path, value: &str, encrypted: bool) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("secret".into(), value.into());
    r.insert("path".into(), path_value(path));
    r.insert("encrypted".into(), encrypted.into());
    r
}

/// What the deferred action does.
#[derive(Debug, Clone)]
enum Todo {
    /// Store `value` (a new secret; `rotate`: replacing the one there).
    Store { value: String, rotate: bool },
    /// Make an existing file 0600.
    Restrict,
}

struct Keep {
    path: PathBuf,
    todo: Todo,
    /// The vault password to encrypt with (the first given), if any.
    seal: Option<Secret>,
}

/// What storing did: the value the file holds afterwards and whether anything was written.
struct Stored {
    value: String,
    written: bool,
}

fn store(path: &Path, todo: &Todo, seal: Option<&Secret>) -> pki::Result<Option<Stored>> {
    let io = |what: &'static str, e: std::io::Error| PkiError::io(what, path, e);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut txn = store::Txn::new();
    txn.create_dir_all(dir)?;
    let _lock = store::lock(dir)?;
    let (value, rotate) = match todo {
        Todo::Restrict => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
                .map_err(|e| io("restrict", e))?;
            txn.commit();
            return Ok(None);
        }
        Todo::Store { value, rotate } => (value, *rotate),
    };
    let mut g = STORED.lock().unwrap_or_else(|e| e.into_inner());
    let this_run = g.get_or_insert_with(HashMap::new);
    // Another host of this run stored it first: one value for all.
    if let Some(v) = this_run.get(path) {
        return Ok(Some(Stored {
            value: v.clone(),
            written: false,
        }));
    }
    // Another process made it since the plan read the directory: keep theirs.
    if !rotate {
        if let Ok(Some((v, _, _))) = read_stored(path) {
            this_run.insert(path.to_path_buf(), v.clone());
            return Ok(Some(Stored {
                value: v,
                written: false,
            }));
        }
    }
    let content = match seal {
        Some(s) => vault::encrypt_with(format!("{value}\n").as_bytes(), s)
            .map_err(|e| io("encrypt", std::io::Error::other(e)))?,
        None => format!("{value}\n"),
    };
    txn.write(path, content.as_bytes(), FILE_MODE)?;
    txn.commit();
    this_run.insert(path.to_path_buf(), value.clone());
    Ok(Some(Stored {
        value: value.clone(),
        written: true,
    }))
}

#[async_trait]
impl Action for Keep {
    fn describe(&self) -> String {
        let how = if self.seal.is_some() {
            ", vault-encrypted"
        } else {
            ""
        };
        match &self.todo {
            Todo::Store { rotate: false, .. } => {
                format!("store a new secret in {}{how}", self.path.display())
            }
            Todo::Store { rotate: true, .. } => {
                format!("replace the secret in {}{how}", self.path.display())
            }
            Todo::Restrict => format!("make {} mode 0600", self.path.display()),
        }
    }

    async fn run(&self, _ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let (path, todo, seal) = (self.path.clone(), self.todo.clone(), self.seal.clone());
        let out = blocking(move || store(&path, &todo, seal.as_ref())).await?;
        let mut result = Map::new();
        if let Some(s) = out {
            // The value this host uses is the one stored (another host's, if it came first).
            revealed::register(&s.value);
            result.insert("secret".into(), s.value.into());
            if !s.written {
                result.insert("reason".into(), "stored by another host of this run".into());
            }
        }
        Ok(ActionOutput {
            changed: true,
            result,
            ..ActionOutput::default()
        })
    }
}

#[async_trait]
impl Module for SecretModule {
    fn name(&self) -> &'static str {
        "secret"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn runs_on_control_node(&self) -> bool {
        true
    }

    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if !args.has("name") && !args.has("path") {
            return Err("one of the arguments `name` or `path` is required".into());
        }
        if let Some(n) = args.str("name").filter(|n| !is_template(n)) {
            check_name(n)?;
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = file_of(ctx, args).map_err(ModuleError::InvalidArgs)?;
        let bytes = args.int("bytes").unwrap_or(32);
        let bytes = usize::try_from(bytes)
            .ok()
            .filter(|b| (1..=MAX_BYTES as usize).contains(b))
            .ok_or_else(|| {
                ModuleError::InvalidArgs(format!(
                    "argument `bytes` must be between 1 and {MAX_BYTES}, got {bytes}"
                ))
            })?;
        let format = match args.str("format").unwrap_or("hex") {
            "hex" => Format::Hex,
            "base64" => Format::Base64,
            other => {
                return Err(ModuleError::InvalidArgs(format!(
                    "argument `format` must be one of hex, base64, got `{other}`"
                )))
            }
        };
        let rotate = args.bool("rotate", false);
        let seal = keyring::secrets().into_iter().next();
        // Stored earlier in this run (by another host, or rotated already): that value.
        if let Some(v) = stored(&path) {
            revealed::register(&v);
            return Ok(Plan::ok().with_result(result_of(&path, &v, seal.is_some())));
        }
        let found = read_stored(&path)?;
        let (todo, value, encrypted, reason) = match found {
            Some((v, enc, wide)) if !rotate => {
                revealed::register(&v);
                let r = result_of(&path, &v, enc);
                if !wide {
                    return Ok(Plan::ok().with_result(r));
                }
                (Todo::Restrict, v, enc, "mode")
            }
            found => {
                let v = draw(bytes, format)?;
                revealed::register(&v);
                let todo = Todo::Store {
                    value: v.clone(),
                    rotate: found.is_some(),
                };
                let reason = if found.is_some() {
                    "rotated"
                } else {
                    "created"
                };
                (todo, v, seal.is_some(), reason)
            }
        };
        let mut result = result_of(&path, &value, encrypted);
        result.insert("reason".into(), reason.into());
        Ok(Plan::action(Keep { path, todo, seal }).with_result(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_are_read_like_ansible_password_files() {
        let p = Path::new("/x");
        assert_eq!(value_of(b"abc123\n", p).unwrap(), ("abc123".into(), false));
        assert_eq!(
            value_of(b"pw-from-ansible salt=abcdefgh\n", p).unwrap().0,
            "pw-from-ansible"
        );
        for bad in [&b""[..], b"\n", b"two\nlines\n", b"\xff\n"] {
            assert!(value_of(bad, p).is_err(), "{bad:?}");
        }
        let s = Secret {
            label: "default".into(),
            password: b"unit test password".to_vec(),
            source: "a test".into(),
        };
        let enc = vault::encrypt_with(b"sealed-value-7c1\n", &s).unwrap();
        // Without the password in the keyring, a located message, not the content.
        if keyring::secrets().is_empty() {
            let e = value_of(enc.as_bytes(), p).unwrap_err();
            assert!(e.contains("cannot read the secret in /x"), "{e}");
        }
    }

    #[test]
    fn drawn_values_have_the_length_asked() {
        let h = draw(32, Format::Hex).unwrap();
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(h, draw(32, Format::Hex).unwrap());
        let b = draw(32, Format::Base64).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&b)
                .unwrap()
                .len(),
            32
        );
        assert!(check_name("cap_secret_key").is_ok());
        for bad in ["", ".hidden", "a/b", "../x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_value_per_file_per_run_and_0600() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("secrets/sub/key");
        let todo = |v: &str, rotate| Todo::Store {
            value: v.into(),
            rotate,
        };
        let a = store(&path, &todo("first-value-1", false), None)
            .unwrap()
            .unwrap();
        assert!(a.written);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first-value-1\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        // A second host of the same run, with its own draw: adopts the first value.
        let b = store(&path, &todo("second-value-2", true), None)
            .unwrap()
            .unwrap();
        assert_eq!((b.value.as_str(), b.written), ("first-value-1", false));
        assert_eq!(stored(&path).as_deref(), Some("first-value-1"));
        // Sealed with a vault password: an ansible-vault envelope.
        let s = Secret {
            label: "prod".into(),
            password: b"unit test password".to_vec(),
            source: "a test".into(),
        };
        let other = d.path().join("sealed");
        store(&other, &todo("sealed-value-3", false), Some(&s)).unwrap();
        let text = std::fs::read_to_string(&other).unwrap();
        assert!(
            text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"),
            "{text}"
        );
        assert_eq!(
            vault::decrypt_with(&text, &[s]).unwrap(),
            b"sealed-value-3\n"
        );
    }
}
