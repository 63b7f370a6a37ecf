//! The root variable names a parsed template reads: those it needs, and every one it reads
//! (names guarded by `| default` or `is defined` included). Loop targets, `loop` and `set`
//! names are local.
use std::collections::HashSet;

use super::ast::{Expr, ExprKind, Node};
use super::lower::tera_name;

#[derive(Debug, Default)]
pub struct Found {
    pub required: Vec<String>,
    pub all: Vec<String>,
}

pub fn of_nodes(nodes: &[Node], locals: &mut HashSet<String>, found: &mut Found) {
    for n in nodes {
        match n {
            Node::Text(_) | Node::Raw(_) | Node::Break | Node::Continue => {}
            Node::Output(e) => of_expr(e, locals, false, found),
            Node::If(branches, otherwise) => {
                for (c, body) in branches {
                    of_expr(c, locals, false, found);
                    of_nodes(body, locals, found);
                }
                if let Some(body) = otherwise {
                    of_nodes(body, locals, found);
                }
            }
            Node::For(f) => {
                of_expr(&f.iter, locals, false, found);
                let mut inner = locals.clone();
                inner.extend(f.targets.iter().cloned());
                inner.insert("loop".into());
                if let Some(c) = &f.cond {
                    of_expr(c, &inner, false, found);
                }
                of_nodes(&f.body, &mut inner, found);
                if let Some(body) = &f.otherwise {
                    of_nodes(body, locals, found);
                }
            }
            Node::Set(name, e) | Node::SetGlobal(name, e) => {
                of_expr(e, locals, false, found);
                locals.insert(name.clone());
            }
            Node::Block(body) => of_nodes(body, locals, found),
            Node::SetBlock(name, body) => {
                of_nodes(body, locals, found);
                locals.insert(name.clone());
            }
        }
    }
}

pub fn of_expr(e: &Expr, locals: &HashSet<String>, guarded: bool, found: &mut Found) {
    let mut go = |x: &Expr, g: bool| of_expr(x, locals, g, found);
    match &e.kind {
        ExprKind::Name(n) => {
            if !locals.contains(n) {
                found.all.push(n.clone());
                if !guarded {
                    found.required.push(n.clone());
                }
            }
        }
        ExprKind::Str(_)
        | ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::None => {}
        ExprKind::List(items) => items.iter().for_each(|i| go(i, false)),
        ExprKind::Dict(items) => items.iter().for_each(|(k, v)| {
            go(k, false);
            go(v, false);
        }),
        ExprKind::Attr(o, _) => go(o, guarded),
        ExprKind::Item(o, k) => {
            go(o, guarded);
            go(k, false);
        }
        ExprKind::Slice(o, parts) => {
            go(o, guarded);
            parts.iter().flatten().for_each(|p| go(p, false));
        }
        ExprKind::Call(callee, args) => {
            // A called name is a function, not a variable.
            if let ExprKind::Attr(o, _) = &callee.kind {
                go(o, false);
            } else if !matches!(callee.kind, ExprKind::Name(_)) {
                go(callee, false);
            }
            args.pos
                .iter()
                .chain(args.kw.iter().map(|(_, v)| v))
                .for_each(|a| go(a, false));
        }
        ExprKind::Filter(o, name, args) => {
            go(o, guarded || tera_name(name) == "default");
            args.pos
                .iter()
                .chain(args.kw.iter().map(|(_, v)| v))
                .for_each(|a| go(a, false));
        }
        ExprKind::Test(o, name, args, _) => {
            let n = tera_name(name);
            go(o, guarded || n == "defined" || n == "undefined");
            args.pos
                .iter()
                .chain(args.kw.iter().map(|(_, v)| v))
                .for_each(|a| go(a, false));
        }
        ExprKind::Not(x) | ExprKind::Neg(x) => go(x, false),
        ExprKind::Bin(_, l, r) => {
            go(l, false);
            go(r, false);
        }
        ExprKind::Compare(first, ops) => {
            go(first, false);
            ops.iter().for_each(|(_, x)| go(x, false));
        }
        ExprKind::Cond(c, t, o) => {
            go(c, false);
            go(t, false);
            if let Some(o) = o {
                go(o, false);
            }
        }
    }
}
