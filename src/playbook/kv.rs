//! Ansible's `key=value` argument strings (`copy: src=a dest={{ root }}/b mode=0644`):
//! split on spaces outside quotes and outside `{{ }}` / `{% %}`.

/// Split a `key=value` string into words; quotes around a whole value are removed.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match quote {
            Some(q) => {
                if c == '\\' && next == Some(q) {
                    cur.push(q);
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                } else {
                    cur.push(c);
                }
            }
            None => {
                if c == '{' && matches!(next, Some('{') | Some('%')) {
                    depth += 1;
                    cur.push(c);
                    if let Some(n) = next {
                        cur.push(n);
                    }
                    i += 2;
                    continue;
                }
                if depth > 0 && matches!(c, '}' | '%') && next == Some('}') {
                    depth -= 1;
                    cur.push(c);
                    cur.push('}');
                    i += 2;
                    continue;
                }
                if depth == 0 && (c == '"' || c == '\'') {
                    quote = Some(c);
                } else if depth == 0 && c.is_whitespace() {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                } else {
                    cur.push(c);
                }
            }
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unbalanced quotes".into());
    }
    if depth > 0 {
        return Err("unclosed `{{` or `{%`".into());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn keeps_templates_whole() {
        assert_eq!(
            split("src=motd dest={{ root }}/etc/motd mode=0644").unwrap(),
            vec!["src=motd", "dest={{ root }}/etc/motd", "mode=0644"]
        );
        assert_eq!(
            split("msg='hello world' x=\"a b\"").unwrap(),
            vec!["msg=hello world", "x=a b"]
        );
        assert!(split("a='b").is_err());
        assert!(split("a={{ b").is_err());
    }
}
