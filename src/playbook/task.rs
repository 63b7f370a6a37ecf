//! Parsing one task: keywords, the module and its arguments, blocks and includes.
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{short_action, ACTION_KEYWORDS, TASK_KEYWORDS};
use super::load::{bool_of, push_params, push_vars, tag_list, Inherit, Loader};
use super::numbers;
use super::varcheck::Reads;
use super::{Action, Task};
use crate::error::{Error, Result};
use crate::modules::args::{did_you_mean, normalize};
use crate::modules::{registry, Module};
use crate::template::is_template;
use crate::yaml::{self, Node, NodeValue};

impl Loader<'_> {
    pub fn parse_task(&mut self, node: &Node, inh: &Inherit) -> Result<Task> {
        let Some(entries) = node.as_map() else {
            return Err(node.error(format!("a task must be a mapping, not {}", node.kind())));
        };
        let mut action_keys: Vec<&Node> = Vec::new();
        for (k, _) in entries {
            let key = k.key_string();
            let short = short_action(&key);
            if TASK_KEYWORDS.contains(&key.as_str()) {
                continue;
            }
            if ACTION_KEYWORDS.contains(&short) || registry::lookup(&key).is_some() {
                if !matches!(short, "rescue" | "always") {
                    action_keys.push(k);
                }
                continue;
            }
            let candidates = TASK_KEYWORDS
                .iter()
                .chain(ACTION_KEYWORDS)
                .copied()
                .chain(registry::names());
            let hint = did_you_mean(&key, candidates)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let modules: Vec<&str> = registry::names().collect();
            return Err(k.error(format!(
                "unknown module or task keyword `{key}`{hint}; modules: {}",
                modules.join(", ")
            )));
        }
        if action_keys.len() > 1 {
            let names: Vec<String> = action_keys.iter().map(|k| k.key_string()).collect();
            return Err(action_keys[1].error(format!(
                "conflicting action statements: {}",
                names.join(", ")
            )));
        }
        let has_rescue = node.get("rescue").is_some() || node.get("always").is_some();
        let Some(action_key) = action_keys.first().copied() else {
            if has_rescue {
                return Err(node.error("`rescue`/`always` need a `block`"));
            }
            return Err(
                node.error("task has no action: add a module such as `copy:` or `command:`")
            );
        };
        let action_name = action_key.key_string();
        if has_rescue && short_action(&action_name) != "block" {
            return Err(node.error("`rescue`/`always` belong to a `block`"));
        }

        // Keywords.
        let name = match node.get("name") {
            Some(n) => {
                let s = n
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| n.key_string());
                Some(s)
            }
            None => None,
        };
        let (loop_node, loop_key) = match (
            node.get("loop"),
            node.get("with_items"),
            node.get("with_list"),
        ) {
            (Some(l), None, None) => (Some(l), "loop"),
            (None, Some(l), None) => (Some(l), "with_items"),
            (None, None, Some(l)) => (Some(l), "with_list"),
            (None, None, None) => (None, ""),
            _ => return Err(node.error("use only one of loop, with_items, with_list")),
        };
        let mut loop_var = "item".to_string();
        let mut index_var = None;
        let mut loop_label = None;
        if let Some(lc) = node.get("loop_control") {
            let Some(lc_entries) = lc.as_map() else {
                return Err(lc.error("`loop_control` must be a mapping"));
            };
            for (k, v) in lc_entries {
                match k.key_string().as_str() {
                    "loop_var" => loop_var = self.static_str(v, "loop_var")?,
                    "index_var" => index_var = Some(self.static_str(v, "index_var")?),
                    "label" => loop_label = v.as_str().map(str::to_string),
                    "pause" => {
                        numbers::seconds(v, "loop_control.pause", numbers::MAX_DELAY_S)?;
                    }
                    "extended" | "extended_allitems" => {}
                    other => {
                        let hint = did_you_mean(
                            other,
                            ["loop_var", "index_var", "label", "pause", "extended"],
                        )
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                        return Err(k.error(format!("unknown loop_control option `{other}`{hint}")));
                    }
                }
            }
        }
        if let Some(l) = loop_node {
            let ok = match &l.value {
                NodeValue::Seq(_) => true,
                NodeValue::Str(s) => is_template(s),
                _ => false,
            };
            if !ok {
                return Err(l.error(format!(
                    "`{loop_key}` must be a list, or a template that gives one, not {}",
                    l.kind()
                )));
            }
        }
        let mut locals = inh.locals.clone();
        if let Some(l) = loop_node {
            self.use_templates_in(l, &locals)?;
            locals.push(loop_var.clone());
            locals.push("ansible_loop".into());
            if let Some(iv) = &index_var {
                locals.push(iv.clone());
            }
        }
        let loop_ = loop_node.map(|l| {
            let v = l.to_json();
            // `with_items` flattens one level, as Ansible does.
            if loop_key == "with_items" {
                if let Value::Array(items) = &v {
                    let mut flat = Vec::new();
                    for i in items {
                        match i {
                            Value::Array(inner) => flat.extend(inner.iter().cloned()),
                            other => flat.push(other.clone()),
                        }
                    }
                    return Value::Array(flat);
                }
            }
            v
        });
        if let Some(label) = node.get("loop_control").and_then(|lc| lc.get("label")) {
            if let Some(text) = label.as_str() {
                self.use_template(label, text, &locals)?;
            }
        }
        let own_vars = match node.get("vars") {
            Some(v) => self.vars_map(v, &locals)?,
            None => Map::new(),
        };
        let mut when = inh.when.clone();
        if let Some(w) = node.get("when") {
            when.extend(self.conds(w, &locals)?);
        }
        let register = match node.get("register") {
            Some(r) => {
                let s = self.static_str(r, "register")?;
                self.defined.insert(s.clone());
                let mut with_reg = locals.clone();
                with_reg.push(s.clone());
                locals = with_reg;
                Some(s)
            }
            None => None,
        };
        let changed_when = match node.get("changed_when") {
            Some(c) => self.conds(c, &locals)?,
            None => Vec::new(),
        };
        let failed_when = match node.get("failed_when") {
            Some(c) => self.conds(c, &locals)?,
            None => Vec::new(),
        };
        let until = match node.get("until") {
            Some(c) => self.conds(c, &locals)?,
            None => Vec::new(),
        };
        let string_list = |n: Option<&Node>| -> Result<Vec<String>> {
            Ok(match n {
                None => Vec::new(),
                Some(n) => match &n.value {
                    NodeValue::Str(s) => vec![s.clone()],
                    NodeValue::Seq(items) => items.iter().map(Node::key_string).collect(),
                    NodeValue::Null => Vec::new(),
                    _ => return Err(n.error("expected a string or a list of strings")),
                },
            })
        };
        let notify = string_list(node.get("notify"))?;
        let listen = string_list(node.get("listen"))?;
        let mut tags = inh.tags.clone();
        if let Some(t) = node.get("tags") {
            tags.extend(tag_list(t)?);
        }
        tags.sort();
        tags.dedup();
        let opt_bool = |key: &str| -> Result<Option<bool>> {
            match node.get(key) {
                Some(n) => match &n.value {
                    NodeValue::Str(s) if is_template(s) => Err(n.error(format!(
                        "`{key}` must be yes or no here (templates are not supported for it)"
                    ))),
                    _ => bool_of(n).map(Some),
                },
                None => Ok(None),
            }
        };
        let become_ = opt_bool("become")?.or(inh.become_);
        if let Some(m) = node.get("become_method").and_then(Node::as_str) {
            if m != "sudo" {
                return Err(
                    node.error(format!("become_method `{m}` is not supported; only `sudo`"))
                );
            }
        }
        let become_user = match node.get("become_user") {
            Some(u) => {
                super::load::become_user(u)?;
                Some(self.static_or_template(u, &locals)?)
            }
            None => inh.become_user.clone(),
        };
        let delegate_to = match node.get("delegate_to") {
            Some(d) => {
                let s = self.static_str(d, "delegate_to")?;
                if !matches!(s.as_str(), "localhost" | "127.0.0.1") {
                    return Err(d.error(format!(
                        "delegate_to: only `localhost` is supported, not `{s}`"
                    )));
                }
                Some(s)
            }
            None => inh.delegate_to.clone(),
        };
        let retries = match node.get("retries") {
            Some(r) => numbers::count(r, "retries", numbers::MAX_RETRIES)?,
            None if !until.is_empty() => 3,
            None => 0,
        };
        let delay = match node.get("delay") {
            Some(d) => numbers::seconds(d, "delay", numbers::MAX_DELAY_S)?,
            None => 5.0,
        };

        let scope = push_vars(&inh.scope, Map::new());
        let short = short_action(&action_name).to_string();
        // The `vars:` of an include are include params for what it includes; a block's are
        // block vars.
        let is_include = matches!(
            short.as_str(),
            "include_tasks" | "import_tasks" | "include_role" | "import_role"
        );
        let child_scope = if is_include {
            push_params(&inh.scope, own_vars.clone())
        } else {
            push_vars(&inh.scope, own_vars.clone())
        };
        let mut child = Inherit {
            when: when.clone(),
            tags: tags.clone(),
            become_,
            become_user: become_user.clone(),
            no_log: opt_bool("no_log")?.or(inh.no_log),
            ignore_errors: opt_bool("ignore_errors")?.or(inh.ignore_errors),
            check_mode: opt_bool("check_mode")?.or(inh.check_mode),
            delegate_to: delegate_to.clone(),
            run_once: opt_bool("run_once")?.or(inh.run_once),
            scope: child_scope,
            locals: locals.clone(),
        };

        let mut reads = Reads::default();
        let value = node
            .get(&action_name)
            .ok_or_else(|| node.error("internal: action vanished"))?;
        let action = match short.as_str() {
            "block" => {
                let block = self.task_list(Some(value), &child)?;
                let rescue = self.task_list(node.get("rescue"), &child)?;
                let always = self.task_list(node.get("always"), &child)?;
                Action::Block {
                    block,
                    rescue,
                    always,
                }
            }
            "include_tasks" | "import_tasks" => {
                let file_node = match &value.value {
                    NodeValue::Map(_) => value
                        .get("file")
                        .ok_or_else(|| value.error(format!("`{short}` needs `file:`")))?,
                    _ => value,
                };
                let file = self.static_str(file_node, &short)?;
                let path = self
                    .find_task_file(&file, &inh.scope.dir, inh)
                    .ok_or_else(|| file_node.error(format!("cannot find task file `{file}`")))?;
                child.scope.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let tasks = self.load_task_file(&path, &child, file_node)?;
                Action::Include { tasks }
            }
            "include_role" | "import_role" => {
                let Some(_) = value.as_map() else {
                    return Err(value.error(format!("`{short}` needs a mapping with `name:`")));
                };
                for (k, _) in value.as_map().unwrap_or_default() {
                    let key = k.key_string();
                    if ![
                        "name",
                        "tasks_from",
                        "vars_from",
                        "defaults_from",
                        "handlers_from",
                        "public",
                        "apply",
                        "allow_duplicates",
                        "rolespec_validate",
                    ]
                    .contains(&key.as_str())
                    {
                        return Err(k.error(format!("unknown `{short}` option `{key}`")));
                    }
                }
                let name_node = value
                    .get("name")
                    .ok_or_else(|| value.error(format!("`{short}` needs `name:`")))?;
                let role_name = self.static_str(name_node, "name")?;
                let tasks_from = match value.get("tasks_from") {
                    Some(t) => Some(self.static_str(t, "tasks_from")?),
                    None => None,
                };
                let (tasks, handlers, _role) = self.load_role(
                    &role_name,
                    Map::new(),
                    name_node,
                    &child,
                    tasks_from.as_deref(),
                )?;
                self.extra_handlers.extend(handlers);
                Action::Include { tasks }
            }
            "meta" => {
                let what = value.as_str().unwrap_or_default();
                match what {
                    "flush_handlers" => Action::FlushHandlers,
                    "noop" | "refresh_inventory" | "clear_facts" => Action::Noop,
                    "end_host" => Action::EndHost,
                    "end_play" => Action::EndPlay,
                    other => {
                        return Err(value.error(format!(
                            "meta `{other}` is not supported; use flush_handlers, noop, end_host or end_play"
                        )))
                    }
                }
            }
            _ => {
                let module = registry::lookup(&action_name)
                    .ok_or_else(|| action_key.error(format!("unknown module `{action_name}`")))?;
                let (args, files_read) =
                    self.module_args(module, value, node.get("args"), &locals, inh)?;
                reads.extend(files_read);
                self.defined.extend(module.facts_from_args(&args));
                for k in module.sets_facts() {
                    self.defined.insert(k.to_string());
                }
                Action::Module { module, args }
            }
        };
        let is_module = matches!(action, Action::Module { .. });
        for c in when
            .iter()
            .chain(&changed_when)
            .chain(&failed_when)
            .chain(&until)
        {
            reads.cond(self.templar, &c.expr);
        }
        if let Some(l) = &loop_ {
            reads.value(self.templar, l);
        }
        for s in loop_label.iter().chain(&become_user) {
            reads.template(self.templar, s);
        }
        if let Action::Module { module, args } = &action {
            let expr_args = module.expression_args();
            for (k, v) in &args.map {
                if expr_args.contains(&k.as_str()) {
                    reads.conds(self.templar, v);
                } else {
                    reads.value(self.templar, v);
                }
            }
        }
        Ok(Task {
            loc: node.loc.clone(),
            name,
            action,
            when: if is_module || is_include || short == "meta" {
                when
            } else {
                Vec::new()
            },
            loop_,
            loop_var,
            index_var,
            loop_label,
            register,
            notify,
            listen,
            tags,
            become_,
            become_user,
            run_once: child.run_once.unwrap_or(false),
            delegate_to,
            changed_when,
            failed_when,
            ignore_errors: child.ignore_errors.unwrap_or(false),
            no_log: child.no_log.unwrap_or(false),
            check_mode: child.check_mode,
            diff: opt_bool("diff")?,
            until,
            retries,
            delay,
            vars: Arc::new(own_vars),
            scope: if is_module { child.scope } else { scope },
            reads,
        })
    }

    fn static_or_template(&mut self, n: &Node, locals: &[String]) -> Result<String> {
        let s = n
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| n.key_string());
        self.use_template(n, &s, locals)?;
        Ok(s)
    }

    /// Turn the module's value (mapping, free-form string or `k=v` string) plus `args:` into
    /// normalized arguments, checking names and types now; with every variable the files the
    /// module renders read.
    fn module_args(
        &mut self,
        module: &'static dyn Module,
        value: &Node,
        extra: Option<&Node>,
        locals: &[String],
        inh: &Inherit,
    ) -> Result<(crate::modules::Args, Vec<String>)> {
        let mut raw: Vec<(String, Node)> = Vec::new();
        if let Some(e) = extra {
            let Some(entries) = e.as_map() else {
                return Err(e.error("`args` must be a mapping"));
            };
            raw.extend(entries.iter().map(|(k, v)| (k.key_string(), v.clone())));
        }
        match &value.value {
            NodeValue::Map(entries) => {
                raw.extend(entries.iter().map(|(k, v)| (k.key_string(), v.clone())));
            }
            NodeValue::Null => {}
            NodeValue::Str(s) | NodeValue::Unsafe(s) => match module.free_form() {
                Some(arg) => raw.push((
                    arg.to_string(),
                    Node {
                        loc: value.loc.clone(),
                        value: value.value.clone(),
                    },
                )),
                None => {
                    let parts = super::kv::split(s).map_err(|e| {
                        value.error(format!("cannot parse `key=value` arguments: {e}"))
                    })?;
                    for p in parts {
                        let Some((k, v)) = p.split_once('=') else {
                            return Err(value.error(format!(
                                "module `{}` takes `key=value` arguments or a mapping, not `{p}`",
                                module.name()
                            )));
                        };
                        raw.push((
                            k.to_string(),
                            Node {
                                loc: value.loc.clone(),
                                value: yaml::resolve_plain(v.to_string()),
                            },
                        ));
                    }
                }
            },
            _ => {
                return Err(value.error(format!(
                    "arguments of `{}` must be a mapping, not {}",
                    module.name(),
                    value.kind()
                )))
            }
        }
        let mut map = Map::new();
        for (k, v) in &raw {
            map.insert(k.clone(), v.to_json());
        }
        let loc_of = |arg: &Option<String>| -> crate::error::Location {
            arg.as_ref()
                .and_then(|a| raw.iter().rev().find(|(k, _)| k == a))
                .map_or_else(|| value.loc.clone(), |(_, n)| n.loc.clone())
        };
        let args = normalize(module.name(), module.args(), &map, true)
            .map_err(|e| Error::invalid(&loc_of(&e.arg), e.msg))?;
        let expr_args = module.expression_args();
        for (k, v) in &raw {
            let canonical = module
                .args()
                .and_then(|spec| {
                    spec.iter()
                        .find(|a| a.name == k || a.aliases.contains(&k.as_str()))
                })
                .map_or(k.as_str(), |a| a.name);
            if expr_args.contains(&canonical) {
                self.conds(v, locals)?;
            } else {
                self.use_templates_in(v, locals)?;
            }
        }
        let templated = raw.iter().any(|(_, v)| contains_template(v));
        if !templated || module.validates_templated_args() {
            module
                .validate(&args)
                .map_err(|m| Error::invalid(&value.loc, format!("{}: {m}", module.name())))?;
        }
        let dirs = search_dirs(inh, &self.playbook_dir);
        let names = module
            .check_files(&args, &dirs, self.templar)
            .map_err(|m| Error::invalid(&value.loc, format!("{}: {m}", module.name())))?;
        if !names.required.is_empty() {
            self.uses.push(super::varcheck::VarUse {
                loc: value.loc.clone(),
                names: names.required,
                locals: locals.to_vec(),
            });
        }
        Ok((args, names.all))
    }

    /// Find a task file for `include_tasks`: next to the including file, in the role's
    /// `tasks/`, then in the playbook directory.
    fn find_task_file(&self, file: &str, dir: &Path, inh: &Inherit) -> Option<std::path::PathBuf> {
        let mut cands = vec![dir.join(file)];
        if let Some(r) = &inh.scope.role {
            cands.push(r.path.join("tasks").join(file));
        }
        cands.push(self.playbook_dir.join(file));
        cands.into_iter().find(|c| c.is_file())
    }

    pub fn load_task_file(
        &mut self,
        path: &Path,
        inh: &Inherit,
        at: &Node,
    ) -> Result<Vec<super::Task>> {
        if self.stack.iter().any(|p| p == path) {
            return Err(at.error(format!(
                "{} includes itself (include cycle)",
                path.display()
            )));
        }
        self.stack.push(path.to_path_buf());
        let root = yaml::load_file_single(path)?;
        let tasks = self.task_list(Some(&root), inh)?;
        self.stack.pop();
        Ok(tasks)
    }
}

fn contains_template(n: &Node) -> bool {
    match &n.value {
        NodeValue::Str(s) => is_template(s),
        NodeValue::Seq(items) => items.iter().any(contains_template),
        NodeValue::Map(entries) => entries
            .iter()
            .any(|(k, v)| contains_template(k) || contains_template(v)),
        _ => false,
    }
}

/// Where a task's relative `src` files are looked up: its role, then the playbook directory.
pub fn search_dirs(inh: &Inherit, playbook_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    if let Some(r) = &inh.scope.role {
        dirs.push(r.path.clone());
    }
    dirs.push(playbook_dir.to_path_buf());
    dirs
}
