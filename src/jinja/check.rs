//! Validation before any host: every filter, test, function and lookup plugin a template names
//! must exist (a typo gets "did you mean") and be called with arguments its Python signature
//! accepts (`template_filters::signatures`): not too many positional arguments, no unknown
//! keyword, every required parameter given.
use super::ast::{Args, Expr, ExprKind, Node};
use super::lower::tera_name;
use super::JinjaError;
use crate::template_filters::signatures::{self, Kind, Sig, LOOKUP_COMMON};

/// The closest known name, when it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.len() / 4) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn word(kind: Kind) -> &'static str {
    match kind {
        Kind::Filter => "filter",
        Kind::Test => "test",
        Kind::Function => "function",
        Kind::Lookup => "lookup plugin",
    }
}

fn hint(s: Option<&str>) -> String {
    s.map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// The signature of a name, or "unknown ..." with the closest known name.
fn sig(kind: Kind, name: &str, pos: usize) -> Result<&'static Sig, JinjaError> {
    let found = match kind {
        Kind::Filter => signatures::filter(name),
        Kind::Test => signatures::test(name),
        Kind::Function => signatures::function(name),
        Kind::Lookup => signatures::lookup(name),
    };
    // The lowering's own helpers are not for templates to call.
    found.filter(|s| !s.name.starts_with("__")).ok_or_else(|| {
        let known = signatures::names(kind).filter(|n| !n.starts_with("__"));
        JinjaError::new(
            pos,
            format!(
                "unknown {} `{name}`{}",
                word(kind),
                hint(did_you_mean(name, known))
            ),
        )
    })
}

/// Arguments against a signature: `skip` leading positional arguments are not parameters (a
/// lookup's plugin name), `extra` keywords are accepted besides the parameters (lookup options).
fn arity(
    kind: Kind,
    s: &Sig,
    a: &Args,
    skip: usize,
    extra: &[&str],
    pos: usize,
) -> Result<(), JinjaError> {
    let what = format!("{} `{}`", word(kind), s.name);
    let n = a.pos.len().saturating_sub(skip);
    let positional = if s.kwonly { 0 } else { s.params.len() };
    if n > positional && !s.varargs {
        return Err(JinjaError::new(
            pos,
            format!(
                "{what} takes at most {positional} positional argument{} ({n} given)",
                if positional == 1 { "" } else { "s" }
            ),
        ));
    }
    let canonical = |k: &str| -> Option<&'static str> {
        s.params
            .iter()
            .copied()
            .find(|p| *p == k)
            .or_else(|| s.aliases.iter().find(|(al, _)| *al == k).map(|(_, p)| *p))
    };
    for (k, _) in &a.kw {
        if canonical(k).is_none() && !extra.contains(&k.as_str()) && !s.kwargs {
            let names = s
                .params
                .iter()
                .chain(s.aliases.iter().map(|(al, _)| al))
                .chain(extra.iter())
                .copied();
            return Err(JinjaError::new(
                pos,
                format!(
                    "{what} has no parameter `{k}`{}",
                    hint(did_you_mean(k, names))
                ),
            ));
        }
    }
    for (i, p) in s.params.iter().enumerate().take(s.required) {
        let by_pos = i < n && !s.kwonly;
        if !by_pos && !a.kw.iter().any(|(k, _)| canonical(k) == Some(p)) {
            return Err(JinjaError::new(
                pos,
                format!("{what} is missing its required argument `{p}`"),
            ));
        }
    }
    Ok(())
}

/// Check every node.
pub fn nodes(nodes: &[Node]) -> Result<(), JinjaError> {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Raw(_) | Node::Break | Node::Continue => {}
            Node::Output(e) | Node::Set(_, e) | Node::SetGlobal(_, e) => expr(e)?,
            Node::If(branches, otherwise) => {
                for (c, body) in branches {
                    expr(c)?;
                    self::nodes(body)?;
                }
                if let Some(b) = otherwise {
                    self::nodes(b)?;
                }
            }
            Node::For(f) => {
                expr(&f.iter)?;
                if let Some(c) = &f.cond {
                    expr(c)?;
                }
                self::nodes(&f.body)?;
                if let Some(b) = &f.otherwise {
                    self::nodes(b)?;
                }
            }
            Node::SetBlock(_, body) | Node::Block(body) => self::nodes(body)?,
        }
    }
    Ok(())
}

/// Check one expression.
pub fn expr(e: &Expr) -> Result<(), JinjaError> {
    let args = |a: &Args| -> Result<(), JinjaError> {
        a.pos
            .iter()
            .chain(a.kw.iter().map(|(_, v)| v))
            .try_for_each(expr)
    };
    match &e.kind {
        ExprKind::Filter(o, name, a) => {
            let n = tera_name(name);
            let s = sig(Kind::Filter, &n, e.pos)?;
            arity(Kind::Filter, s, a, 0, &[], e.pos)?;
            expr(o)?;
            args(a)
        }
        ExprKind::Test(o, name, a, _) => {
            let n = tera_name(name);
            let s = sig(Kind::Test, &n, e.pos)?;
            arity(Kind::Test, s, a, 0, &[], e.pos)?;
            expr(o)?;
            args(a)
        }
        ExprKind::Call(callee, a) => {
            match &callee.kind {
                ExprKind::Name(f) => {
                    let n = tera_name(f);
                    let s = sig(Kind::Function, &n, callee.pos)?;
                    arity(Kind::Function, s, a, 0, &[], callee.pos)?;
                    if matches!(n.as_str(), "lookup" | "query" | "q") {
                        lookup(a, callee.pos)?;
                    }
                }
                ExprKind::Attr(o, _) => expr(o)?,
                _ => expr(callee)?,
            }
            args(a)
        }
        ExprKind::Str(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::None
        | ExprKind::Name(_) => Ok(()),
        ExprKind::List(items) => items.iter().try_for_each(expr),
        ExprKind::Dict(items) => items
            .iter()
            .try_for_each(|(k, v)| expr(k).and_then(|_| expr(v))),
        ExprKind::Attr(o, _) => expr(o),
        ExprKind::Item(o, k) => expr(o).and_then(|_| expr(k)),
        ExprKind::Slice(o, parts) => {
            expr(o)?;
            parts.iter().flatten().try_for_each(|p| expr(p))
        }
        ExprKind::Not(x) | ExprKind::Neg(x) => expr(x),
        ExprKind::Bin(_, l, r) => expr(l).and_then(|_| expr(r)),
        ExprKind::Compare(f, ops) => {
            expr(f)?;
            ops.iter().try_for_each(|(_, x)| expr(x))
        }
        ExprKind::Cond(c, t, o) => {
            expr(c)?;
            expr(t)?;
            o.as_deref().map_or(Ok(()), expr)
        }
    }
}

/// `lookup('plugin', terms..., option=value)`: a literal plugin name must exist and the options
/// must be its own or the common ones (`wantlist`, `errors`).
fn lookup(a: &Args, pos: usize) -> Result<(), JinjaError> {
    let Some(first) = a.pos.first() else {
        return Ok(());
    };
    let ExprKind::Str(name) = &first.kind else {
        return Ok(());
    };
    let s = sig(Kind::Lookup, &tera_name(name), first.pos)?;
    arity(Kind::Lookup, s, a, 1, LOOKUP_COMMON, pos)
}
