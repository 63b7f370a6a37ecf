//! Handlers are not lost: a notification that had not run when a host failed (or the run was
//! cut short) is kept on the control node, in `<playbook dir>/.castellan/pending/<host>.json`,
//! and run on the next run of the same play. Ansible forgets it.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

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

/// The handlers a previous run left pending for this play and host.
pub fn load(playbook_dir: &Path, play: &str, host: &str) -> Vec<String> {
    read(&file(playbook_dir, host))
        .get(play)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Record what is still pending for this play and host (nothing: forget it).
pub fn save(
    playbook_dir: &Path,
    play: &str,
    host: &str,
    pending: &[String],
) -> std::io::Result<()> {
    let path = file(playbook_dir, host);
    let mut all = read(&path);
    if pending.is_empty() {
        if all.remove(play).is_none() {
            return Ok(());
        }
    } else {
        all.insert(play.to_string(), Value::from(pending.to_vec()));
    }
    if all.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(&Value::Object(all))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forget() {
        let d = tempfile::tempdir().unwrap();
        save(d.path(), "play", "db1", &["reload".into()]).unwrap();
        save(d.path(), "other", "db1", &["restart".into()]).unwrap();
        assert_eq!(load(d.path(), "play", "db1"), vec!["reload"]);
        save(d.path(), "play", "db1", &[]).unwrap();
        assert!(load(d.path(), "play", "db1").is_empty());
        save(d.path(), "other", "db1", &[]).unwrap();
        assert!(!file(d.path(), "db1").exists());
    }
}
