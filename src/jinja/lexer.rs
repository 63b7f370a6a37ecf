//! Jinja2's expression tokens: names, strings (with Python escapes), numbers and operators,
//! each with its byte offset in the template (for `line:column` in errors).
use super::JinjaError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Name(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// An operator or a bracket: `+ - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }`.
    Op(&'static str),
    /// The end of the tag (`}}` or `%}`).
    End,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

const OPS: [&str; 25] = [
    "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":",
    "|", "(", ")", "[", "]", "{", "}",
];

/// Tokenize `src[start..]` up to the closing delimiter (`}}` or `%}`, optionally preceded by
/// `-` or `+`) met outside brackets and strings. Returns the tokens (ending with `End`), the
/// offset of the closing delimiter's first byte and the offset just after it.
pub fn tokens(
    src: &str,
    start: usize,
    close: &str,
) -> Result<(Vec<Token>, usize, usize), JinjaError> {
    let b = src.as_bytes();
    let mut i = start;
    let mut out = Vec::new();
    let mut depth = 0usize;
    loop {
        // Python's `\s`: Unicode white space too (a no-break space between words is common).
        while let Some(c) = src[i..].chars().next().filter(|c| c.is_whitespace()) {
            i += c.len_utf8();
        }
        if i >= b.len() {
            return Err(JinjaError::new(
                start,
                format!("unclosed tag: `{close}` expected"),
            ));
        }
        if depth == 0 {
            for lead in ["-", "+", ""] {
                if src[i..].starts_with(lead) && src[i + lead.len()..].starts_with(close) {
                    // `-}}` after an operand: the `-` is whitespace control, not a minus.
                    out.push(Token {
                        tok: Tok::End,
                        pos: i,
                    });
                    return Ok((out, i, i + lead.len() + close.len()));
                }
            }
        }
        let c = b[i];
        let pos = i;
        if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Name(src[s..i].to_string()),
                pos,
            });
        } else if c.is_ascii_digit() {
            let s = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                i += 1;
            }
            let mut float = false;
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                float = true;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    float = true;
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text = src[s..i].replace('_', "");
            let tok = if float {
                Tok::Float(
                    text.parse()
                        .map_err(|_| JinjaError::new(pos, "bad number"))?,
                )
            } else {
                match text.parse() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => Tok::Float(
                        text.parse()
                            .map_err(|_| JinjaError::new(pos, "bad number"))?,
                    ),
                }
            };
            out.push(Token { tok, pos });
        } else if c == b'\'' || c == b'"' {
            let (s, next) = string(src, i)?;
            i = next;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
        } else if let Some(op) = OPS.iter().find(|o| src[i..].starts_with(**o)) {
            match *op {
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" if depth > 0 => depth -= 1,
                _ => {}
            }
            i += op.len();
            out.push(Token {
                tok: Tok::Op(op),
                pos,
            });
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(JinjaError::new(pos, format!("unexpected character `{ch}`")));
        }
    }
}

/// A Python string literal at `src[at]` (its quote): the value and the offset after it.
fn string(src: &str, at: usize) -> Result<(String, usize), JinjaError> {
    let b = src.as_bytes();
    let q = b[at];
    let mut out = String::new();
    let mut chars = src[at + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        if c as u32 == u32::from(q) {
            return Ok((out, at + 1 + k + 1));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else { break };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '\'' | '"' => out.push(e),
            '\n' => {}
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == n => out.push(ch),
                    _ => return Err(JinjaError::new(at, format!("bad \\{e} escape in a string"))),
                }
            }
            // Python keeps unknown escapes as written.
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Err(JinjaError::new(at, "unterminated string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokens(s, 0, "}}")
            .unwrap()
            .0
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn operators_numbers_strings() {
        assert_eq!(
            toks("a // 2 ** -1.5 ~ 'x\\n' }}"),
            vec![
                Tok::Name("a".into()),
                Tok::Op("//"),
                Tok::Int(2),
                Tok::Op("**"),
                Tok::Op("-"),
                Tok::Float(1.5),
                Tok::Op("~"),
                Tok::Str("x\n".into()),
                Tok::End
            ]
        );
        // `}}` inside brackets or strings does not end the tag; `-}}` does.
        assert_eq!(toks("{'a': '}}'} -}}").len(), 6);
        assert!(tokens("'open", 0, "}}").is_err());
    }
}
