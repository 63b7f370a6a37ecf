//! What templates read, found when a playbook is loaded: the undefined-variable check run
//! before any host is contacted, and the variables each task reads at run time.
use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::template::Templar;

/// Variables one template or condition reads, and the names local to it (loop variables).
#[derive(Debug, Clone)]
pub struct VarUse {
    pub loc: Location,
    pub names: Vec<String>,
    pub locals: Vec<String>,
}

/// Fail with the first use of a name that nothing defines: not the inventory, the play, a
/// role, a vars file, `register`, `set_fact`, extra vars, nor a magic variable.
pub fn check(uses: &[VarUse], known: &HashSet<String>) -> Result<()> {
    for u in uses {
        for n in &u.names {
            if !known.contains(n) && !u.locals.iter().any(|l| l == n) {
                let hint = crate::modules::args::did_you_mean(n, known.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Error::invalid(
                    &u.loc,
                    format!(
                        "undefined variable `{n}`{hint}: it is not set by the inventory, the play, \
                         a role, a vars file, register, set_fact or -e"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The root names of the variables a task's own templates read (conditions, loop, label,
/// arguments, `become_user`, the files a module renders), guarded ones included: what the
/// engine must provide (`groups`, `hostvars` cost O(hosts) and are given only to tasks that
/// read them) and which variables that cannot be rendered fail the task. A property of the
/// loaded task, computed once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads(BTreeSet<String>);

impl Reads {
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// Does the task read a variable whose name starts with `prefix` (`ansible_play_`)?
    pub fn any_with_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|n| n.starts_with(prefix))
    }

    pub fn extend<I: IntoIterator<Item = String>>(&mut self, names: I) {
        self.0.extend(names);
    }

    /// A template string (its syntax was checked already: an error reads nothing).
    pub fn template(&mut self, templar: &Templar, s: &str) {
        if crate::template::is_template(s) {
            self.extend(templar.names(s).map(|n| n.all).unwrap_or_default());
        }
    }

    /// A bare expression (`when:`, `assert.that`).
    pub fn cond(&mut self, templar: &Templar, expr: &str) {
        self.extend(templar.names_cond(expr).map(|n| n.all).unwrap_or_default());
    }

    /// Every template string inside a value.
    pub fn value(&mut self, templar: &Templar, v: &Value) {
        match v {
            Value::String(s) => self.template(templar, s),
            Value::Array(items) => items.iter().for_each(|i| self.value(templar, i)),
            Value::Object(m) => m.values().for_each(|i| self.value(templar, i)),
            _ => {}
        }
    }

    /// Every expression inside a value (an expression argument: a string or a list of them).
    pub fn conds(&mut self, templar: &Templar, v: &Value) {
        match v {
            Value::String(s) => self.cond(templar, s),
            Value::Array(items) => items.iter().for_each(|i| self.conds(templar, i)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_names_are_read_too() {
        let t = Templar::new();
        let mut r = Reads::default();
        r.template(&t, "{{ groups['db'] | default(value=[]) | length }}");
        r.cond(
            &t,
            "hostvars is defined and ansible_play_hosts | length > 1",
        );
        r.value(&t, &serde_json::json!({"a": ["x", "{{ item }}"], "b": 1}));
        for n in ["groups", "hostvars", "ansible_play_hosts", "item"] {
            assert!(r.contains(n), "{n} missing from {r:?}");
        }
        assert!(r.any_with_prefix("ansible_play_"));
        assert!(!r.contains("db") && !r.contains("a"));
    }
}
