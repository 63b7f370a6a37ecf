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

use crate::{jinja, template_filters};

/// Does this string need rendering?
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The root variable names a template reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    /// Read without a guard: the template fails when one is undefined.
    pub required: Vec<String>,
    /// Every name read, those guarded by `is defined` or `| default(...)` included.
    pub all: Vec<String>,
}

impl Names {
    fn push(&mut self, name: &str) {
        self.required.push(name.to_string());
        self.all.push(name.to_string());
    }
}

/// A cache of compiled templates, shared by every host.
#[derive(Default)]
pub struct Templar {
    cache: RwLock<HashMap<(Flavor, String), Arc<Compiled>>>,
}

/// How a template's text is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Flavor {
    /// A string: renders to a string.
    Text,
    /// A lone `{{ expr }}`: renders to the expression's JSON value.
    Native,
    /// A template file (the template module): Ansible's `trim_blocks`.
    File,
}

/// A compiled template: tera's, and the Jinja2 tree it was lowered from (None for a template
/// written in tera's own syntax, which the Jinja2 parser does not accept).
struct Compiled {
    tera: Tera,
    jinja: Option<jinja::Parsed>,
}

const NAME: &str = "t";
const NATIVE_VAR: &str = "__castellan_native";

impl Templar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compile (or fetch) the template for `src`.
    fn compiled(&self, src: &str, flavor: Flavor) -> Result<Arc<Compiled>, String> {
        let key = (flavor, src.to_string());
        if let Ok(cache) = self.cache.read() {
            if let Some(t) = cache.get(&key) {
                return Ok(Arc::clone(t));
            }
        }
        if let Some(problem) = nesting_problem(src) {
            return Err(problem);
        }
        let c = Arc::new(build(src, flavor)?);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key, Arc::clone(&c));
        }
        Ok(c)
    }

    /// Check a template's syntax and return the root variable names it reads (for the
    /// undefined-variable check before a run). Locals (`for`, `set`) and names guarded by
    /// `is defined` or `| default(...)` are left out.
    pub fn check(&self, src: &str) -> Result<Vec<String>, String> {
        self.names(src).map(|n| n.required)
    }

    /// Check a bare expression (a `when:` condition) the same way.
    pub fn check_cond(&self, expr: &str) -> Result<Vec<String>, String> {
        self.check(&cond_template(expr))
    }

    /// Check a template's syntax and return the root variable names it reads: those it needs
    /// and every one it reads at all (guarded ones included).
    pub fn names(&self, src: &str) -> Result<Names, String> {
        self.names_of(src, Flavor::Text)
    }

    /// [`Templar::names`] of a template file (the template module's `src`).
    pub fn names_file(&self, src: &str) -> Result<Names, String> {
        self.names_of(src, Flavor::File)
    }

    fn names_of(&self, src: &str, flavor: Flavor) -> Result<Names, String> {
        let c = self.compiled(src, flavor)?;

        let mut found = Names::default();
        if let Some(j) = &c.jinja {
            (found.required, found.all) = j.names();
            return Ok(found);
        }
        let tpl = c.tera.get_template(NAME).map_err(|e| error_chain(&e))?;
        let mut locals: HashSet<String> = HashSet::new();
        locals.insert(NATIVE_VAR.into());
        walk_nodes(&tpl.ast, &mut locals, &mut found);
        for v in [&mut found.required, &mut found.all] {
            v.sort();
            v.dedup();
        }
        Ok(found)
    }

    /// [`Templar::names`] of a bare expression (a `when:` condition).
    pub fn names_cond(&self, expr: &str) -> Result<Names, String> {
        self.names(&cond_template(expr))
    }

    /// Render a string to a string.
    pub fn render_str(&self, src: &str, ctx: &Context) -> Result<String, String> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        let c = self.compiled(src, Flavor::Text)?;
        c.tera.render(NAME, ctx).map_err(|e| error_chain(&e))
    }

    /// Render a template file as Ansible's template module does (`trim_blocks`, trailing
    /// newline kept).
    pub fn render_template_file(&self, src: &str, ctx: &Context) -> Result<String, String> {
        let c = self.compiled(src, Flavor::File)?;
        c.tera.render(NAME, ctx).map_err(|e| error_chain(&e))
    }

    /// Render a string; a lone `{{ expr }}` gives the expression's native value.
    pub fn render_string_value(&self, src: &str, ctx: &Context) -> Result<Value, String> {
        if !is_template(src) {
            return Ok(Value::String(src.to_string()));
        }
        // Jinja2 drops one line break at the end of a template; Ansible gives it back to text.
        let body = src
            .strip_suffix("\r\n")
            .or_else(|| src.strip_suffix('\n'))
            .unwrap_or(src);
        let c = self.compiled(body, Flavor::Native)?;
        let out = c.tera.render(NAME, ctx).map_err(|e| error_chain(&e))?;
        if c.jinja.is_none() {
            // tera's own syntax: the old rule (a lone `{{ }}` is its JSON value).
            if wrap_native(body).is_some() && body.len() == src.len() {
                return serde_json::from_str(&out).map_err(|e| format!("internal: {e}"));
            }
            return self.render_str(src, ctx).map(Value::String);
        }
        jinja::native(&out, &src[body.len()..])
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
        match out.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            // ansible-core 2.19 refuses a conditional whose value is a list or dict.
            kind => Err(format!(
                "conditional `{}` was derived from a value of type '{kind}': conditionals must \
                 have a boolean result",
                expr.trim()
            )),
        }
    }
}

/// Deepest nesting of brackets inside a tag, and of blocks (`if`, `for`...), a template may have:
/// tera's parser recurses once per level, and a few thousand levels overflow the stack.
pub const MAX_TEMPLATE_NESTING: usize = 64;
/// Most operators in one tag: tera nests `a + b + c ...` one level per operator, and some
/// thousands overflow the stack too.
pub const MAX_TEMPLATE_OPERATORS: usize = 512;

/// Too deep a template, found by a scan that never recurses; None when it is fine.
fn nesting_problem(src: &str) -> Option<String> {
    const OPENERS: [&str; 6] = ["if", "for", "macro", "filter", "block", "raw"];
    let b = src.as_bytes();
    let (mut i, mut blocks) = (0, 0usize);
    let too_deep = |what: &str| {
        Some(format!(
            "template syntax error: {what} nested more than {MAX_TEMPLATE_NESTING} levels deep"
        ))
    };
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let kind = b[i + 1];
        let close: &[u8] = match kind {
            b'{' => b"}}",
            b'%' => b"%}",
            _ => b"#}",
        };
        let start = i + 2;
        let mut j = start;
        let mut quote: Option<u8> = None;
        let mut brackets = 0usize;
        let mut operators = 0usize;
        let mut word = 0usize;
        while j < b.len() {
            let c = b[j];
            if quote.is_none() && kind != b'#' {
                if c.is_ascii_alphanumeric() || c == b'_' {
                    if word == 0 {
                        word = j;
                    }
                } else if word > 0 {
                    if matches!(&b[word..j], b"and" | b"or" | b"not" | b"in" | b"is") {
                        operators += 1;
                    }
                    word = 0;
                }
                if b"+-*/%<>=!".contains(&c) {
                    operators += 1;
                }
                if operators > MAX_TEMPLATE_OPERATORS {
                    return Some(format!(
                        "template syntax error: more than {MAX_TEMPLATE_OPERATORS} operators in one tag"
                    ));
                }
            }
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if kind == b'#' => {}
                None => match c {
                    b'"' | b'\'' | b'`' => quote = Some(c),
                    b'(' | b'[' | b'{' => {
                        brackets += 1;
                        if brackets > MAX_TEMPLATE_NESTING {
                            return too_deep("brackets are");
                        }
                    }
                    b')' | b']' | b'}' if brackets > 0 => brackets -= 1,
                    _ => {}
                },
            }
            if quote.is_none() && brackets == 0 && b[j..].starts_with(close) {
                break;
            }
            j += 1;
        }
        if kind == b'%' {
            let body = String::from_utf8_lossy(&b[start..j.min(b.len())]);
            let word = body
                .trim_start_matches('-')
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            if OPENERS.contains(&word.as_str()) {
                blocks += 1;
                if blocks > MAX_TEMPLATE_NESTING {
                    return too_deep("blocks are");
                }
            } else if word.starts_with("end") {
                blocks = blocks.saturating_sub(1);
            }
        }
        i = j + 2;
    }
    None
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
    format!(
        "{{% set __jx_cond = {inner} %}}{{% if __jx_cond is mapping %}}dict\
         {{% elif __jx_cond is sequence and __jx_cond is not string %}}list\
         {{% elif __jx_cond %}}true{{% else %}}false{{% endif %}}"
    )
}

/// A template file's `#jinja2:` first line (Ansible's per-template Jinja2 options, e.g.
/// `#jinja2: trim_blocks:True, lstrip_blocks:True`): the source with that line turned into a
/// comment, and whether it asks for `lstrip_blocks`.
fn jinja_header(src: &str) -> Option<(String, bool)> {
    let rest = src.strip_prefix("#jinja2:")?;
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let options = rest[..line_end].trim_end_matches('\r');
    if options.contains("#}") {
        return None;
    }
    let lstrip = options.split(',').any(|kv| {
        let mut it = kv.splitn(2, ':');
        let key = it.next().unwrap_or("").trim();
        let value = it.next().unwrap_or("").trim().trim_matches(['"', '\'']);
        key == "lstrip_blocks" && value.eq_ignore_ascii_case("true")
    });
    let comment = format!("{{#jinja2:{options}#}}");
    Some((format!("{comment}{}", &rest[options.len()..]), lstrip))
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

/// Compile a template: Jinja2 (Ansible's dialect) parsed, validated and lowered onto tera; a
/// template the Jinja2 parser refuses but tera accepts (written in tera's own syntax, as
/// castellan's templates were before issue 16) is compiled as it is.
fn build(src: &str, flavor: Flavor) -> Result<Compiled, String> {
    let mut tera = Tera::default();
    jinja::runtime::register(&mut tera);
    template_filters::lookups::set_template_renderer(render_template_lookup);
    template_filters::register(&mut tera);
    // A template file's first line may set Jinja2 options (`#jinja2: lstrip_blocks: True`); it
    // becomes a comment (same lines, so positions hold) that trim_blocks removes with its line
    // break.
    let header = (flavor == Flavor::File)
        .then(|| jinja_header(src))
        .flatten();
    let lstrip_blocks = header.as_ref().is_some_and(|(_, lstrip)| *lstrip);
    let src = header.as_ref().map_or(src, |(s, _)| s.as_str());
    // Ansible's templating sets trim_blocks everywhere, not only in template files.
    let parsed = match jinja::template::parse_with(src, true, lstrip_blocks) {
        Ok(nodes) => nodes,
        Err(jerr) => {
            let tera_src = match flavor {
                Flavor::Native => wrap_native(src).unwrap_or_else(|| src.to_string()),
                // Jinja's trim_blocks, as the template module did before the Jinja2 parser.
                Flavor::File => src.replace("%}\r\n", "%}").replace("%}\n", "%}"),
                Flavor::Text => src.to_string(),
            };
            return match tera.add_raw_template(NAME, &tera_src) {
                Ok(()) => Ok(Compiled { tera, jinja: None }),
                Err(_) => Err(format!("template syntax error: {}", jerr.render(src))),
            };
        }
    };
    jinja::check::nodes(&parsed).map_err(|e| e.render(src))?;
    let parsed = jinja::Parsed { nodes: parsed };
    let output = if flavor == Flavor::Native {
        jinja::Output::Native
    } else {
        jinja::Output::Text
    };
    let lowered = parsed.lower(output).map_err(|e| e.render(src))?;
    tera.add_raw_template(NAME, &lowered).map_err(|e| {
        format!(
            "internal: the lowered template does not compile: {}",
            error_chain(&e)
        )
    })?;
    Ok(Compiled {
        tera,
        jinja: Some(parsed),
    })
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

fn walk_nodes(nodes: &[Node], locals: &mut HashSet<String>, found: &mut Names) {
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

fn walk_expr(e: &Expr, locals: &HashSet<String>, found: &mut Names) {
    // `x | default(...)` tolerates an undefined `x`.
    if e.filters.iter().any(|f| f.name == "default") {
        if let ExprVal::Ident(_) = e.val {
            for f in &e.filters {
                for a in f.args.values() {
                    walk_expr(a, locals, found);
                }
            }
            let mut guarded = Names::default();
            walk_val(&e.val, locals, &mut guarded);
            found.all.extend(guarded.all);
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

fn walk_val(v: &ExprVal, locals: &HashSet<String>, found: &mut Names) {
    match v {
        ExprVal::Ident(name) => {
            let root = root_of(name);
            if !root.is_empty() && !locals.contains(root) {
                found.push(root);
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
                        found.push(r);
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
            let root = root_of(&t.ident);
            if !locals.contains(root) {
                if t.name != "defined" && t.name != "undefined" {
                    found.push(root);
                } else {
                    found.all.push(root.to_string());
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

/// How `lookup('template', ...)` renders a file's text (the filter library sits below this
/// layer and is handed this function).
fn render_template_lookup(src: &str, vars: &Value) -> Result<String, String> {
    let empty = Map::new();
    Templar::new().render_template_file(src, &context(vars.as_object().unwrap_or(&empty)))
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
    fn template_lookup_renders_through_the_templar() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/t.j2"), "port={{ port }}").unwrap();
        let c = ctx(json!({"playbook_dir": dir.path().to_string_lossy(), "port": 5432}));
        // The lowering hands the template's variables to the lookup (`__ctx`).
        let src = "{{ lookup('template', 't.j2') }}";
        assert_eq!(Templar::new().render_str(src, &c).unwrap(), "port=5432");
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
    fn deep_nesting_is_refused_without_recursion() {
        let t = Templar::new();
        let deep = format!("{{{{ {}x{} }}}}", "(".repeat(5000), ")".repeat(5000));
        let e = t.check(&deep).unwrap_err();
        assert!(e.contains("nested more than 64 levels"), "{e}");
        let blocks = "{% if x %}".repeat(5000) + &"{% endif %}".repeat(5000);
        assert!(t.check(&blocks).unwrap_err().contains("blocks are nested"));
        let chain = format!("{{{{ {} }}}}", vec!["x"; 8000].join(" + "));
        assert!(t
            .check(&chain)
            .unwrap_err()
            .contains("more than 512 operators"));
        let chain = format!("{{% if {} %}}y{{% endif %}}", vec!["x"; 8000].join(" and "));
        assert!(t
            .check(&chain)
            .unwrap_err()
            .contains("more than 512 operators"));
        // Brackets in strings and text outside tags do not count; moderate nesting is fine.
        let ok = format!("{}{{{{ \"{}\" ~ x }}}}", "(".repeat(500), "(".repeat(500));
        assert!(t.check(&ok).is_ok(), "{:?}", t.check(&ok));
        let ok = format!("{{{{ {}x{} + 1 }}}}", "(".repeat(60), ")".repeat(60));
        assert!(t.check(&ok).is_ok(), "{:?}", t.check(&ok));
        assert!(t
            .check_cond(&format!("{}x{} == 1", "(".repeat(60), ")".repeat(60)))
            .is_ok());
    }

    #[test]
    fn syntax_error_is_reported() {
        let t = Templar::new();
        assert!(t.check("{{ x | default('a') }}").is_ok());
        assert!(t.check("{{ x | default('a' }}").is_err());
    }

    /// Issue 16, acceptance 3: whatever the checks before a run accept (every filter, test,
    /// function and lookup named in `template_filters::signatures`, called with its required
    /// arguments) is implemented: rendering it never fails because the name is missing.
    #[test]
    fn every_name_the_checks_accept_is_implemented() {
        use crate::template_filters::signatures::{self, Kind};
        let t = Templar::new();
        let c = ctx(json!({"x": "a"}));
        let args = |n: usize| vec!["'1'"; n].join(", ");
        let mut tried = 0;
        let mut missing = Vec::new();
        for kind in [Kind::Filter, Kind::Test, Kind::Function, Kind::Lookup] {
            for sig in signatures::table(kind) {
                if sig.name.starts_with("__") {
                    continue;
                }
                let a = args(sig.required);
                let src = match kind {
                    Kind::Filter => format!("{{{{ x | {}({a}) }}}}", sig.name),
                    Kind::Test => format!("{{{{ x is {}({a}) }}}}", sig.name),
                    Kind::Function => format!("{{{{ {}({a}) }}}}", sig.name),
                    Kind::Lookup => {
                        let sep = if a.is_empty() { "" } else { ", " };
                        format!("{{{{ lookup('{}'{sep}{a}) }}}}", sig.name)
                    }
                };
                if let Err(e) = t.check(&src) {
                    // A name the checks refuse cannot reach a run: nothing to prove.
                    assert!(
                        !(e.contains("unknown") && e.contains(&format!("`{}`", sig.name))),
                        "{kind:?} {} is in the signatures but the check calls it unknown: {e}",
                        sig.name
                    );
                    continue;
                }
                tried += 1;
                if let Err(e) = t.render_str(&src, &c) {
                    if e.contains("not found") && e.contains(sig.name)
                        || e.contains(&format!("lookup plugin '{}' not found", sig.name))
                    {
                        missing.push(format!("{kind:?} {}: {e}", sig.name));
                    }
                }
            }
        }
        assert!(tried > 200, "only {tried} names tried");
        assert!(
            missing.is_empty(),
            "accepted but not implemented:\n{}",
            missing.join("\n")
        );
    }
}
