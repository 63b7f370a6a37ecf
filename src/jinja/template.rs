//! The template level: text, `{{ }}`, `{% %}` and `{# #}` with Jinja2's whitespace control
//! (`-` strips, `+` keeps) and `trim_blocks`, `{% raw %}`, then the statement tree.
use super::ast::{For, Node};
use super::expr::Parser;
use super::lexer::{tokens, Tok, Token};
use super::JinjaError;

/// One piece of the template before the tree is built.
enum Item {
    Text(String),
    Raw(String),
    Out(Vec<Token>),
    Tag(Vec<Token>, usize),
}

/// Split a template into items, applying whitespace control (`lstrip_blocks`: spaces and tabs
/// between the start of a line and a block or comment tag go).
fn items(src: &str, trim_blocks: bool, lstrip_blocks: bool) -> Result<Vec<Item>, JinjaError> {
    let b = src.as_bytes();
    let mut out: Vec<Item> = Vec::new();
    let (mut i, mut text_start) = (0usize, 0usize);
    let mut strip_next = false;
    // Push the text before a tag; `lstrip`: the tag asked to strip the whitespace before it.
    let push_text = |out: &mut Vec<Item>, text: &str, strip_next: &mut bool, lstrip: bool| {
        let mut t = text;
        if *strip_next {
            t = t.trim_start();
            *strip_next = false;
        }
        if lstrip {
            t = t.trim_end();
        }
        if !t.is_empty() {
            out.push(Item::Text(t.to_string()));
        }
    };
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let kind = b[i + 1];
        let lstrip = b.get(i + 2) == Some(&b'-');
        let body = i + 2 + usize::from(matches!(b.get(i + 2), Some(b'-' | b'+')));
        let mut text_end = i;
        if lstrip_blocks && kind != b'{' && !matches!(b.get(i + 2), Some(b'+' | b'-')) {
            let line_start = src[..i].rfind('\n').map_or(0, |n| n + 1);
            if line_start >= text_start
                && src[line_start..i].bytes().all(|c| c == b' ' || c == b'\t')
            {
                text_end = line_start;
            }
        }
        push_text(
            &mut out,
            &src[text_start..text_end],
            &mut strip_next,
            lstrip,
        );
        let after;
        let mut trim_here = false;
        match kind {
            b'#' => {
                let Some(end) = src[body..].find("#}") else {
                    return Err(JinjaError::new(i, "unclosed comment: `#}` expected"));
                };
                let end = body + end;
                strip_next = src[..end].ends_with('-');
                trim_here = !src[..end].ends_with('+');
                after = end + 2;
            }
            b'{' => {
                let (toks, close, next) = tokens(src, body, "}}")?;
                strip_next = b[close] == b'-';
                out.push(Item::Out(toks));
                after = next;
            }
            _ => {
                let (toks, close, next) = tokens(src, body, "%}")?;
                strip_next = b[close] == b'-';
                trim_here = b[close] != b'+';
                if matches!(toks.first().map(|t| &t.tok), Some(Tok::Name(n)) if n == "raw") {
                    let (raw, raw_end, endraw_close, endraw_next) = find_endraw(src, next, i)?;
                    let mut text = &src[next..raw_end];
                    // Jinja2 applies trim_blocks after `{% endraw %}`, not after `{% raw %}`.
                    if strip_next {
                        text = text.trim_start();
                    }
                    if raw {
                        text = text.trim_end();
                    }
                    if !text.is_empty() {
                        out.push(Item::Raw(text.to_string()));
                    }
                    strip_next = b[endraw_close] == b'-';
                    trim_here = b[endraw_close] != b'+';
                    after = endraw_next;
                } else {
                    out.push(Item::Tag(toks, i));
                    after = next;
                }
            }
        }
        i = after;
        if trim_blocks && trim_here && kind != b'{' && !strip_next {
            if src[i..].starts_with("\r\n") {
                i += 2;
            } else if src[i..].starts_with('\n') {
                i += 1;
            }
        }
        text_start = i;
    }
    push_text(&mut out, &src[text_start..], &mut strip_next, false);
    Ok(out)
}

/// After `{% raw %}` (ending at `from`): (does `{%- endraw` strip, where the raw text ends,
/// the offset of the endraw tag's closing delimiter, the offset after it).
fn find_endraw(
    src: &str,
    from: usize,
    open: usize,
) -> Result<(bool, usize, usize, usize), JinjaError> {
    let mut k = from;
    while let Some(off) = src[k..].find("{%") {
        let at = k + off;
        let rest = &src[at + 2..];
        let strip = rest.starts_with('-');
        let body = rest.trim_start_matches(['-', '+']).trim_start();
        if let Some(after) = body.strip_prefix("endraw") {
            let after_trim = after.trim_start();
            let close_rel = src.len() - after_trim.len();
            for lead in ["-", "+", ""] {
                if after_trim.starts_with(lead) && after_trim[lead.len()..].starts_with("%}") {
                    return Ok((strip, at, close_rel, close_rel + lead.len() + 2));
                }
            }
        }
        k = at + 2;
    }
    Err(JinjaError::new(open, "`{% raw %}` without `{% endraw %}`"))
}

/// Parse a whole template.
pub fn parse(src: &str, trim_blocks: bool) -> Result<Vec<Node>, JinjaError> {
    parse_with(src, trim_blocks, false)
}

/// Parse a whole template with Jinja2's `lstrip_blocks` too.
pub fn parse_with(
    src: &str,
    trim_blocks: bool,
    lstrip_blocks: bool,
) -> Result<Vec<Node>, JinjaError> {
    let items = items(src, trim_blocks, lstrip_blocks)?;
    let mut b = Builder { items, i: 0 };
    let (nodes, end) = b.block(&[])?;
    if let Some((word, pos)) = end {
        return Err(JinjaError::new(pos, format!("unexpected `{{% {word} %}}`")));
    }
    Ok(nodes)
}

struct Builder {
    items: Vec<Item>,
    i: usize,
}

type End = Option<(String, usize)>;

impl Builder {
    /// Nodes up to one of the `ends` tags; returns that tag's word (the tag's tokens stay at
    /// `self.i - 1` for `elif`).
    fn block(&mut self, ends: &[&str]) -> Result<(Vec<Node>, End), JinjaError> {
        let mut nodes = Vec::new();
        while self.i < self.items.len() {
            let idx = self.i;
            self.i += 1;
            match &self.items[idx] {
                Item::Text(t) => nodes.push(Node::Text(t.clone())),
                Item::Raw(t) => nodes.push(Node::Raw(t.clone())),
                Item::Out(toks) => {
                    let toks = toks.clone();
                    let mut p = Parser::new(&toks);
                    let e = p.expr()?;
                    p.end()?;
                    nodes.push(Node::Output(e));
                }
                Item::Tag(toks, pos) => {
                    let (toks, pos) = (toks.clone(), *pos);
                    let mut p = Parser::new(&toks);
                    let word = match p.advance() {
                        Tok::Name(n) => n,
                        _ => return Err(JinjaError::new(pos, "a tag name expected after `{%`")),
                    };
                    if ends.contains(&word.as_str()) {
                        return Ok((nodes, Some((word, idx))));
                    }
                    nodes.push(self.statement(&word, &mut p, pos)?);
                }
            }
        }
        if let Some(first) = ends.last() {
            return Err(JinjaError::new(
                self.items_end_pos(),
                format!("missing `{{% {first} %}}`"),
            ));
        }
        Ok((nodes, None))
    }

    fn items_end_pos(&self) -> usize {
        self.items
            .iter()
            .rev()
            .find_map(|i| match i {
                Item::Tag(_, p) => Some(*p),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The parser of the tag at item `idx`, positioned after its word.
    fn tag_tokens(&self, idx: usize) -> Vec<Token> {
        match &self.items[idx] {
            Item::Tag(t, _) => t.clone(),
            _ => Vec::new(),
        }
    }

    fn statement(&mut self, word: &str, p: &mut Parser, pos: usize) -> Result<Node, JinjaError> {
        match word {
            "if" => {
                let mut branches = Vec::new();
                let mut cond = p.expr()?;
                p.end()?;
                loop {
                    let (body, end) = self.block(&["elif", "else", "endif"])?;
                    branches.push((cond, body));
                    match end {
                        Some((w, idx)) if w == "elif" => {
                            let toks = self.tag_tokens(idx);
                            let mut q = Parser::new(&toks);
                            q.advance();
                            cond = q.expr()?;
                            q.end()?;
                        }
                        Some((w, _)) if w == "else" => {
                            let (body, _) = self.block(&["endif"])?;
                            return Ok(Node::If(branches, Some(body)));
                        }
                        _ => return Ok(Node::If(branches, None)),
                    }
                }
            }
            "for" => {
                let mut targets = Vec::new();
                let paren = p.eat_op("(");
                loop {
                    targets.push(p.name()?);
                    if !p.eat_op(",") {
                        break;
                    }
                }
                if paren {
                    p.expect_op(")")?;
                }
                if !p.eat_name("in") {
                    return p.err("expected `in` in the `for` tag");
                }
                let mut iter = p.expr_no_cond()?;
                if p.is_op(",") {
                    let mut list = vec![iter];
                    while p.eat_op(",") {
                        list.push(p.expr_no_cond()?);
                    }
                    let at = list[0].pos;
                    iter = super::ast::Expr {
                        kind: super::ast::ExprKind::List(list),
                        pos: at,
                    };
                }
                let cond = if p.eat_name("if") {
                    Some(p.expr()?)
                } else {
                    None
                };
                if p.is_name("recursive") {
                    return p.err("recursive loops are not supported");
                }
                p.end()?;
                let (body, end) = self.block(&["else", "endfor"])?;
                let otherwise = match end {
                    Some((w, _)) if w == "else" => Some(self.block(&["endfor"])?.0),
                    _ => None,
                };
                Ok(Node::For(Box::new(For {
                    targets,
                    iter,
                    cond,
                    body,
                    otherwise,
                    pos,
                })))
            }
            "set" | "set_global" => {
                let name = p.name()?;
                if p.is_op(",") {
                    return p.err("`set` of several names at once is not supported");
                }
                if matches!(p.peek(), Tok::End) && word == "set" {
                    let (body, _) = self.block(&["endset"])?;
                    return Ok(Node::SetBlock(name, body));
                }
                p.expect_op("=")?;
                let mut e = p.expr()?;
                if p.is_op(",") {
                    let mut list = vec![e];
                    while p.eat_op(",") {
                        if matches!(p.peek(), Tok::End) {
                            break;
                        }
                        list.push(p.expr()?);
                    }
                    let at = list[0].pos;
                    e = super::ast::Expr {
                        kind: super::ast::ExprKind::List(list),
                        pos: at,
                    };
                }
                p.end()?;
                Ok(if word == "set" {
                    Node::Set(name, e)
                } else {
                    Node::SetGlobal(name, e)
                })
            }
            "break" | "continue" => {
                p.end()?;
                Ok(if word == "break" {
                    Node::Break
                } else {
                    Node::Continue
                })
            }
            "block" => {
                p.name()?;
                p.end()?;
                let (body, _) = self.block(&["endblock"])?;
                Ok(Node::Block(body))
            }
            "macro" | "call" | "include" | "import" | "from" | "extends" | "filter" | "with"
            | "do" | "autoescape" => Err(JinjaError::new(
                pos,
                format!("`{{% {word} %}}` is not supported in castellan templates"),
            )),
            other => Err(JinjaError::new(
                pos,
                format!(
                    "unknown tag `{other}`{}",
                    super::check::did_you_mean(
                        other,
                        [
                            "if", "elif", "else", "endif", "for", "endfor", "set", "endset", "raw",
                            "endraw"
                        ]
                        .into_iter()
                    )
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default()
                ),
            )),
        }
    }
}
