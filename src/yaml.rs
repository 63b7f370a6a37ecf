//! YAML with positions: every node knows its `file:line:column`.
//!
//! `serde_yaml`'s `Value` carries no location, so playbooks, inventories and vars files are read
//! through yaml-rust2's marked event parser into [`Node`]s. Plain scalars are resolved the way
//! Ansible's PyYAML (YAML 1.1) resolves them: `yes`/`no`/`on`/`off` are booleans, `0644` is octal,
//! `1e3` stays a string. Anchors, aliases and `<<` merge keys are supported. Ansible Vault data
//! is opened here, whole files and `!vault` values alike (src/vault/).
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Error, Location, Result};
use crate::vault;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub loc: Location,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A string tagged `!unsafe`: never templated.
    Unsafe(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) | NodeValue::Unsafe(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.key_string() == key)
            .map(|(_, v)| v)
    }

    /// A mapping key as a string (YAML allows any scalar as a key).
    pub fn key_string(&self) -> String {
        match &self.value {
            NodeValue::Str(s) | NodeValue::Unsafe(s) => s.clone(),
            NodeValue::Null => "null".into(),
            NodeValue::Bool(b) => if *b { "True" } else { "False" }.into(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Seq(_) | NodeValue::Map(_) => "<complex key>".into(),
        }
    }

    /// A short name for the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a float",
            NodeValue::Str(_) | NodeValue::Unsafe(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Convert to a JSON value (the shape variables and module arguments use).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::Number((*i).into()),
            // JSON has no infinity or NaN: keep them as YAML spells them, so a knob that needs a
            // number refuses them rather than seeing null.
            NodeValue::Float(f) => Number::from_f64(*f).map_or_else(
                || {
                    Value::String(
                        if f.is_nan() {
                            ".nan"
                        } else if *f > 0.0 {
                            ".inf"
                        } else {
                            "-.inf"
                        }
                        .into(),
                    )
                },
                Value::Number,
            ),
            NodeValue::Str(s) | NodeValue::Unsafe(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.key_string(), v.to_json());
                }
                Value::Object(m)
            }
        }
    }

    /// An error pointing at this node.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::invalid(&self.loc, msg)
    }
}

/// Deepest nesting of collections accepted: real playbooks and inventories stay far below; a
/// deeper document is an attack on the stack (every later pass over the tree recurses).
pub const MAX_DEPTH: usize = 128;
/// Most nodes that aliases may copy in one file: anchors are expanded, so a few lines of nested
/// aliases ("billion laughs") would otherwise build billions of nodes.
pub const MAX_ALIAS_NODES: usize = 250_000;

/// Read a text file: its bytes must be UTF-8. An invalid byte is reported at its
/// `file:line:column` (as a hex value: raw bytes are never printed). A file encrypted by
/// `ansible-vault` is decrypted with the vault passwords given (an error at `file:1:1` when none
/// opens it), and every string value in it is a secret from then on ([`vault::revealed`]).
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, &e))?;
    let encrypted = vault::is_vault(&bytes);
    let bytes = if encrypted {
        vault::decrypt(&String::from_utf8_lossy(&bytes)).map_err(|e| {
            Error::invalid(
                &Location::file_start(path),
                format!("vault-encrypted file: {e}"),
            )
        })?
    } else {
        bytes
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // The prefix is valid UTF-8 by definition.
        let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
        let line = prefix.matches('\n').count() + 1;
        let col = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::invalid(
            &Location::new(&Arc::new(path.to_path_buf()), line, col),
            format!(
                "the file is not valid UTF-8 (byte 0x{:02X}); save it as UTF-8",
                bytes[good]
            ),
        )
    })?;
    if encrypted {
        // A file that does not parse fails where the caller parses it; what parses is secret.
        if let Ok(docs) = parse_str(&text, path) {
            docs.iter().for_each(reveal_strings);
        }
    }
    Ok(text)
}

/// Every string value under `node` (not the keys: they are names) becomes a secret.
fn reveal_strings(node: &Node) {
    match &node.value {
        NodeValue::Str(s) | NodeValue::Unsafe(s) => vault::revealed::register(s),
        NodeValue::Seq(items) => items.iter().for_each(reveal_strings),
        NodeValue::Map(entries) => entries.iter().for_each(|(_, v)| reveal_strings(v)),
        _ => {}
    }
}

/// A `!vault |` value: decrypted with the vault passwords given, a secret from then on.
fn open_inline(text: &str) -> std::result::Result<NodeValue, String> {
    let plain = vault::decrypt(text).map_err(|e| format!("`!vault` value: {e}"))?;
    let s = String::from_utf8(plain)
        .map_err(|_| "`!vault` value: the decrypted value is not UTF-8 text".to_string())?;
    vault::revealed::register(&s);
    Ok(NodeValue::Str(s))
}

/// Read and parse a YAML file; returns the documents it holds.
pub fn load_file(path: &Path) -> Result<Vec<Node>> {
    let text = read_text(path)?;
    parse_str(&text, path)
}

/// Parse a YAML file that holds one document (as Ansible's loader requires); an empty file gives
/// `Null`, a second document is an error.
pub fn load_file_single(path: &Path) -> Result<Node> {
    let text = read_text(path)?;
    parse_single(&text, path)
}

/// Parse text that must hold at most one document.
pub fn parse_single(text: &str, path: &Path) -> Result<Node> {
    let (mut docs, starts) = parse_with_starts(text, path)?;
    if docs.len() > 1 {
        let loc = starts
            .get(1)
            .cloned()
            .unwrap_or_else(|| docs[1].loc.clone());
        return Err(Error::invalid(
            &loc,
            "expected a single YAML document, found another one here",
        ));
    }
    Ok(docs.pop().unwrap_or_else(|| Node {
        loc: Location::file_start(path),
        value: NodeValue::Null,
    }))
}

/// Parse YAML text; `path` is used for locations only.
pub fn parse_str(text: &str, path: &Path) -> Result<Vec<Node>> {
    parse_with_starts(text, path).map(|(docs, _)| docs)
}

/// The documents and where each starts (its `---`, or its first node).
fn parse_with_starts(text: &str, path: &Path) -> Result<(Vec<Node>, Vec<Location>)> {
    let file = Arc::new(path.to_path_buf());
    check_characters(text, &file)?;
    let mut builder = Builder {
        file: Arc::clone(&file),
        docs: Vec::new(),
        doc_starts: Vec::new(),
        stack: Vec::new(),
        anchors: std::collections::HashMap::new(),
        expanded: 0,
        sizes: Vec::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    let parsed = parser.load(&mut builder, true);
    // An error the builder found comes first in the text: report it before the parser's.
    if let Some(err) = builder.error {
        return Err(err);
    }
    if let Err(e) = parsed {
        let m = e.marker();
        let info = match e.info() {
            "recursion limit exceeded" => {
                "the document is nested too deeply (recursion limit exceeded)"
            }
            other => other,
        };
        return Err(Error::invalid(
            &Location::new(&file, m.line(), m.col() + 1),
            format!("YAML syntax error: {info}"),
        ));
    }
    Ok((builder.docs, builder.doc_starts))
}

/// YAML allows no control characters but tab, line feed and carriage return (and NEL): report
/// the first other one by its code, never as the raw byte.
fn check_characters(text: &str, file: &Arc<PathBuf>) -> Result<()> {
    let (mut line, mut col) = (1, 1);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            col = 1;
            continue;
        }
        if c.is_control() && !matches!(c, '\t' | '\r' | '\u{85}') {
            let name = if c == '\0' { " (NUL)" } else { "" };
            return Err(Error::invalid(
                &Location::new(file, line, col),
                format!(
                    "control character U+{:04X}{name} is not allowed in YAML",
                    c as u32
                ),
            ));
        }
        col += 1;
    }
    Ok(())
}

enum Frame {
    Seq(Location, usize, Vec<Node>),
    /// A mapping: its entries, the key waiting for its value, and the keys written in it (not
    /// merged in with `<<`), to refuse duplicates.
    Map(
        Location,
        usize,
        Vec<(Node, Node)>,
        Option<Node>,
        Vec<(String, usize)>,
    ),
}

struct Builder {
    file: Arc<PathBuf>,
    docs: Vec<Node>,
    doc_starts: Vec<Location>,
    stack: Vec<Frame>,
    /// Anchored nodes and how many nodes each holds.
    anchors: std::collections::HashMap<usize, (Node, usize)>,
    /// Nodes created by expanding aliases so far (see [`MAX_ALIAS_NODES`]).
    expanded: usize,
    /// For each open collection of `stack`, how many nodes it holds so far.
    sizes: Vec<usize>,
    error: Option<Error>,
}

use std::path::PathBuf;

impl Builder {
    fn loc(&self, mark: &Marker) -> Location {
        Location::new(&self.file, mark.line(), mark.col() + 1)
    }

    /// Adds a finished node (`size`: the nodes it holds, itself included) to its parent.
    fn push_node(&mut self, node: Node, anchor: usize, size: usize) {
        if let Some(parent) = self.sizes.last_mut() {
            *parent = parent.saturating_add(size);
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key, written)) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if k.as_str() == Some("<<") && matches!(k.value, NodeValue::Str(_)) {
                        merge_into(entries, node);
                    } else {
                        let name = k.key_string();
                        if let Some((_, line)) = written.iter().find(|(w, _)| *w == name) {
                            // PyYAML keeps the last one silently: a typo'd copy of a key would
                            // replace the first without a word. Refuse it.
                            self.error = Some(k.error(format!(
                                "duplicate key `{name}` (first defined on line {line})"
                            )));
                            return;
                        }
                        written.push((name.clone(), k.loc.line));
                        // A written key replaces one merged in with `<<`.
                        entries.retain(|(ek, _)| ek.key_string() != name);
                        entries.push((k, node));
                    }
                }
            },
        }
    }

    fn open(&mut self, frame: Frame, loc: &Location) {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some(Error::invalid(
                loc,
                format!("the document is nested more than {MAX_DEPTH} levels deep"),
            ));
            return;
        }
        self.sizes.push(0);
        self.stack.push(frame);
    }
}

/// `<<: *anchor` or `<<: [*a, *b]`: keys already present win.
fn merge_into(entries: &mut Vec<(Node, Node)>, src: Node) {
    let maps: Vec<Node> = match src.value {
        NodeValue::Seq(items) => items,
        _ => vec![src],
    };
    for m in maps {
        if let NodeValue::Map(kvs) = m.value {
            for (k, v) in kvs {
                let name = k.key_string();
                if !entries.iter().any(|(ek, _)| ek.key_string() == name) {
                    entries.push((k, v));
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let loc = self.loc(&mark);
        match ev {
            Event::SequenceStart(anchor, _) => {
                self.open(Frame::Seq(loc.clone(), anchor, Vec::new()), &loc)
            }
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map(loc.clone(), anchor, Vec::new(), None, Vec::new()),
                &loc,
            ),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(loc, anchor, items)) => (
                        Node {
                            loc,
                            value: NodeValue::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map(loc, anchor, entries, _, _)) => (
                        Node {
                            // A block mapping's start event is marked after its first key:
                            // point at the first key instead.
                            loc: match entries.first() {
                                Some((k, _)) if (k.loc.line, k.loc.col) < (loc.line, loc.col) => {
                                    k.loc.clone()
                                }
                                _ => loc,
                            },
                            value: NodeValue::Map(entries),
                        },
                        anchor,
                    ),
                    None => return,
                };
                let size = self.sizes.pop().unwrap_or(0).saturating_add(1);
                self.push_node(node, anchor, size);
            }
            Event::Scalar(text, style, anchor, tag) => {
                match resolve_scalar(text, style, tag.as_ref()) {
                    Ok(value) => self.push_node(Node { loc, value }, anchor, 1),
                    Err(msg) => self.error = Some(Error::invalid(&loc, msg)),
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((_, size)) if self.expanded.saturating_add(*size) > MAX_ALIAS_NODES => {
                    self.error = Some(Error::invalid(
                        &loc,
                        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes: an alias of an alias of ... (\"billion laughs\")? Reuse fewer or smaller anchors"),
                    ))
                }
                Some((node, size)) => {
                    let size = *size;
                    self.expanded += size;
                    let mut node = node.clone();
                    node.loc = loc;
                    self.push_node(node, 0, size);
                }
                None => self.error = Some(Error::invalid(&loc, "alias to an unknown anchor")),
            },
            Event::DocumentStart => self.doc_starts.push(loc),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

fn resolve_scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
) -> std::result::Result<NodeValue, String> {
    if let Some(tag) = tag {
        let name = tag.suffix.as_str();
        return match (tag.handle.as_str(), name) {
            ("!", "unsafe") => Ok(NodeValue::Unsafe(text)),
            ("!", "vault") => open_inline(&text),
            ("!!", "str") | ("tag:yaml.org,2002:", "str") => Ok(NodeValue::Str(text)),
            ("!!", "int") | ("tag:yaml.org,2002:", "int") => resolve_int(&text)
                .map(NodeValue::Int)
                .ok_or_else(|| format!("`{text}` is not an integer")),
            ("!!", "bool") | ("tag:yaml.org,2002:", "bool") => resolve_bool(&text)
                .map(NodeValue::Bool)
                .ok_or_else(|| format!("`{text}` is not a boolean")),
            ("!!", "float") | ("tag:yaml.org,2002:", "float") => resolve_float(&text)
                .map(NodeValue::Float)
                .ok_or_else(|| format!("`{text}` is not a float")),
            _ => Ok(NodeValue::Str(text)),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(NodeValue::Str(text));
    }
    Ok(resolve_plain(text))
}

/// YAML 1.1 resolution of a plain scalar, as PyYAML (and so Ansible) does it.
pub fn resolve_plain(text: String) -> NodeValue {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        _ => {}
    }
    if let Some(b) = resolve_bool(&text) {
        return NodeValue::Bool(b);
    }
    if let Some(i) = resolve_int(&text) {
        return NodeValue::Int(i);
    }
    if let Some(f) = resolve_float(&text) {
        return NodeValue::Float(f);
    }
    NodeValue::Str(text)
}

fn resolve_bool(t: &str) -> Option<bool> {
    match t {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn resolve_int(t: &str) -> Option<i64> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(bin) = clean.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(hex) = clean.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') {
        if !clean.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        i64::from_str_radix(&clean[1..], 8).ok()?
    } else {
        if !clean.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        clean.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn resolve_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // PyYAML's YAML 1.1 float: digits with a dot, optional exponent with a sign; `1e3` is a string.
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !body.contains('.') {
        return None;
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if !mantissa
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
        || mantissa == "."
        || !mantissa.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    t.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse_str(text, Path::new("t.yml")).unwrap().remove(0)
    }

    /// Found by the yaml fuzz target (a "billion laughs" file): aliases of aliases expanded
    /// without bound, so nine short lines took every byte of memory. Expansion is now capped:
    /// invalid input (exit 4) at the alias that crosses the cap.
    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x]\n");
        for i in 1..=10 {
            let p = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{p}, {p}, {p}, {p}]\n"));
        }
        let Err(e) = parse_str(&text, Path::new("t.yml")) else {
            panic!("an alias bomb was expanded");
        };
        assert_eq!(e.exit_code(), 4);
        let msg = e.to_string();
        assert!(msg.contains("t.yml:") && msg.contains("alias"), "{msg}");
        // Ordinary reuse is fine.
        let n = one("base: &b {x: 1, y: [1, 2]}\nh1: {<<: *b}\nh2: *b\n");
        assert_eq!(n.to_json()["h2"]["y"][1], 2);
    }

    #[test]
    fn yaml11_scalars_resolve_like_pyyaml() {
        let n = one(
            "a: yes\nb: off\nc: 0644\nd: '0644'\ne: 1e3\nf: 1.5\ng: ~\nh: 0x1F\ni: 12_000\nj: 08\n",
        );
        let j = n.to_json();
        assert_eq!(j["a"], Value::Bool(true));
        assert_eq!(j["b"], Value::Bool(false));
        assert_eq!(j["c"], Value::from(0o644));
        assert_eq!(j["d"], Value::from("0644"));
        assert_eq!(j["e"], Value::from("1e3"));
        assert_eq!(j["f"], Value::from(1.5));
        assert_eq!(j["g"], Value::Null);
        assert_eq!(j["h"], Value::from(31));
        assert_eq!(j["i"], Value::from(12000));
        assert_eq!(j["j"], Value::from("08"));
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("- name: x\n  copy:\n    dest: /tmp/x\n");
        let task = &n.as_seq().unwrap()[0];
        let dest = task.get("copy").unwrap().get("dest").unwrap();
        assert_eq!((dest.loc.line, dest.loc.col), (3, 11));
        assert_eq!((task.loc.line, task.loc.col), (1, 3));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = one("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
        let j = n.to_json();
        assert_eq!(j["other"]["x"], Value::from(1));
        assert_eq!(j["other"]["y"], Value::from(3));
    }

    #[test]
    fn syntax_error_has_location() {
        let e = parse_str("a: [1, 2\nb: c\n", Path::new("bad.yml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("bad.yml:"), "{s}");
        assert_eq!(e.exit_code(), 4);
    }

    fn err(text: &str) -> String {
        parse_single(text, Path::new("t.yml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn duplicate_keys_are_refused_but_merged_keys_may_be_overridden() {
        let e = err("a: 1\nb: 2\na: 3\n");
        assert!(
            e.starts_with("t.yml:3:1: duplicate key `a` (first defined on line 1)"),
            "{e}"
        );
        let e = err("- name: x\n  command: a\n  command: b\n");
        assert!(e.starts_with("t.yml:3:3: duplicate key `command`"), "{e}");
        let n = one("b: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n");
        assert_eq!(n.to_json()["c"]["x"], Value::from(2));
    }

    #[test]
    fn deep_nesting_is_refused_before_the_stack_suffers() {
        let deep = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = err(&deep);
        assert!(e.contains("nested too deeply"), "{e}");
        // Block nesting reaches the builder's own limit.
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        block.push_str(&format!("{}v: 1\n", "  ".repeat(200)));
        let e = err(&block);
        assert!(e.contains("nested more than 128 levels"), "{e}");
        let ok = format!("x: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(parse_single(&ok, Path::new("t.yml")).is_ok());
    }

    #[test]
    fn nested_aliases_cannot_blow_up_memory() {
        let mut text = String::from("a: &a [1,1,1,1,1,1,1,1,1,1]\n");
        let mut prev = 'a';
        for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] {
            let refs = vec![format!("*{prev}"); 10].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
            prev = name;
        }
        let started = std::time::Instant::now();
        let e = err(&text);
        assert!(e.contains("aliases expand to more than"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn control_characters_and_bad_utf8_are_located_not_printed() {
        let e = err("a: 1\nb: \"x\0y\"\n");
        assert_eq!(
            e,
            "t.yml:2:6: control character U+0000 (NUL) is not allowed in YAML"
        );
        assert!(err("a: \u{1b}[31m\n").contains("U+001B"));
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("v.yml");
        std::fs::write(&f, b"a: 1\nb: caf\xe9\n").unwrap();
        let e = load_file_single(&f).unwrap_err().to_string();
        assert!(
            e.ends_with("v.yml:2:7: the file is not valid UTF-8 (byte 0xE9); save it as UTF-8"),
            "{e}"
        );
        assert_eq!(load_file_single(&f).unwrap_err().exit_code(), 4);
    }

    #[test]
    fn a_second_document_is_an_error() {
        let e = err("a: 1\n---\nb: 2\n");
        assert!(
            e.starts_with("t.yml:2:1: expected a single YAML document"),
            "{e}"
        );
        assert!(parse_single("", Path::new("t.yml")).unwrap().is_null());
        assert!(parse_single("---\na: 1\n", Path::new("t.yml")).is_ok());
    }

    #[test]
    fn infinity_and_nan_stay_visible_in_json() {
        let j = one("a: .inf\nb: -.inf\nc: .nan\n").to_json();
        assert_eq!(j["a"], Value::from(".inf"));
        assert_eq!(j["b"], Value::from("-.inf"));
        assert_eq!(j["c"], Value::from(".nan"));
    }

    /// The fixtures' vault password, given once for this test process.
    fn vault_password() {
        static GIVEN: std::sync::Once = std::sync::Once::new();
        GIVEN.call_once(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault");
            let pw = std::fs::read_to_string(dir.join("password.txt")).unwrap();
            vault::keyring::add(vault::Secret {
                label: "default".into(),
                password: pw.trim().as_bytes().to_vec(),
                source: "password file password.txt".into(),
            });
        });
    }

    #[test]
    fn vault_values_and_files_are_opened_and_become_secret() {
        vault_password();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault");
        let text = std::fs::read_to_string(dir.join("string-1.1.yml")).unwrap();
        let n = one(&format!("{text}user: app\n"));
        assert_eq!(n.to_json()["db_password"], "inline-pass-4f2a");
        assert!(vault::revealed::found_in(b"x inline-pass-4f2a y"));
        let n = load_file_single(&dir.join("vars-1.1.yml")).unwrap();
        let j = n.to_json();
        assert_eq!(j["db_password"], "s3cr3t-from-whole-file");
        assert_eq!(j["nested"]["token"], "tok-whole-file-91c2");
        assert_eq!(j["db_port"], 5432);
        // Every string of an encrypted file is secret, at any depth.
        assert!(vault::revealed::found_in(b"tok-whole-file-91c2"));
        // Positions point into the decrypted text.
        assert_eq!(n.get("db_user").unwrap().loc.line, 3);
    }

    #[test]
    fn a_vault_value_no_password_opens_is_located() {
        vault_password();
        let other = vault::Secret {
            label: "default".into(),
            password: b"nobody has this one".to_vec(),
            source: "a test".into(),
        };
        let env = vault::encrypt_with(b"hidden-value-a81f", &other).unwrap();
        let block: String = env.lines().map(|l| format!("  {l}\n")).collect();
        let e =
            parse_single(&format!("a: 1\nb: !vault |\n{block}"), Path::new("t.yml")).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        let msg = e.to_string();
        assert!(
            msg.starts_with("t.yml:3:3: `!vault` value: cannot decrypt"),
            "{msg}"
        );
        assert!(!msg.contains("hidden-value"), "{msg}");
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("v.yml");
        std::fs::write(&f, vault::encrypt_with(b"x: 1\n", &other).unwrap()).unwrap();
        let msg = load_file_single(&f).unwrap_err().to_string();
        assert!(msg.ends_with("v.yml:1:1: vault-encrypted file: cannot decrypt the vault data: no vault password given decrypts it (tried: password file password.txt)"), "{msg}");
    }

    #[test]
    fn unsafe_tag_is_kept_apart() {
        let n = one("a: !unsafe '{{ x }}'\n");
        assert_eq!(
            n.get("a").unwrap().value,
            NodeValue::Unsafe("{{ x }}".into())
        );
    }
}
