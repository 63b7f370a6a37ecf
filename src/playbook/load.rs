//! Reading playbook files: plays, vars files, imported playbooks.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::PLAY_KEYWORDS;
use super::varcheck::VarUse;
use super::{Cond, Play, Playbook, Scope, Serial, Task};
use crate::error::{Error, Result};
use crate::modules::args::did_you_mean;
use crate::template::{is_template, Templar};
use crate::vars::{locs_of, VarLocs};
use crate::yaml::{self, Node, NodeValue};

/// Everything gathered while loading, for the checks that need the whole playbook.
pub struct Loader<'a> {
    pub templar: &'a Templar,
    pub playbook_dir: PathBuf,
    /// Directories searched for roles, best first.
    pub role_paths: Vec<PathBuf>,
    pub uses: Vec<VarUse>,
    /// Variable names the playbook itself defines (vars, register, set_fact, roles...).
    pub defined: HashSet<String>,
    /// Handlers of roles pulled in by `include_role` while loading the current play.
    pub extra_handlers: Vec<Task>,
    /// Files being loaded, to catch include cycles.
    pub stack: Vec<PathBuf>,
    /// Roles of the current play's `roles:` list: their variables are visible to the play.
    pub play_roles: Vec<Arc<super::Role>>,
}

/// What a task inherits from the block, include or role it sits in.
#[derive(Debug, Clone, Default)]
pub struct Inherit {
    pub when: Vec<Cond>,
    pub tags: Vec<String>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub no_log: Option<bool>,
    pub ignore_errors: Option<bool>,
    pub check_mode: Option<bool>,
    pub delegate_to: Option<String>,
    pub run_once: Option<bool>,
    pub scope: Scope,
    /// Names local to the enclosing include (its loop variable).
    pub locals: Vec<String>,
}

/// Load and validate a playbook file: every play, role, task file and template it uses.
pub fn load_playbook(
    path: &Path,
    templar: &Templar,
) -> Result<(Playbook, Vec<VarUse>, HashSet<String>)> {
    let path = std::fs::canonicalize(path).map_err(|e| Error::read(path, &e))?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut role_paths = Vec::new();
    for var in ["CASTELLAN_ROLES_PATH", "ANSIBLE_ROLES_PATH"] {
        if let Ok(v) = std::env::var(var) {
            role_paths.extend(v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
        }
    }
    role_paths.push(dir.join("roles"));
    // A repository with `playbooks/` and `roles/` side by side finds its roles too.
    if let Some(parent) = dir.parent() {
        role_paths.push(parent.join("roles"));
    }
    let mut loader = Loader {
        templar,
        playbook_dir: dir.clone(),
        role_paths,
        uses: Vec::new(),
        defined: HashSet::new(),
        extra_handlers: Vec::new(),
        stack: Vec::new(),
        play_roles: Vec::new(),
    };
    let plays = loader.load_plays(&path)?;
    Ok((Playbook { path, dir, plays }, loader.uses, loader.defined))
}

/// Read a YAML file that must hold a mapping of variables (vars files, role defaults), with
/// where each value was written.
pub fn load_vars_file(path: &Path) -> Result<(Map<String, Value>, VarLocs)> {
    let node = yaml::load_file_single(path)?;
    match node.to_json() {
        Value::Object(m) => Ok((m, locs_of(&node))),
        Value::Null => Ok((Map::new(), VarLocs::new())),
        _ => Err(node.error(format!(
            "{} must hold a mapping of variables, not {}",
            path.display(),
            node.kind()
        ))),
    }
}

impl Loader<'_> {
    fn load_plays(&mut self, path: &Path) -> Result<Vec<Play>> {
        if self.stack.iter().any(|p| p == path) {
            return Err(Error::invalid_noloc(format!(
                "{} imports itself (import cycle)",
                path.display()
            )));
        }
        self.stack.push(path.to_path_buf());
        let root = yaml::load_file_single(path)?;
        let Some(items) = root.as_seq() else {
            return Err(root.error(format!(
                "a playbook must be a list of plays, not {}",
                root.kind()
            )));
        };
        let mut plays = Vec::new();
        for item in items {
            let import = item
                .get("import_playbook")
                .or_else(|| item.get("ansible.builtin.import_playbook"));
            if let Some(target) = import {
                let name = self.static_str(target, "import_playbook")?;
                let base = path.parent().unwrap_or(Path::new("."));
                let file = base.join(&name);
                let file = std::fs::canonicalize(&file)
                    .map_err(|e| target.error(format!("cannot import {}: {e}", file.display())))?;
                if self.stack.contains(&file) {
                    return Err(
                        target.error(format!("{} imports itself (import cycle)", file.display()))
                    );
                }
                plays.extend(self.load_plays(&file)?);
                continue;
            }
            plays.push(self.load_play(item)?);
        }
        self.stack.pop();
        Ok(plays)
    }

    /// A string that must not be a template (file names resolved before the run).
    pub fn static_str(&self, node: &Node, what: &str) -> Result<String> {
        let s = node
            .as_str()
            .ok_or_else(|| node.error(format!("`{what}` must be a string, not {}", node.kind())))?;
        if is_template(s) {
            return Err(node.error(format!(
                "`{what}` must be written without templates, so it can be checked before the run"
            )));
        }
        Ok(s.to_string())
    }

    /// Record the variables a template reads (and check its syntax).
    pub fn use_template(&mut self, node: &Node, s: &str, locals: &[String]) -> Result<()> {
        if !is_template(s) || matches!(node.value, NodeValue::Unsafe(_)) {
            return Ok(());
        }
        let names = self
            .templar
            .check(s)
            .map_err(|e| node.error(format!("template error: {e}")))?;
        self.uses.push(VarUse {
            loc: node.loc.clone(),
            names,
            locals: locals.to_vec(),
        });
        Ok(())
    }

    /// Record the variables every template inside a node reads.
    pub fn use_templates_in(&mut self, node: &Node, locals: &[String]) -> Result<()> {
        match &node.value {
            NodeValue::Str(s) => self.use_template(node, s, locals),
            NodeValue::Seq(items) => items
                .iter()
                .try_for_each(|i| self.use_templates_in(i, locals)),
            NodeValue::Map(entries) => entries.iter().try_for_each(|(k, v)| {
                self.use_templates_in(k, locals)?;
                self.use_templates_in(v, locals)
            }),
            _ => Ok(()),
        }
    }

    /// A condition list (`when:` and friends): a string, a boolean or a list of them.
    pub fn conds(&mut self, node: &Node, locals: &[String]) -> Result<Vec<Cond>> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for n in items {
            let expr = match &n.value {
                NodeValue::Str(s) | NodeValue::Unsafe(s) => s.clone(),
                NodeValue::Bool(b) => b.to_string(),
                NodeValue::Int(i) => (*i != 0).to_string(),
                NodeValue::Null => continue,
                _ => {
                    return Err(n.error(format!(
                        "a condition must be an expression, not {}",
                        n.kind()
                    )))
                }
            };
            let names = self
                .templar
                .check_cond(&expr)
                .map_err(|e| n.error(format!("bad condition `{expr}`: {e}")))?;
            self.uses.push(VarUse {
                loc: n.loc.clone(),
                names,
                locals: locals.to_vec(),
            });
            out.push(Cond {
                expr,
                loc: n.loc.clone(),
            });
        }
        Ok(out)
    }

    /// A mapping of variables (`vars:`), whose templates are checked and names recorded.
    pub fn vars_map(&mut self, node: &Node, locals: &[String]) -> Result<Map<String, Value>> {
        if node.is_null() {
            return Ok(Map::new());
        }
        let Some(entries) = node.as_map() else {
            return Err(node.error(format!("`vars` must be a mapping, not {}", node.kind())));
        };
        for (k, v) in entries {
            self.defined.insert(k.key_string());
            // Variables may refer to each other; a use of one is checked where it is used.
            let mut inner = locals.to_vec();
            inner.extend(entries.iter().map(|(k, _)| k.key_string()));
            self.use_templates_in(v, &inner)?;
        }
        match node.to_json() {
            Value::Object(m) => Ok(m),
            _ => Ok(Map::new()),
        }
    }

    fn load_play(&mut self, node: &Node) -> Result<Play> {
        let Some(entries) = node.as_map() else {
            return Err(node.error(format!("a play must be a mapping, not {}", node.kind())));
        };
        for (k, _) in entries {
            let key = k.key_string();
            if !PLAY_KEYWORDS.contains(&key.as_str()) {
                let hint = did_you_mean(&key, PLAY_KEYWORDS.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let extra = if crate::modules::registry::lookup(&key).is_some() {
                    "; modules go in a task list under `tasks:`"
                } else {
                    ""
                };
                return Err(k.error(format!("unknown play keyword `{key}`{hint}{extra}")));
            }
        }
        let hosts = match node.get("hosts") {
            Some(h) => match &h.value {
                NodeValue::Str(s) => s.clone(),
                NodeValue::Seq(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| i.key_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => return Err(h.error("`hosts` must be a pattern string or a list")),
            },
            None => return Err(node.error("a play needs `hosts:` (a host pattern such as `all`)")),
        };
        let name = node
            .get("name")
            .and_then(Node::as_str)
            .map_or_else(|| hosts.clone(), str::to_string);
        if let Some(s) = node.get("strategy").and_then(Node::as_str) {
            if s != "linear" {
                return Err(node.error(format!("strategy `{s}` is not supported; only `linear`")));
            }
        }
        if let Some(m) = node.get("become_method").and_then(Node::as_str) {
            if m != "sudo" {
                return Err(
                    node.error(format!("become_method `{m}` is not supported; only `sudo`"))
                );
            }
        }
        let mut var_locs = VarLocs::new();
        let vars = match node.get("vars") {
            Some(v) => {
                var_locs.extend(locs_of(v));
                self.vars_map(v, &[])?
            }
            None => Map::new(),
        };
        let mut vars_files = Map::new();
        if let Some(vf) = node.get("vars_files") {
            let list: Vec<&Node> = match &vf.value {
                NodeValue::Seq(items) => items.iter().collect(),
                _ => vec![vf],
            };
            for f in list {
                let name = self.static_str(f, "vars_files")?;
                let path = self.playbook_dir.join(&name);
                let (m, locs) = load_vars_file(&path).map_err(|e| match e {
                    Error::Invalid { loc: None, msg } => f.error(msg),
                    other => other,
                })?;
                for k in m.keys() {
                    self.defined.insert(k.clone());
                }
                vars_files.extend(m);
                var_locs.extend(locs);
            }
        }
        let serial = match node.get("serial") {
            None => Vec::new(),
            Some(s) => parse_serial(s)?,
        };
        let max_fail_percentage = match node.get("max_fail_percentage") {
            None => None,
            Some(n) => Some(super::numbers::percent(n, "max_fail_percentage")?),
        };
        let play_tags = match node.get("tags") {
            Some(t) => tag_list(t)?,
            None => Vec::new(),
        };
        let inherit = Inherit {
            tags: play_tags,
            ignore_errors: node.get("ignore_errors").map(bool_of).transpose()?,
            no_log: node.get("no_log").map(bool_of).transpose()?,
            scope: Scope {
                dir: self.playbook_dir.clone(),
                ..Scope::default()
            },
            ..Inherit::default()
        };
        self.extra_handlers.clear();
        self.play_roles.clear();
        let pre_tasks = self.task_list(node.get("pre_tasks"), &inherit)?;
        let mut tasks = Vec::new();
        let mut handlers = Vec::new();
        if let Some(roles) = node.get("roles") {
            let Some(items) = roles.as_seq() else {
                return Err(roles.error("`roles` must be a list"));
            };
            for r in items {
                let (t, h) = self.role_entry(r, &inherit)?;
                tasks.extend(t);
                handlers.extend(h);
            }
        }
        tasks.extend(self.task_list(node.get("tasks"), &inherit)?);
        let post_tasks = self.task_list(node.get("post_tasks"), &inherit)?;
        handlers.extend(self.task_list(node.get("handlers"), &inherit)?);
        handlers.append(&mut self.extra_handlers);
        for h in &handlers {
            if h.name.is_none() && h.listen.is_empty() {
                return Err(Error::invalid(
                    &h.loc,
                    "a handler needs a `name` (or `listen`)",
                ));
            }
        }
        check_notify(&[&pre_tasks, &tasks, &post_tasks, &handlers], &handlers)?;
        Ok(Play {
            loc: node.loc.clone(),
            name,
            hosts,
            vars,
            vars_files,
            var_locs,
            serial,
            max_fail_percentage,
            any_errors_fatal: node
                .get("any_errors_fatal")
                .map(bool_of)
                .transpose()?
                .unwrap_or(false),
            become_: node.get("become").map(bool_of).transpose()?,
            become_user: match node.get("become_user") {
                Some(u) => Some(become_user(u)?),
                None => None,
            },
            check_mode: node.get("check_mode").map(bool_of).transpose()?,
            dir: self.playbook_dir.clone(),
            roles: std::mem::take(&mut self.play_roles),
            pre_tasks,
            tasks,
            post_tasks,
            handlers,
        })
    }

    /// A list of tasks (`tasks:`, `block:`, a task file).
    pub fn task_list(&mut self, node: Option<&Node>, inh: &Inherit) -> Result<Vec<Task>> {
        let Some(node) = node else {
            return Ok(Vec::new());
        };
        if node.is_null() {
            return Ok(Vec::new());
        }
        let Some(items) = node.as_seq() else {
            return Err(node.error(format!("expected a list of tasks, not {}", node.kind())));
        };
        items.iter().map(|t| self.parse_task(t, inh)).collect()
    }
}

/// Every `notify:` must name a handler (by name or `listen`), as Ansible checks.
fn check_notify(lists: &[&Vec<Task>], handlers: &[Task]) -> Result<()> {
    let mut names: HashSet<&str> = HashSet::new();
    for h in handlers {
        if let Some(n) = &h.name {
            names.insert(n);
        }
        for l in &h.listen {
            names.insert(l);
        }
    }
    fn walk(tasks: &[Task], names: &HashSet<&str>, handlers: &[Task]) -> Result<()> {
        for t in tasks {
            for n in &t.notify {
                let qualified = handlers.iter().any(|h| {
                    h.scope
                        .role
                        .as_ref()
                        .zip(h.name.as_ref())
                        .is_some_and(|(r, hn)| format!("{} : {hn}", r.name) == *n)
                });
                if !names.contains(n.as_str()) && !qualified {
                    let hint = did_you_mean(n, names.iter().copied())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(Error::invalid(
                        &t.loc,
                        format!("notify: no handler named `{n}`{hint}"),
                    ));
                }
            }
            match &t.action {
                super::Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    walk(block, names, handlers)?;
                    walk(rescue, names, handlers)?;
                    walk(always, names, handlers)?;
                }
                super::Action::Include { tasks } => walk(tasks, names, handlers)?,
                _ => {}
            }
        }
        Ok(())
    }
    for l in lists {
        walk(l, &names, handlers)?;
    }
    Ok(())
}

pub fn bool_of(n: &Node) -> Result<bool> {
    match &n.value {
        NodeValue::Bool(b) => Ok(*b),
        NodeValue::Int(i) => Ok(*i != 0),
        NodeValue::Str(s) => crate::boolean::parse(s)
            .ok_or_else(|| n.error(format!("expected a boolean (yes/no), got `{s}`"))),
        _ => Err(n.error(format!("expected a boolean (yes/no), not {}", n.kind()))),
    }
}

/// A `become_user` as written: a user name, or a template checked once rendered.
pub fn become_user(n: &Node) -> Result<String> {
    let s = n.as_str().ok_or_else(|| {
        n.error(format!(
            "`become_user` must be a user name, not {}",
            n.kind()
        ))
    })?;
    if !is_template(s) {
        crate::connection::ssh::check_user_name(s)
            .map_err(|m| n.error(format!("become_user: {m}")))?;
    }
    Ok(s.to_string())
}

pub fn tag_list(n: &Node) -> Result<Vec<String>> {
    match &n.value {
        NodeValue::Str(s) => Ok(s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()),
        NodeValue::Seq(items) => Ok(items.iter().map(Node::key_string).collect()),
        NodeValue::Int(i) => Ok(vec![i.to_string()]),
        _ => Err(n.error("`tags` must be a string or a list")),
    }
}

fn parse_serial(n: &Node) -> Result<Vec<Serial>> {
    let one = |n: &Node| -> Result<Serial> {
        match &n.value {
            NodeValue::Int(i) if *i > 0 => Ok(Serial::Count(*i as usize)),
            NodeValue::Str(s) => {
                if let Some(p) = s.trim().strip_suffix('%') {
                    p.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100.0)
                        .map(Serial::Percent)
                        .ok_or_else(|| n.error(format!("bad serial percentage `{s}`")))
                } else {
                    s.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|c| *c > 0)
                        .map(Serial::Count)
                        .ok_or_else(|| {
                            n.error(format!(
                                "bad serial `{s}`: use a number, a percentage or a list"
                            ))
                        })
                }
            }
            _ => Err(n.error(
                "`serial` must be a positive number, a percentage like \"30%\", or a list of them",
            )),
        }
    };
    match &n.value {
        NodeValue::Seq(items) => items.iter().map(one).collect(),
        _ => Ok(vec![one(n)?]),
    }
}

/// Scope helper: a child scope with one more vars layer.
pub fn push_vars(scope: &Scope, vars: Map<String, Value>) -> Scope {
    let mut s = scope.clone();
    if !vars.is_empty() {
        s.vars.push(Arc::new(vars));
    }
    s
}

/// Scope helper: a child scope with one more layer of include params.
pub fn push_params(scope: &Scope, params: Map<String, Value>) -> Scope {
    let mut s = scope.clone();
    if !params.is_empty() {
        s.params.push(Arc::new(params));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::bool_of;

    #[test]
    fn keyword_booleans_take_ansibles_words() {
        let doc = "a: t\nb: F\nc: yes\nd: 0\ne: maybe\nf: true\n";
        let nodes = crate::yaml::parse_str(doc, std::path::Path::new("pb.yml")).unwrap();
        let b = |k: &str| bool_of(nodes[0].get(k).unwrap());
        assert!(b("a").unwrap());
        assert!(!b("b").unwrap());
        assert!(b("c").unwrap());
        assert!(!b("d").unwrap());
        assert!(b("f").unwrap());
        assert!(b("e")
            .unwrap_err()
            .to_string()
            .contains("expected a boolean"));
    }
}
