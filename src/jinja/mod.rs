//! Ansible's Jinja2 dialect on tera (issue 16): a lexer and parser for Jinja2's templates and
//! its whole expression grammar, validation of the filters, tests and functions they name, and
//! the lowering of the tree to tera source that tera compiles and renders.
//!
//! Error offsets are bytes into the template; [`JinjaError::render`] turns them into
//! `line:column`.
pub mod ast;
pub mod check;
pub mod expr;
pub mod lexer;
pub mod lower;
pub mod names;
pub mod runtime;
pub mod template;

use std::collections::HashSet;

pub use lower::Output;

/// A problem in a template, at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct JinjaError {
    pub pos: usize,
    pub msg: String,
}

impl JinjaError {
    pub fn new(pos: usize, msg: impl Into<String>) -> Self {
        JinjaError {
            pos,
            msg: msg.into(),
        }
    }

    /// The message with the `line:column` (1-based, columns in characters) inside `src`.
    pub fn render(&self, src: &str) -> String {
        let upto = &src[..floor_char(src, self.pos)];
        let line = upto.matches('\n').count() + 1;
        let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{} (at {line}:{col} of the template)", self.msg)
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A parsed and checked template.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub nodes: Vec<ast::Node>,
}

/// Parse (and validate) a template; `trim_blocks` as Ansible's template module sets it.
pub fn parse(src: &str, trim_blocks: bool) -> Result<Parsed, JinjaError> {
    let nodes = template::parse(src, trim_blocks)?;
    check::nodes(&nodes)?;
    Ok(Parsed { nodes })
}

impl Parsed {
    /// tera source for this template.
    pub fn lower(&self, output: Output) -> Result<String, JinjaError> {
        lower::lower(&self.nodes, output)
    }

    /// Is the template exactly one `{{ expression }}`?
    pub fn is_lone_expression(&self) -> bool {
        matches!(self.nodes.as_slice(), [ast::Node::Output(_)])
    }

    /// The root variable names read: (required, all), sorted and deduplicated.
    pub fn names(&self) -> (Vec<String>, Vec<String>) {
        let mut found = names::Found::default();
        let mut locals = HashSet::new();
        names::of_nodes(&self.nodes, &mut locals, &mut found);
        for v in [&mut found.required, &mut found.all] {
            v.sort();
            v.dedup();
        }
        (found.required, found.all)
    }
}

/// The value of a template rendered with [`Output::Native`], as Ansible's native templating
/// gives it: the one output a render emitted, alone, is its value (`{{ x }}`, an `if` that
/// prints one expression); anything else is the text. `trailing` is the line break the
/// template text ended with (Jinja2 strips it; Ansible gives text back the line breaks it
/// lost).
pub fn native(rendered: &str, trailing: &str) -> Result<serde_json::Value, String> {
    let [m0, m1, m2] = lower::MARK;
    if let Some(inner) = rendered.strip_prefix(m0).and_then(|r| r.strip_suffix(m2)) {
        if !inner.contains(m0) {
            if let Some((json, _)) = inner.split_once(m1) {
                let v: serde_json::Value =
                    serde_json::from_str(json).map_err(|e| format!("internal: {e}"))?;
                return Ok(match v {
                    serde_json::Value::String(s) => {
                        serde_json::Value::String(with_newlines(s, trailing))
                    }
                    other => other,
                });
            }
        }
    }
    let mut out = String::with_capacity(rendered.len());
    let mut rest = rendered;
    while let Some(start) = rest.find(m0) {
        out.push_str(&rest[..start]);
        let after = &rest[start + m0.len_utf8()..];
        let Some(mid) = after.find(m1) else { break };
        let after_mid = &after[mid + m1.len_utf8()..];
        let end = after_mid.find(m2).unwrap_or(after_mid.len());
        out.push_str(&after_mid[..end]);
        rest = after_mid.get(end + m2.len_utf8()..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(serde_json::Value::String(with_newlines(out, trailing)))
}

/// Ansible's `preserve_trailing_newlines`: the text ends with at least as many line breaks as
/// the template did.
fn with_newlines(mut text: String, trailing: &str) -> String {
    let has = text.len() - text.trim_end_matches('\n').len();
    let want = trailing.matches('\n').count();
    for _ in has..want {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
