//! Ansible's Jinja2 dialect on tera (issue 16): a lexer and parser for Jinja2's templates and
//! its whole expression grammar, validation of the filters, tests and functions they name, and
//! the lowering of the tree to tera source that tera compiles and renders.
//!
//! Error offsets are bytes into the template; [`JinjaError::render`] turns them into
//! `line:column`.
pub mod ast;
pub mod check;
pub mod expr;
pub mod known;
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

#[cfg(test)]
mod tests;
