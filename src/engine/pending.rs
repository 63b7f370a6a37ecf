//! Handlers are not lost: a notification that has not run yet is kept on the control node, in
//! `<playbook dir>/.castellan/pending/<host>.json`, from the moment it is made until its
//! handler has run, so a failed host, an interrupt (SIGINT/SIGTERM) or a crash leaves it for the
//! next run of the same play. Ansible forgets it.
//!
//! With the handlers, the file keeps the backups the host's tasks made (`{"path", "backup"}`:
//! paths on the host, never content): what a rollback in the owed handler (`pg_service`)
//! restores when the next run finds the configuration rejected.
//!
//! Every write is atomic and private: a 0600 temp file in the same directory (0700), flushed,
//! then renamed over the old one. A task that is about to change a host records its
//! notifications before it applies anything ([`Book::record`] from the engine), so a run cut
//! short in the middle of a change still owes the handler.
//!
//! Format: `{"<play>": {"handlers": ["..."], "backups": [{"path": "...", "backup": "..."}]}}`;
//! the older `{"<play>": ["handler", ...]}` is still read.
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::connection::Backup;

/// What a play still owes one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owed {
    /// Handlers notified and not run, in notification order.
    pub handlers: Vec<String>,
    /// Backups made on the host, oldest first.
    pub backups: Vec<Backup>,
}

impl Owed {
    /// Nothing owed: no handler (backups alone are not kept).
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    fn to_value(&self) -> Value {
        json!({"handlers": self.handlers, "backups": self.backups})
    }

    fn from_value(v: &Value) -> Owed {
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        match v {
            // The first format: a list of handler names.
            Value::Array(_) => Owed {
                handlers: strings(Some(v)),
                backups: Vec::new(),
            },
            Value::Object(m) => Owed {
                handlers: strings(m.get("handlers")),
                // An entry that is not a `{"path", "backup"}` pair is dropped.
                backups: m
                    .get("backups")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|b| serde_json::from_value(b.clone()).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            _ => Owed::default(),
        }
    }
}

fn file(playbook_dir: &Path, host: &str) -> PathBuf {
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    playbook_dir
        .join(".castellan")
        .join("pending")
        .join(format!("{safe}.json"))
}

fn read(path: &Path) -> Map<String, Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// What a previous run left owed for this play and host.
pub fn load(playbook_dir: &Path, play: &str, host: &str) -> Owed {
    read(&file(playbook_dir, host))
        .get(play)
        .map(Owed::from_value)
        .unwrap_or_default()
}

/// Create `dir` and its missing parents 0700 (the state is the operator's business only).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replace `path` with `bytes`: a 0600 temp file beside it, flushed, renamed over it.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pending-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    // tempfile creates 0600 already; say it anyway (a umask cannot widen it).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Record what is owed for this play and host (nothing: forget it).
pub fn save(playbook_dir: &Path, play: &str, host: &str, owed: &Owed) -> std::io::Result<()> {
    let path = file(playbook_dir, host);
    let mut all = read(&path);
    if owed.is_empty() {
        if all.remove(play).is_none() {
            return Ok(());
        }
    } else {
        all.insert(play.to_string(), owed.to_value());
    }
    if all.is_empty() {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        // Leave no empty state directories behind (they go only when empty).
        if let Some(pending) = path.parent() {
            if std::fs::remove_dir(pending).is_ok() {
                if let Some(state) = pending.parent() {
                    let _ = std::fs::remove_dir(state);
                }
            }
        }
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let text = serde_json::to_vec_pretty(&Value::Object(all))?;
    write_atomic(&path, &text)
}

/// The owed state of one play's hosts, written through to disk whenever it changes (and only
/// then: a run that notifies nothing writes nothing). Safe to call from the futures of several
/// hosts at once; each host has its own file.
#[derive(Debug)]
pub struct Book {
    dir: PathBuf,
    play: String,
    /// Check mode keeps nothing.
    enabled: bool,
    saved: Mutex<HashMap<String, Owed>>,
}

impl Book {
    pub fn new(playbook_dir: &Path, play: &str, enabled: bool) -> Book {
        Book {
            dir: playbook_dir.to_path_buf(),
            play: play.to_string(),
            enabled,
            saved: Mutex::new(HashMap::new()),
        }
    }

    /// Read what an earlier run left for `host` (and remember it as written).
    pub fn load(&self, host: &str) -> Owed {
        if !self.enabled {
            return Owed::default();
        }
        let owed = load(&self.dir, &self.play, host);
        if let Ok(mut s) = self.saved.lock() {
            s.insert(host.to_string(), owed.clone());
        }
        owed
    }

    /// Make the file say `owed` for `host`, if it does not already.
    pub fn record(&self, host: &str, owed: Owed) -> std::io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let mut saved = self
            .saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = saved.get(host).cloned().unwrap_or_default();
        // Backups matter only next to a handler: nothing owed, nothing kept.
        let same = before == owed || (before.is_empty() && owed.is_empty());
        if same {
            return Ok(());
        }
        save(&self.dir, &self.play, host, &owed)?;
        saved.insert(host.to_string(), owed);
        Ok(())
    }

    /// Where the state lives (for messages).
    pub fn location(&self) -> PathBuf {
        self.dir.join(".castellan").join("pending")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(h: &[&str]) -> Owed {
        Owed {
            handlers: h.iter().map(|s| s.to_string()).collect(),
            backups: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_forget() {
        let d = tempfile::tempdir().unwrap();
        save(d.path(), "play", "db1", &owed(&["reload"])).unwrap();
        save(d.path(), "other", "db1", &owed(&["restart"])).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), owed(&["reload"]));
        save(d.path(), "play", "db1", &owed(&[])).unwrap();
        assert!(load(d.path(), "play", "db1").is_empty());
        save(d.path(), "other", "db1", &owed(&[])).unwrap();
        assert!(!file(d.path(), "db1").exists());
        assert!(!d.path().join(".castellan").exists());
    }

    #[test]
    fn backups_are_kept_with_the_handlers_private_and_the_old_format_reads() {
        let d = tempfile::tempdir().unwrap();
        let o = Owed {
            handlers: vec!["apply".into()],
            backups: vec![Backup {
                path: "/etc/pg/pg_hba.conf".into(),
                backup: "/etc/pg/pg_hba.conf.1~".into(),
            }],
        };
        save(d.path(), "play", "db1", &o).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), o);
        let f = file(d.path(), "db1");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(f.parent().unwrap()), 0o700);
        // Nothing else in the directory: the temp file was renamed.
        assert_eq!(std::fs::read_dir(f.parent().unwrap()).unwrap().count(), 1);
        std::fs::write(&f, r#"{"play": ["reload", "restart"]}"#).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), owed(&["reload", "restart"]));
    }

    #[test]
    fn the_book_writes_only_changes_and_check_mode_nothing() {
        let d = tempfile::tempdir().unwrap();
        let b = Book::new(d.path(), "play", true);
        assert!(b.load("db1").is_empty());
        b.record("db1", owed(&[])).unwrap();
        assert!(
            !file(d.path(), "db1").exists(),
            "nothing owed, nothing written"
        );
        b.record("db1", owed(&["reload"])).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), owed(&["reload"]));
        // Written behind the book's back: an unchanged record does not write again.
        std::fs::write(file(d.path(), "db1"), "{}").unwrap();
        b.record("db1", owed(&["reload"])).unwrap();
        assert!(load(d.path(), "play", "db1").is_empty());
        b.record("db1", owed(&["reload", "restart"])).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), owed(&["reload", "restart"]));
        b.record("db1", owed(&[])).unwrap();
        assert!(!file(d.path(), "db1").exists());
        let c = Book::new(d.path(), "play", false);
        c.record("db1", owed(&["reload"])).unwrap();
        assert!(!file(d.path(), "db1").exists());
    }
}
