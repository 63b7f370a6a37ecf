//! The template environment: tera with Ansible's habits.
//!
//! - A string that is exactly one `{{ expression }}` renders to the expression's native value
//!   (a list stays a list), as Ansible does; any other string renders to a string.
//! - `when:`, `changed_when:`, `failed_when:` and `until:` are bare expressions.
//! - Undefined variables are errors. Templates are compiled once and cached; every template in
//!   a playbook is compiled (and its variables checked) before any host is contacted.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};
use tera::ast::{Expr, ExprVal, Node};
use tera::{Context, Tera};

use crate::template_filters;

/// Does this string need rendering?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// A cache of compiled templates, shared by every host.
#[derive(Default)]
pub struct Templar {
    cache: RwLock<HashMap<String, Arc<Tera>>>,
}

const NAME: &str = "t";
const NATIVE_VAR: &str = "__castellan_native";

impl Templar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compile (or fetch) the template for `src`.
    fn compiled(&self, src: &str) -> Result<Arc<Tera>, String> {
        if let Ok(cache) = self.cache.read() {
            if let Some(t) = cache.get(src) {
                return Ok(Arc::clone(t));
            }
        }
        let mut tera = Tera::default();
        template_filters::register(&mut tera);
        tera.add_raw_template(NAME, src)
            .map_err(|e| error_chain(&e))?;
        let tera = Arc::new(tera);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(src.to_string(), Arc::clone(&tera));
        }
        Ok(tera)
    }

    /// Check a template's syntax and return the root variable names it reads (for the
    /// undefined-variable check before a run). Locals (`for`, `set`) and names guarded by
    /// `is defined` or `| default(...)` are left out.
    pub fn check(&self, src: &str) -> Result<Vec<String>, String> {
        // Compile the text as written first, so syntax errors point into the user's text.
        self.compiled(src).map_err(|e| with_hint(src, e))?;
        let tera = self.compiled(&wrap_native(src).unwrap_or_else(|| src.to_string()))?;
        let tpl = tera.get_template(NAME).map_err(|e| error_chain(&e))?;
        let mut found = Vec::new();
        let mut locals: HashSet<String> = HashSet::new();
        locals.insert(NATIVE_VAR.into());
        walk_nodes(&tpl.ast, &mut locals, &mut found);
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Check a bare expression (a `when:` condition) the same way.
    pub fn check_cond(&self, expr: &str) -> Result<Vec<String>, String> {
        self.check(&cond_template(expr))
    }

    /// Render a string to a string.
    pub fn render_str(&self, src: &str, ctx: &Context) -> Result<String, String> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        let tera = self.compiled(src)?;
        tera.render(NAME, ctx).map_err(|e| error_chain(&e))
    }

    /// Render a string; a lone `{{ expr }}` gives the expression's native value.
    pub fn render_string_value(&self, src: &str, ctx: &Context) -> Result<Value, String> {
        if !is_template(src) {
            return Ok(Value::String(src.to_string()));
        }
        if let Some(native) = wrap_native(src) {
            let tera = self.compiled(&native)?;
            let json = tera.render(NAME, ctx).map_err(|e| error_chain(&e))?;
            return serde_json::from_str(&json).map_err(|e| format!("internal: {e}"));
        }
        self.render_str(src, ctx).map(Value::String)
    }

    /// Render every string inside a value.
    pub fn render_value(&self, v: &Value, ctx: &Context) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => self.render_string_value(s, ctx)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(self.render_str(k, ctx)?, self.render_value(v, ctx)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Evaluate a bare boolean expression (`when:`), Ansible style.
    pub fn eval_cond(&self, expr: &str, ctx: &Context) -> Result<bool, String> {
        let out = self.render_str(&cond_template(expr), ctx)?;
        Ok(out == "true")
    }
}

/// `{% if EXPR %}true{% else %}false{% endif %}`; an expression that is itself wrapped in
/// `{{ }}` (a common Ansible mistake that Ansible tolerates with a warning) is unwrapped.
fn cond_template(expr: &str) -> String {
    let e = expr.trim();
    let inner = e
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .filter(|s| !s.contains("{{"))
        .unwrap_or(e);
    format!("{{% if {inner} %}}true{{% else %}}false{{% endif %}}")
}

/// `{{ expr }}` alone becomes a template that prints the value as JSON.
fn wrap_native(src: &str) -> Option<String> {
    // Exactly one expression, nothing around it: "{{ x }}\n" is a string, not x.
    let inner = src.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    let inner = inner.trim_start_matches('-').trim_end_matches('-');
    Some(format!(
        "{{% set {NATIVE_VAR} = {inner} %}}{{{{ {NATIVE_VAR} | json_encode() }}}}"
    ))
}

/// Templates are tera, not Jinja2: say so when the text looks like Jinja's positional filter
/// arguments, the most common stumble for Ansible users.
fn with_hint(src: &str, err: String) -> String {
    let positional = regex::Regex::new(r"\|\s*\w+\(\s*['\x22\d\[]")
        .map(|re| re.is_match(src))
        .unwrap_or(false);
    if positional {
        format!(
            "{err}\nhint: templates use tera syntax: filter arguments are named, e.g. \
             `default(value=\"x\")`, `join(sep=\",\")`, `regex_replace(regex=\"a\", replace=\"b\")`"
        )
    } else {
        err
    }
}

/// The whole cause chain of a tera error, on one line.
pub fn error_chain(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        src = s.source();
    }
    // tera names our internal template; that name means nothing to a user.
    msg.replace("Failed to render 't': ", "")
        .replace("Failed to parse 't'", "template syntax error")
        .replace(&format!("{NATIVE_VAR} = "), "")
        .replace("while rendering 't'", "")
}

fn root_of(ident: &str) -> &str {
    let end = ident.find(['.', '[']).unwrap_or(ident.len());
    &ident[..end]
}

fn walk_nodes(nodes: &[Node], locals: &mut HashSet<String>, found: &mut Vec<String>) {
    for n in nodes {
        match n {
            Node::VariableBlock(_, e) => walk_expr(e, locals, found),
            Node::Set(_, set) => {
                walk_expr(&set.value, locals, found);
                locals.insert(set.key.clone());
            }
            Node::Forloop(_, f, _) => {
                walk_expr(&f.container, locals, found);
                let mut inner = locals.clone();
                inner.insert(f.value.clone());
                if let Some(k) = &f.key {
                    inner.insert(k.clone());
                }
                inner.insert("loop".into());
                walk_nodes(&f.body, &mut inner, found);
                if let Some(body) = &f.empty_body {
                    walk_nodes(body, locals, found);
                }
            }
            Node::If(i, _) => {
                for (_, cond, body) in &i.conditions {
                    walk_expr(cond, locals, found);
                    walk_nodes(body, locals, found);
                }
                if let Some((_, body)) = &i.otherwise {
                    walk_nodes(body, locals, found);
                }
            }
            Node::FilterSection(_, fs, _) => walk_nodes(&fs.body, locals, found),
            Node::Block(_, b, _) => walk_nodes(&b.body, locals, found),
            Node::MacroDefinition(_, m, _) => {
                let mut inner = locals.clone();
                inner.extend(m.args.keys().cloned());
                walk_nodes(&m.body, &mut inner, found);
            }
            _ => {}
        }
    }
}

fn walk_expr(e: &Expr, locals: &HashSet<String>, found: &mut Vec<String>) {
    // `x | default(...)` tolerates an undefined `x`.
    if e.filters.iter().any(|f| f.name == "default") {
        if let ExprVal::Ident(_) = e.val {
            for f in &e.filters {
                for a in f.args.values() {
                    walk_expr(a, locals, found);
                }
            }
            return;
        }
    }
    for f in &e.filters {
        for a in f.args.values() {
            walk_expr(a, locals, found);
        }
    }
    walk_val(&e.val, locals, found);
}

fn walk_val(v: &ExprVal, locals: &HashSet<String>, found: &mut Vec<String>) {
    match v {
        ExprVal::Ident(name) => {
            let root = root_of(name);
            if !root.is_empty() && !locals.contains(root) {
                found.push(root.to_string());
            }
            // Subscripts like `hostvars[item]` read `item` too.
            let mut rest = &name[root.len()..];
            while let Some(open) = rest.find('[') {
                let after = &rest[open + 1..];
                let close = after.find(']').unwrap_or(after.len());
                let inner = after[..close].trim();
                if inner
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                {
                    let r = root_of(inner);
                    if !locals.contains(r) {
                        found.push(r.to_string());
                    }
                }
                rest = &after[close.min(after.len())..];
                if rest.is_empty() {
                    break;
                }
                rest = &rest[1.min(rest.len())..];
            }
        }
        ExprVal::Math(m) => {
            walk_expr(&m.lhs, locals, found);
            walk_expr(&m.rhs, locals, found);
        }
        ExprVal::Logic(l) => {
            walk_expr(&l.lhs, locals, found);
            walk_expr(&l.rhs, locals, found);
        }
        ExprVal::Test(t) => {
            if t.name != "defined" && t.name != "undefined" {
                let root = root_of(&t.ident);
                if !locals.contains(root) {
                    found.push(root.to_string());
                }
            }
            for a in &t.args {
                walk_expr(a, locals, found);
            }
        }
        ExprVal::FunctionCall(f) => {
            for a in f.args.values() {
                walk_expr(a, locals, found);
            }
        }
        ExprVal::MacroCall(m) => {
            for a in m.args.values() {
                walk_expr(a, locals, found);
            }
        }
        ExprVal::Array(items) => {
            for i in items {
                walk_expr(i, locals, found);
            }
        }
        ExprVal::StringConcat(sc) => {
            for v in &sc.values {
                walk_val(v, locals, found);
            }
        }
        ExprVal::In(i) => {
            walk_expr(&i.lhs, locals, found);
            walk_expr(&i.rhs, locals, found);
        }
        ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
    }
}

/// Build a tera context from a variable map.
pub fn context(vars: &Map<String, Value>) -> Context {
    let mut ctx = Context::new();
    for (k, v) in vars {
        ctx.insert(k.as_str(), v);
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Context {
        Context::from_value(v).unwrap()
    }

    #[test]
    fn lone_expression_keeps_its_type() {
        let t = Templar::new();
        let c = ctx(json!({"xs": [1, 2], "n": 5, "s": "a"}));
        assert_eq!(
            t.render_string_value("{{ xs }}", &c).unwrap(),
            json!([1, 2])
        );
        assert_eq!(t.render_string_value("{{ n + 1 }}", &c).unwrap(), json!(6));
        assert_eq!(t.render_string_value("x{{ s }}", &c).unwrap(), json!("xa"));
        assert_eq!(t.render_string_value("plain", &c).unwrap(), json!("plain"));
        assert_eq!(
            t.render_string_value("{{ s }}\n", &c).unwrap(),
            json!("a\n")
        );
    }

    #[test]
    fn conditions() {
        let t = Templar::new();
        let c = ctx(json!({"r": {"rc": 0, "stdout": "hello"}, "flag": false}));
        assert!(t.eval_cond("r.rc == 0", &c).unwrap());
        assert!(t.eval_cond("'ell' in r.stdout", &c).unwrap());
        assert!(!t.eval_cond("flag", &c).unwrap());
        assert!(t.eval_cond("missing is not defined", &c).unwrap());
        assert!(t.eval_cond("{{ not flag }}", &c).unwrap());
    }

    #[test]
    fn undefined_is_an_error() {
        let t = Templar::new();
        let e = t.render_str("{{ nope }}", &ctx(json!({}))).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn referenced_vars_skip_locals_and_guards() {
        let t = Templar::new();
        let vars = t
            .check("{% for u in users %}{{ u.name }}{{ prefix }}{% endfor %}{{ x | default(value=y) }}{{ hostvars[item].a }}")
            .unwrap();
        assert_eq!(vars, vec!["hostvars", "item", "prefix", "users", "y"]);
        assert_eq!(t.check_cond("z is defined and w").unwrap(), vec!["w"]);
    }

    #[test]
    fn syntax_error_is_reported() {
        let t = Templar::new();
        assert!(t.check("{{ x | default('a') }}").is_err());
    }
}
