//! Roles: `roles/NAME/{tasks,handlers,defaults,vars,meta}/main.yml`, `templates/`, `files/`.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::load::{load_vars_file, tag_list, Inherit, Loader};
use super::{Cond, Role, Scope, Task};
use crate::error::{Error, Result};
use crate::vars::VarLocs;
use crate::yaml::{Node, NodeValue};

/// `main.yml`, `main.yaml` or `main` in a role subdirectory.
fn main_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [
        format!("{stem}.yml"),
        format!("{stem}.yaml"),
        stem.to_string(),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

impl Loader<'_> {
    /// One entry of a play's `roles:` list.
    pub fn role_entry(&mut self, node: &Node, inh: &Inherit) -> Result<(Vec<Task>, Vec<Task>)> {
        let (name_node, params, when, tags) = match &node.value {
            NodeValue::Str(_) => (node, Map::new(), Vec::new(), Vec::new()),
            NodeValue::Map(entries) => {
                let name_node = node
                    .get("role")
                    .or_else(|| node.get("name"))
                    .ok_or_else(|| node.error("a role entry needs `role:` (the role's name)"))?;
                let mut params = Map::new();
                let mut when = Vec::new();
                let mut tags = Vec::new();
                for (k, v) in entries {
                    match k.key_string().as_str() {
                        "role" | "name" => {}
                        "when" => when = self.conds(v, &inh.locals)?,
                        "tags" => tags = tag_list(v)?,
                        "vars" => params.extend(self.vars_map(v, &inh.locals)?),
                        "become" | "become_user" => {
                            return Err(k.error(
                                "set `become` on the play or on tasks, not on a role entry",
                            ))
                        }
                        other => {
                            self.defined.insert(other.to_string());
                            self.use_templates_in(v, &inh.locals)?;
                            params.insert(other.to_string(), v.to_json());
                        }
                    }
                }
                (name_node, params, when, tags)
            }
            _ => return Err(node.error("a role entry must be a name or a mapping")),
        };
        let name = self.static_str(name_node, "role")?;
        let mut child = inh.clone();
        child.when.extend(when);
        child.tags.extend(tags);
        let (tasks, handlers, role) = self.load_role(&name, params, name_node, &child, None)?;
        self.play_roles.push(role);
        Ok((tasks, handlers))
    }

    fn find_role(&self, name: &str) -> Option<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() && p.is_dir() {
            return Some(p.to_path_buf());
        }
        self.role_paths
            .iter()
            .map(|d| d.join(name))
            .chain(std::iter::once(self.playbook_dir.join(name)))
            .find(|d| d.is_dir())
    }

    /// Load a role's tasks (from `tasks_from`, default `main`) and handlers.
    pub fn load_role(
        &mut self,
        name: &str,
        params: Map<String, Value>,
        at: &Node,
        inh: &Inherit,
        tasks_from: Option<&str>,
    ) -> Result<(Vec<Task>, Vec<Task>, Arc<Role>)> {
        let path = self.find_role(name).ok_or_else(|| {
            let searched: Vec<String> = self.role_paths.iter().map(|p| p.display().to_string()).collect();
            at.error(format!(
                "role `{name}` not found; searched: {} (set CASTELLAN_ROLES_PATH to add directories)",
                searched.join(", ")
            ))
        })?;
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        if self.stack.iter().any(|p| p == &path) {
            return Err(at.error(format!("role `{name}` depends on itself")));
        }
        self.stack.push(path.clone());
        let read_vars = |sub: &str, loader: &mut Self| -> Result<(Map<String, Value>, VarLocs)> {
            match main_file(&path.join(sub), "main") {
                Some(f) => {
                    let (m, locs) = load_vars_file(&f)?;
                    for k in m.keys() {
                        loader.defined.insert(k.clone());
                    }
                    Ok((m, locs))
                }
                None => Ok((Map::new(), VarLocs::new())),
            }
        };
        let (defaults, defaults_locs) = read_vars("defaults", self)?;
        let (vars, vars_locs) = read_vars("vars", self)?;
        let role = Arc::new(Role {
            name: Path::new(name)
                .file_name()
                .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned()),
            path: path.clone(),
            defaults,
            vars,
            defaults_locs,
            vars_locs,
            params,
        });
        let mut child = inh.clone();
        child.scope = Scope {
            role: Some(Arc::clone(&role)),
            dir: path.join("tasks"),
            ..inh.scope.clone()
        };
        let mut tasks = Vec::new();
        let mut handlers = Vec::new();
        // meta/main.yml dependencies run first.
        if let Some(meta) = main_file(&path.join("meta"), "main") {
            let node = crate::yaml::load_file_single(&meta)?;
            if !matches!(node.value, NodeValue::Map(_) | NodeValue::Null) {
                return Err(node.error(format!(
                    "a role's meta/main.yml must be a mapping, not {}",
                    node.kind()
                )));
            }
            let deps = match node.get("dependencies") {
                None => &[][..],
                Some(d) if d.is_null() => &[][..],
                Some(d) => d.as_seq().ok_or_else(|| {
                    d.error(format!(
                        "`dependencies` must be a list of roles, not {}",
                        d.kind()
                    ))
                })?,
            };
            {
                for d in deps {
                    let (t, h) = self.role_entry(d, inh)?;
                    tasks.extend(t);
                    handlers.extend(h);
                }
            }
        }
        let stem = tasks_from.unwrap_or("main");
        let stem = stem
            .strip_suffix(".yml")
            .or_else(|| stem.strip_suffix(".yaml"))
            .unwrap_or(stem);
        match main_file(&path.join("tasks"), stem) {
            Some(f) => {
                let root = crate::yaml::load_file_single(&f)?;
                tasks.extend(self.task_list(Some(&root), &child)?);
            }
            None if tasks_from.is_some() => {
                return Err(at.error(format!("role `{name}` has no tasks/{stem}.yml")));
            }
            None => {}
        }
        if let Some(f) = main_file(&path.join("handlers"), "main") {
            let root = crate::yaml::load_file_single(&f)?;
            let mut hinh = child.clone();
            hinh.when = Vec::<Cond>::new();
            handlers.extend(self.task_list(Some(&root), &hinh)?);
        }
        self.stack.pop();
        if tasks.is_empty() && handlers.is_empty() && !path.join("tasks").exists() {
            return Err(Error::invalid(
                &at.loc,
                format!(
                    "role `{name}` at {} has no tasks/ or handlers/",
                    path.display()
                ),
            ));
        }
        Ok((tasks, handlers, role))
    }
}
