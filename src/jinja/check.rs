//! Validation before any host: every filter, test and function a template names must exist;
//! a typo gets "did you mean".
use super::ast::{Expr, ExprKind, Node};
use super::known::{self, Kind};
use super::lower::tera_name;
use super::JinjaError;

/// The closest known name, when it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.len() / 4) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn unknown(kind: Kind, name: &str, pos: usize) -> JinjaError {
    let hint = did_you_mean(name, known::names(kind))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    JinjaError::new(pos, format!("unknown {} `{name}`{hint}", kind.word()))
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
    let args = |a: &super::ast::Args| -> Result<(), JinjaError> {
        a.pos
            .iter()
            .chain(a.kw.iter().map(|(_, v)| v))
            .try_for_each(expr)
    };
    match &e.kind {
        ExprKind::Filter(o, name, a) => {
            let n = tera_name(name);
            if !known::known(Kind::Filter, &n) {
                return Err(unknown(Kind::Filter, &n, e.pos));
            }
            expr(o)?;
            args(a)
        }
        ExprKind::Test(o, name, a, _) => {
            let n = tera_name(name);
            if !known::known(Kind::Test, &n) {
                return Err(unknown(Kind::Test, &n, e.pos));
            }
            expr(o)?;
            args(a)
        }
        ExprKind::Call(callee, a) => {
            match &callee.kind {
                ExprKind::Name(f) => {
                    let n = tera_name(f);
                    if !known::known(Kind::Function, &n) {
                        return Err(unknown(Kind::Function, &n, callee.pos));
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
