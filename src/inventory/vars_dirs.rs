//! `group_vars/` and `host_vars/` beside an inventory source, read as Ansible's `host_group_vars`
//! vars plugin does: for an entity NAME, the first of `NAME` (a file or a folder), `NAME.yml`,
//! `NAME.yaml`, `NAME.json` that exists; a folder is read recursively in lexical order (files with
//! no extension or one of those extensions; dotfiles and `~` backups skipped) and its files merged,
//! later files winning. Empty files are ignored.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::load::read_document;
use crate::error::{Error, Result};
use crate::vars::{locs_of, VarLocs};

const EXTS: [&str; 3] = ["yml", "yaml", "json"];

/// The variables one source's `group_vars/` and `host_vars/` give to each group and host.
#[derive(Debug, Default)]
pub(super) struct SourceVars {
    /// Each group's variables and where they were written.
    pub groups: HashMap<String, (Map<String, Value>, VarLocs)>,
    pub hosts: HashMap<String, (Map<String, Value>, VarLocs)>,
}

/// The directory whose `group_vars/`/`host_vars/` apply to a source: the source itself when it is
/// a directory, else the directory holding the file.
pub(super) fn base_dir(source: &Path) -> PathBuf {
    if source.is_dir() {
        source.to_path_buf()
    } else {
        source.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

impl SourceVars {
    pub fn load<'a>(
        base: &Path,
        groups: impl IntoIterator<Item = &'a str>,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> Result<SourceVars> {
        let mut out = SourceVars::default();
        let gdir = base.join("group_vars");
        if gdir.is_dir() {
            for g in groups {
                if let Some(vars) = entity_vars(&gdir, g)? {
                    out.groups.insert(g.to_string(), vars);
                }
            }
        }
        let hdir = base.join("host_vars");
        if hdir.is_dir() {
            for h in hosts {
                if let Some(vars) = entity_vars(&hdir, h)? {
                    out.hosts.insert(h.to_string(), vars);
                }
            }
        }
        Ok(out)
    }
}

/// The merged variables of NAME in `dir`, or `None` when no file names it.
fn entity_vars(dir: &Path, name: &str) -> Result<Option<(Map<String, Value>, VarLocs)>> {
    // Ansible skips names that are absolute paths ("chroot" style host names).
    if name.starts_with('/') || name.is_empty() {
        return Ok(None);
    }
    let files = find_vars_files(dir, name)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut vars = Map::new();
    let mut locs = VarLocs::new();
    for f in files {
        let Some(doc) = read_document(&f)? else {
            continue;
        };
        let Some(entries) = doc.as_map() else {
            return Err(doc.error(format!(
                "a vars file must be a mapping of variable names to values, found {}",
                doc.kind()
            )));
        };
        for (k, v) in entries {
            vars.insert(k.key_string(), v.to_json());
        }
        locs.extend(locs_of(&doc));
    }
    Ok(Some((vars, locs)))
}

fn find_vars_files(dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let candidates =
        std::iter::once(dir.join(name)).chain(EXTS.iter().map(|e| dir.join(format!("{name}.{e}"))));
    for path in candidates {
        if path.is_dir() {
            let mut found = Vec::new();
            dir_files(&path, &mut found)?;
            return Ok(found);
        }
        if path.exists() {
            return Ok(vec![path]);
        }
    }
    Ok(Vec::new())
}

fn dir_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, &e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::read(dir, &err)))
        .collect::<Result<_>>()?;
    entries.sort();
    for p in entries {
        let fname = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if fname.starts_with('.') || fname.ends_with('~') {
            continue;
        }
        let ext = p.extension().and_then(|e| e.to_str());
        if p.is_dir() {
            if ext.is_none() {
                dir_files(&p, found)?;
            }
        } else if ext.is_none_or(|e| EXTS.contains(&e)) {
            found.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_forms_and_folder_merge() {
        let d = tempfile::tempdir().unwrap();
        let gv = d.path().join("group_vars");
        std::fs::create_dir_all(gv.join("web/sub")).unwrap();
        std::fs::write(gv.join("web/a.yml"), "x: 1\ny: 1\n").unwrap();
        std::fs::write(gv.join("web/b.json"), "{\"y\": 2}").unwrap();
        std::fs::write(gv.join("web/sub/c"), "z: 3\n").unwrap();
        std::fs::write(gv.join("web/notes.txt"), "x: 99\n").unwrap();
        std::fs::write(gv.join("web/.hidden.yml"), "x: 99\n").unwrap();
        std::fs::write(gv.join("web/a.yml~"), "x: 99\n").unwrap();
        // A folder wins over NAME.yml, as in Ansible (the extensionless name is tried first).
        std::fs::write(gv.join("web.yml"), "x: 100\n").unwrap();
        std::fs::write(gv.join("db.yaml"), "d: yes\n").unwrap();
        std::fs::write(gv.join("empty.yml"), "# nothing\n").unwrap();
        let sv = SourceVars::load(d.path(), ["web", "db", "empty", "none"], []).unwrap();
        assert_eq!(
            Value::Object(sv.groups["web"].0.clone()),
            serde_json::json!({"x": 1, "y": 2, "z": 3})
        );
        assert_eq!(sv.groups["db"].0["d"], Value::Bool(true));
        assert!(sv.groups["empty"].0.is_empty());
        assert_eq!(sv.groups["db"].1["d"].line, 1);
        assert!(sv.groups["web"].1["z"].file.ends_with("web/sub/c"));
        assert!(!sv.groups.contains_key("none"));
    }

    #[test]
    fn non_mapping_vars_file_is_located_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("host_vars")).unwrap();
        std::fs::write(d.path().join("host_vars/h1.yml"), "- a\n- b\n").unwrap();
        let e = SourceVars::load(d.path(), [], ["h1"]).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("h1.yml:1:1"), "{e}");
    }
}
