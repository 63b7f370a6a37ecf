//! Lowering onto tera (see the contract in ARCHITECTURE.md, "Jinja2 on tera"): every Jinja2
//! expression becomes a sequence of tera `{% set %}` statements over simple operands (names,
//! literals, temporaries `__jxN`), so that filters, tests, subscripts and attributes apply to
//! anything; `and`, `or`, inline `if` and chained comparisons stay lazy (`{% if %}` blocks).
use super::ast::{Args, BinOp, CmpOp, Expr, ExprKind, For, Node};
use super::JinjaError;
use crate::template_filters::signatures;

/// What a lowered expression is, in tera.
#[derive(Debug, Clone)]
enum V {
    /// A name with attributes and subscripts (`a.b["c"][0]`): tera's tests, subscripts and
    /// `default` apply to it.
    Path(String),
    /// A string, number or boolean literal.
    Lit(String),
    /// Any other tera expression, valid as the value of `set` or of a keyword argument.
    Complex(String),
}

struct Loop {
    list: String,
    len: String,
}

pub struct Lowering {
    out: String,
    n: usize,
    loops: Vec<Loop>,
    native: bool,
    /// Inside the operand of `default`, `defined` or `undefined`: a missing object of a
    /// subscript is the undefined value, not an error (Ansible's undefined chains).
    guard: usize,
}

/// Around each output of a [`Output::Native`] template: start, JSON value, its `str()`, end.
pub const MARK: [char; 3] = ['\u{E000}', '\u{E001}', '\u{E002}'];

/// How a template is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text: every `{{ e }}` prints Python's `str(e)`.
    Text,
    /// Every output marked with [`MARK`]: one output alone is a value (its JSON), else the
    /// caller joins the text and the `str()` parts (see `jinja::native`).
    Native,
}

/// Lower a parsed template to tera source.
pub fn lower(nodes: &[Node], output: Output) -> Result<String, JinjaError> {
    let mut l = Lowering {
        out: String::new(),
        n: 0,
        loops: Vec::new(),
        native: output == Output::Native,
        guard: 0,
    };
    l.nodes(nodes)?;
    Ok(l.out)
}

/// A tera string literal for `s`: a quote it does not contain, or a `~` concatenation.
fn tera_str(s: &str) -> V {
    for q in ['"', '\'', '`'] {
        if !s.contains(q) {
            return V::Lit(format!("{q}{s}{q}"));
        }
    }
    // Every quote is used: cut the text into pieces that each lack one of them.
    let mut parts = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if c == '"' {
            if !cur.is_empty() {
                parts.push(format!("\"{cur}\""));
                cur.clear();
            }
            parts.push("'\"'".to_string());
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        parts.push(format!("\"{cur}\""));
    }
    V::Complex(parts.join(" ~ "))
}

fn norm_name(name: &str) -> String {
    let mut n = name;
    for p in [
        "ansible.builtin.",
        "ansible.utils.",
        "community.general.",
        "ansible.netcommon.",
        "ansible.legacy.",
    ] {
        if let Some(rest) = n.strip_prefix(p) {
            n = rest;
        }
    }
    if n == "d" {
        "default".into()
    } else {
        n.to_string()
    }
}

/// A filter or test name as tera will know it.
pub fn tera_name(name: &str) -> String {
    norm_name(name)
}

impl Lowering {
    fn temp(&mut self) -> String {
        self.n += 1;
        format!("__jx{}", self.n)
    }

    fn set(&mut self, name: &str, value: &str) {
        self.out.push_str(&format!("{{% set {name} = {value} %}}"));
    }

    fn nodes(&mut self, nodes: &[Node]) -> Result<(), JinjaError> {
        for n in nodes {
            self.node(n)?;
        }
        Ok(())
    }

    fn text(&mut self, t: &str) {
        if t.contains("{{") || t.contains("{%") || t.contains("{#") {
            self.out.push_str(&format!("{{% raw %}}{t}{{% endraw %}}"));
        } else {
            self.out.push_str(t);
        }
    }

    fn node(&mut self, n: &Node) -> Result<(), JinjaError> {
        match n {
            Node::Text(t) | Node::Raw(t) => self.text(t),
            Node::Output(e) => {
                let a = self.atom(e)?;
                if self.native {
                    let [m0, m1, m2] = MARK;
                    self.out.push_str(&format!(
                        "{m0}{{{{ {a} | json_encode() }}}}{m1}{{{{ {a} | __jx_str }}}}{m2}"
                    ));
                } else {
                    self.out.push_str(&format!("{{{{ {a} | __jx_str }}}}"));
                }
            }
            Node::If(branches, otherwise) => {
                let mut opened = 0;
                for (k, (cond, body)) in branches.iter().enumerate() {
                    if k > 0 {
                        self.out.push_str("{% else %}");
                    }
                    let c = self.cond(cond)?;
                    self.out.push_str(&format!("{{% if {c} %}}"));
                    opened += 1;
                    self.nodes(body)?;
                }
                if let Some(body) = otherwise {
                    self.out.push_str("{% else %}");
                    self.nodes(body)?;
                }
                self.out.push_str(&"{% endif %}".repeat(opened));
            }
            Node::For(f) => self.for_loop(f)?,
            Node::Set(name, e) | Node::SetGlobal(name, e) => {
                let v = self.val(e)?;
                let kw = if matches!(n, Node::Set(..)) {
                    "set"
                } else {
                    "set_global"
                };
                self.out
                    .push_str(&format!("{{% {kw} {name} = {} %}}", text(&v)));
            }
            Node::SetBlock(..) => {
                return Err(JinjaError::new(
                    0,
                    "a block `{% set %}` is not supported in castellan templates",
                ));
            }
            Node::Block(body) => self.nodes(body)?,
            Node::Break => self.out.push_str("{% break %}"),
            Node::Continue => self.out.push_str("{% continue %}"),
        }
        Ok(())
    }

    fn for_loop(&mut self, f: &For) -> Result<(), JinjaError> {
        let it = self.atom(&f.iter)?;
        let list = self.temp();
        let helper = if f.targets.len() > 1 {
            "__jx_pairs"
        } else {
            "__jx_iter"
        };
        self.set(&list, &format!("{helper}(a0={it})"));
        let var = if f.targets.len() > 1 {
            format!("{}P", self.temp())
        } else {
            f.targets[0].clone()
        };
        let unpack = |out: &mut String| {
            if f.targets.len() > 1 {
                for (k, t) in f.targets.iter().enumerate() {
                    out.push_str(&format!("{{% set {t} = {var}[{k}] %}}"));
                }
            }
        };
        if let Some(cond) = &f.cond {
            // Jinja filters before counting: build the filtered list first.
            let kept = self.temp();
            self.out.push_str(&format!(
                "{{% set_global {kept} = [] %}}{{% for {var} in {list} %}}"
            ));
            unpack(&mut self.out);
            let c = self.cond(cond)?;
            self.out.push_str(&format!(
                "{{% if {c} %}}{{% set_global {kept} = {kept} | concat(with=[{var}]) %}}{{% endif %}}{{% endfor %}}"
            ));
            self.set(&list, &kept);
        }
        let len = self.temp();
        self.set(&len, &format!("{list} | length"));
        self.out.push_str(&format!("{{% for {var} in {list} %}}"));
        unpack(&mut self.out);
        self.loops.push(Loop { list, len });
        let body = self.nodes(&f.body);
        self.loops.pop();
        body?;
        if let Some(other) = &f.otherwise {
            self.out.push_str("{% else %}");
            self.nodes(other)?;
        }
        self.out.push_str("{% endfor %}");
        Ok(())
    }

    /// A condition for tera's `{% if %}`.
    fn cond(&mut self, e: &Expr) -> Result<String, JinjaError> {
        self.atom(e)
    }

    /// An operand: a path or a literal (anything else goes through a temporary).
    fn atom(&mut self, e: &Expr) -> Result<String, JinjaError> {
        Ok(match self.val(e)? {
            V::Path(p) => p,
            V::Lit(l) => l,
            V::Complex(c) => {
                let t = self.temp();
                self.set(&t, &c);
                t
            }
        })
    }

    /// A path (tests, subscripts and attributes need one).
    fn path(&mut self, e: &Expr) -> Result<String, JinjaError> {
        Ok(match self.val(e)? {
            V::Path(p) => p,
            V::Lit(c) | V::Complex(c) => {
                let t = self.temp();
                self.set(&t, &c);
                t
            }
        })
    }

    /// The object of a subscript: under a guard, a missing name or attribute is the undefined
    /// value.
    fn guarded_path(&mut self, e: &Expr) -> Result<String, JinjaError> {
        match self.val(e)? {
            V::Path(p) if self.guard > 0 => {
                let t = self.temp();
                let what = match tera_str(&p) {
                    V::Lit(l) => l,
                    _ => "\"a variable\"".into(),
                };
                self.set(&t, &format!("{p} | default(value=__jx_undef(a0={what}))"));
                Ok(t)
            }
            V::Path(p) => Ok(p),
            other => Ok(self.bind(other)),
        }
    }

    /// `a0=.., a1=.., k=..`
    fn args(&mut self, args: &Args) -> Result<Vec<String>, JinjaError> {
        let mut out = Vec::new();
        for (k, a) in args.pos.iter().enumerate() {
            out.push(format!("a{k}={}", self.atom(a)?));
        }
        for (k, a) in &args.kw {
            out.push(format!("{k}={}", self.atom(a)?));
        }
        Ok(out)
    }

    fn call(name: &str, args: &[String]) -> String {
        format!("{name}({})", args.join(", "))
    }

    fn val(&mut self, e: &Expr) -> Result<V, JinjaError> {
        Ok(match &e.kind {
            ExprKind::Str(s) => tera_str(s),
            ExprKind::Int(n) => V::Lit(n.to_string()),
            ExprKind::Float(f) => {
                let s = f.to_string();
                V::Lit(if s.contains('.') { s } else { format!("{s}.0") })
            }
            ExprKind::Bool(b) => V::Lit(b.to_string()),
            ExprKind::None => V::Complex("__jx_none()".into()),
            ExprKind::Name(n) => V::Path(n.clone()),
            ExprKind::List(items) => {
                let mut parts = Vec::new();
                for i in items {
                    parts.push(self.atom(i)?);
                }
                V::Complex(format!("[{}]", parts.join(", ")))
            }
            ExprKind::Dict(items) => {
                let mut parts = Vec::new();
                for (k, (key, v)) in items.iter().enumerate() {
                    parts.push(format!("k{k}={}", self.atom(key)?));
                    parts.push(format!("v{k}={}", self.atom(v)?));
                }
                V::Complex(Self::call("__jx_dict", &parts))
            }
            ExprKind::Attr(obj, attr) => {
                if let (ExprKind::Name(n), Some(lp)) = (&obj.kind, self.loops.last()) {
                    if n == "loop" {
                        let (list, len) = (lp.list.clone(), lp.len.clone());
                        return self.loop_attr(attr, e.pos, &list, len);
                    }
                }
                let p = self.path(obj)?;
                if attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    V::Path(format!("{p}.{attr}"))
                } else {
                    V::Complex(format!("__jx_getitem(obj={p}, key=\"{attr}\")"))
                }
            }
            ExprKind::Item(obj, key) => {
                if let ExprKind::Str(s) = &key.kind {
                    let p = self.path(obj)?;
                    if !s.contains('"') {
                        return Ok(V::Path(format!("{p}[\"{s}\"]")));
                    }
                    if !s.contains('\'') {
                        return Ok(V::Path(format!("{p}['{s}']")));
                    }
                }
                let p = self.guarded_path(obj)?;
                let guard = std::mem::take(&mut self.guard);
                let k = self.val(key);
                self.guard = guard;
                match k? {
                    V::Path(k) => V::Path(format!("{p}[{k}]")),
                    other => {
                        let k = match other {
                            V::Lit(l) => l,
                            V::Complex(c) => {
                                let t = self.temp();
                                self.set(&t, &c);
                                t
                            }
                            V::Path(k) => k,
                        };
                        V::Complex(format!("__jx_getitem(obj={p}, key={k})"))
                    }
                }
            }
            ExprKind::Slice(obj, parts) => {
                let mut args = vec![format!("obj={}", self.atom(obj)?)];
                for (name, part) in ["start", "stop", "step"].iter().zip(parts.iter()) {
                    if let Some(p) = part {
                        args.push(format!("{name}={}", self.atom(p)?));
                    }
                }
                V::Complex(Self::call("__jx_slice", &args))
            }
            ExprKind::Call(callee, args) => self.call_expr(callee, args, e.pos)?,
            ExprKind::Filter(operand, name, args) => self.filter(operand, name, args)?,
            ExprKind::Test(operand, name, args, negated) => {
                let guarded = matches!(norm_name(name).as_str(), "defined" | "undefined");
                self.guard += usize::from(guarded);
                let p = self.path(operand);
                self.guard -= usize::from(guarded);
                let p = p?;
                let name = norm_name(name);
                let mut list = Vec::new();
                for a in &args.pos {
                    list.push(self.atom(a)?);
                }
                // tera's tests take positional arguments only: keywords go to their place in
                // the Python signature (missing ones in between as None).
                if !args.kw.is_empty() {
                    let params = signatures::test(&name).map_or(&[][..], |s| s.params);
                    let place = |k: &str| params.iter().position(|p| *p == k);
                    let mut slots: Vec<Option<String>> = list.drain(..).map(Some).collect();
                    for (k, a) in &args.kw {
                        let at = place(k).unwrap_or(slots.len().max(params.len()));
                        if slots.len() <= at {
                            slots.resize(at + 1, None);
                        }
                        slots[at] = Some(self.atom(a)?);
                    }
                    list = slots
                        .into_iter()
                        .map(|s| s.unwrap_or_else(|| "__jx_none()".into()))
                        .collect();
                }
                let not = if *negated { "not " } else { "" };
                if list.is_empty() {
                    V::Complex(format!("{p} is {not}{name}"))
                } else {
                    V::Complex(format!("{p} is {not}{name}({})", list.join(", ")))
                }
            }
            ExprKind::Not(inner) => V::Complex(format!("not {}", self.atom(inner)?)),
            ExprKind::Neg(inner) => V::Complex(format!("0 - {}", self.atom(inner)?)),
            ExprKind::Bin(op, l, r) => self.bin(*op, l, r)?,
            ExprKind::Compare(first, ops) => self.compare(first, ops)?,
            ExprKind::Cond(cond, then, otherwise) => {
                let t = self.temp();
                let c = self.cond(cond)?;
                self.out.push_str(&format!("{{% if {c} %}}"));
                let a = self.val(then)?;
                self.set(&t, &text(&a));
                self.out.push_str("{% else %}");
                let b = match otherwise {
                    Some(o) => self.val(o)?,
                    None => V::Lit("\"\"".into()),
                };
                self.set(&t, &text(&b));
                self.out.push_str("{% endif %}");
                V::Path(t)
            }
        })
    }

    fn loop_attr(
        &mut self,
        attr: &str,
        pos: usize,
        list: &str,
        len: String,
    ) -> Result<V, JinjaError> {
        Ok(match attr {
            "depth" => V::Lit("1".into()),
            "depth0" => V::Lit("0".into()),
            "previtem" | "nextitem" => {
                let (edge, step) = if attr == "previtem" {
                    ("first", "- 1")
                } else {
                    ("last", "+ 1")
                };
                let (t, k) = (self.temp(), self.temp());
                self.out.push_str(&format!(
                    "{{% if loop.{edge} %}}{{% set {t} = __jx_undef(a0=\"loop.{attr}\") %}}{{% else %}}\
                     {{% set {k} = loop.index0 {step} %}}{{% set {t} = __jx_getitem(obj={list}, key={k}) %}}{{% endif %}}"
                ));
                V::Path(t)
            }
            "index" | "index0" | "first" | "last" => V::Path(format!("loop.{attr}")),
            "length" => V::Path(len),
            "revindex" => V::Complex(format!("{len} - loop.index0")),
            "revindex0" => V::Complex(format!("{len} - loop.index")),
            other => {
                return Err(JinjaError::new(
                    pos,
                    format!("`loop.{other}` is not supported"),
                ));
            }
        })
    }

    fn call_expr(&mut self, callee: &Expr, args: &Args, pos: usize) -> Result<V, JinjaError> {
        match &callee.kind {
            ExprKind::Name(f) => {
                let name = norm_name(f);
                let mut a = self.args(args)?;
                if matches!(name.as_str(), "lookup" | "query" | "q") {
                    // Lookups read the template's variables (`vars`, `role_path`, ...).
                    a.push("__ctx=__tera_context".into());
                }
                Ok(V::Complex(Self::call(&name, &a)))
            }
            ExprKind::Attr(obj, m) => {
                if let (ExprKind::Name(n), Some(_)) = (&obj.kind, self.loops.last()) {
                    if n == "loop" && m == "cycle" {
                        let mut items = Vec::new();
                        for a in &args.pos {
                            items.push(self.atom(a)?);
                        }
                        let arr = self.temp();
                        self.set(&arr, &format!("[{}]", items.join(", ")));
                        let k = self.temp();
                        self.set(&k, &format!("loop.index0 % {}", items.len().max(1)));
                        return Ok(V::Path(format!("{arr}[{k}]")));
                    }
                }
                let o = self.atom(obj)?;
                let mut a = vec![format!("obj={o}"), format!("name=\"{m}\"")];
                a.extend(self.args(args)?);
                Ok(V::Complex(Self::call("__jx_method", &a)))
            }
            _ => Err(JinjaError::new(
                pos,
                "only functions and methods can be called",
            )),
        }
    }

    fn filter(&mut self, operand: &Expr, name: &str, args: &Args) -> Result<V, JinjaError> {
        let name = norm_name(name);
        if name == "default" {
            let kw = |k: &str| args.kw.iter().find(|(n, _)| n == k).map(|(_, v)| v);
            let dflt = args
                .pos
                .first()
                .or_else(|| kw("default_value"))
                .or_else(|| kw("value"));
            let boolean = args.pos.get(1).or_else(|| kw("boolean"));
            self.guard += 1;
            let v = self.val(operand);
            self.guard -= 1;
            let v = v?;
            let e = match v {
                // An undefined name becomes the undefined value for `__jx_default`.
                V::Path(p) => {
                    let t = self.temp();
                    let what = match tera_str(&p) {
                        V::Lit(l) => l,
                        _ => "\"a variable\"".into(),
                    };
                    self.set(&t, &format!("{p} | default(value=__jx_undef(a0={what}))"));
                    t
                }
                V::Lit(l) => {
                    let t = self.temp();
                    self.set(&t, &l);
                    t
                }
                other => self.bind(other),
            };
            let b = match boolean {
                Some(b) => self.atom(b)?,
                None => "false".into(),
            };
            // The default is evaluated only when it is used (an error inside it, such as a
            // method of the wrong type, does not matter when the value is defined: Ansible
            // 2.19 gives the value).
            let t = self.temp();
            self.out
                .push_str(&format!("{{% if {e} is undefined or {b} %}}"));
            let d = match dflt {
                Some(d) => self.atom(d)?,
                None => "\"\"".to_string(),
            };
            self.set(&t, &format!("__jx_default(a0={e}, a1={d}, a2={b})"));
            self.out.push_str("{% else %}");
            self.set(&t, &e);
            self.out.push_str("{% endif %}");
            return Ok(V::Path(t));
        }
        if self.guard > 0 {
            // Under `default`/`defined`, an undefined operand flows through the filter to the
            // guard (Ansible: `(x.missing | first).y | default('n/a')` is 'n/a').
            let o = self.guarded_path(operand)?;
            let guard = std::mem::take(&mut self.guard);
            let list = self.args(args);
            self.guard = guard;
            let list = list?;
            let call = if list.is_empty() {
                format!("{o} | {name}")
            } else {
                format!("{o} | {}", Self::call(&name, &list))
            };
            let t = self.temp();
            self.out.push_str(&format!("{{% if {o} is undefined %}}"));
            self.set(&t, &o);
            self.out.push_str("{% else %}");
            self.set(&t, &call);
            self.out.push_str("{% endif %}");
            return Ok(V::Path(t));
        }
        let a = self.atom(operand)?;
        let list = self.args(args)?;
        Ok(V::Complex(if list.is_empty() {
            format!("{a} | {name}")
        } else {
            format!("{a} | {}", Self::call(&name, &list))
        }))
    }

    /// A value as an operand.
    fn bind(&mut self, v: V) -> String {
        match v {
            V::Path(p) | V::Lit(p) => p,
            V::Complex(c) => {
                let t = self.temp();
                self.set(&t, &c);
                t
            }
        }
    }

    fn bin(&mut self, op: BinOp, l: &Expr, r: &Expr) -> Result<V, JinjaError> {
        if matches!(op, BinOp::And | BinOp::Or) {
            let t = self.temp();
            let a = self.val(l)?;
            self.set(&t, &text(&a));
            let guard = if op == BinOp::And { "" } else { "not " };
            self.out.push_str(&format!("{{% if {guard}{t} %}}"));
            let b = self.val(r)?;
            self.set(&t, &text(&b));
            self.out.push_str("{% endif %}");
            return Ok(V::Path(t));
        }
        let a = self.atom(l)?;
        let b = self.atom(r)?;
        let helper = |f: &str| V::Complex(format!("{f}(a0={a}, a1={b})"));
        Ok(match op {
            BinOp::Add => helper("__jx_add"),
            BinOp::FloorDiv => helper("__jx_floordiv"),
            BinOp::Mod => helper("__jx_mod"),
            BinOp::Pow => helper("__jx_pow"),
            BinOp::Concat => helper("__jx_concat"),
            BinOp::Sub => V::Complex(format!("{a} - {b}")),
            BinOp::Mul => V::Complex(format!("{a} * {b}")),
            BinOp::Div => V::Complex(format!("{a} / {b}")),
            // Lowered lazily at the top of this function.
            BinOp::And | BinOp::Or => V::Lit("false".into()),
        })
    }

    fn compare(&mut self, first: &Expr, ops: &[(CmpOp, Expr)]) -> Result<V, JinjaError> {
        let mut lhs = self.atom(first)?;
        let t = self.temp();
        let mut opened = 0;
        for (k, (op, rhs)) in ops.iter().enumerate() {
            if k > 0 {
                self.out.push_str(&format!("{{% if {t} %}}"));
                opened += 1;
            }
            let r = self.atom(rhs)?;
            let c = match op {
                // Python equality (1 == 1.0 == True), and an undefined operand is an error.
                CmpOp::Eq => format!("__jx_cmp(a0={lhs}, a1={r}, op=\"==\")"),
                CmpOp::Ne => format!("__jx_cmp(a0={lhs}, a1={r}, op=\"!=\")"),
                CmpOp::In => format!("{lhs} in {r}"),
                CmpOp::NotIn => format!("{lhs} not in {r}"),
                CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                    let o = match op {
                        CmpOp::Lt => "<",
                        CmpOp::Le => "<=",
                        CmpOp::Gt => ">",
                        _ => ">=",
                    };
                    format!("__jx_cmp(a0={lhs}, a1={r}, op=\"{o}\")")
                }
            };
            if ops.len() == 1 {
                return Ok(V::Complex(c));
            }
            self.set(&t, &c);
            lhs = r;
        }
        self.out.push_str(&"{% endif %}".repeat(opened));
        Ok(V::Path(t))
    }
}

fn text(v: &V) -> String {
    match v {
        V::Path(s) | V::Lit(s) | V::Complex(s) => s.clone(),
    }
}
