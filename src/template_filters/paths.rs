//! Path filters with Python's `posixpath` semantics (`basename('/a/b/')` is `''`).
use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::pystr;

fn text(v: &Value) -> String {
    pystr::str(v)
}

pub fn py_basename(p: &str) -> &str {
    p.rfind('/').map_or(p, |i| &p[i + 1..])
}

pub fn py_dirname(p: &str) -> String {
    let head = p.rfind('/').map_or("", |i| &p[..=i]);
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

pub fn py_splitext(p: &str) -> (String, String) {
    let base_start = p.rfind('/').map_or(0, |i| i + 1);
    let base = &p[base_start..];
    let lead = base.len() - base.trim_start_matches('.').len();
    match base[lead..].rfind('.') {
        Some(i) => {
            let at = base_start + lead + i;
            (p[..at].to_string(), p[at..].to_string())
        }
        None => (p.to_string(), String::new()),
    }
}

/// `posixpath.normpath`.
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if initial == 0 && (parts.is_empty() || parts.last() == Some(&"..")) => {
                parts.push(c)
            }
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let s = format!("{}{}", "/".repeat(initial), parts.join("/"));
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

pub fn basename(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::String(py_basename(&text(v)).to_string()))
}
pub fn dirname(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::String(py_dirname(&text(v))))
}
pub fn splitext(v: &Value, _: &Bound) -> Result<Value> {
    let (a, b) = py_splitext(&text(v));
    Ok(Value::Array(vec![Value::String(a), Value::String(b)]))
}

/// `expanduser`: `~` and `~/...` from $HOME of the control node.
pub fn expanduser(v: &Value, _: &Bound) -> Result<Value> {
    let p = text(v);
    let home = std::env::var("HOME").unwrap_or_default();
    Ok(Value::String(if p == "~" {
        home
    } else if let Some(r) = p.strip_prefix("~/") {
        format!("{}/{r}", home.trim_end_matches('/'))
    } else {
        p
    }))
}

fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        normpath(p)
    } else {
        let cwd = std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into());
        normpath(&format!("{cwd}/{p}"))
    }
}

pub fn normpath_filter(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::String(normpath(&text(v))))
}

/// `expandvars`: `$NAME` and `${NAME}` from the control node's environment; unknown ones stay.
pub fn expandvars(v: &Value, _: &Bound) -> Result<Value> {
    let t = text(v);
    let re = regex::Regex::new(r"\$(\w+|\{[^}]*\})").map_err(tera::Error::msg)?;
    Ok(Value::String(
        re.replace_all(&t, |c: &regex::Captures| {
            let name = c[1].trim_start_matches('{').trim_end_matches('}');
            std::env::var(name).unwrap_or_else(|_| c[0].to_string())
        })
        .into_owned(),
    ))
}

/// `realpath`: symlinks resolved on the control node where the path exists.
pub fn realpath(v: &Value, _: &Bound) -> Result<Value> {
    let p = absolute(&text(v));
    Ok(Value::String(
        std::fs::canonicalize(&p).map_or(p, |c| c.to_string_lossy().into_owned()),
    ))
}

/// `relpath(start=os.curdir)`.
pub fn relpath(v: &Value, b: &Bound) -> Result<Value> {
    let p = text(v);
    if p.is_empty() {
        return Err(err(b.name, "no path specified"));
    }
    let start = absolute(&b.str_or(0, ".")?);
    let path = absolute(&p);
    let s: Vec<&str> = start.split('/').filter(|x| !x.is_empty()).collect();
    let t: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    let common = s.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; s.len() - common];
    parts.extend(&t[common..]);
    Ok(Value::String(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }))
}

/// `path_join`: `os.path.join(*paths)` of a list (an absolute part restarts the path).
pub fn path_join(v: &Value, _: &Bound) -> Result<Value> {
    let parts: Vec<String> = match v {
        Value::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    };
    let mut out = String::new();
    for p in parts {
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else if out.ends_with('/') {
            out.push_str(&p);
        } else {
            out.push('/');
            out.push_str(&p);
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posixpath_like_python() {
        assert_eq!(py_basename("/a/b/"), "");
        assert_eq!(py_dirname("/a/b/"), "/a/b");
        assert_eq!(py_dirname("x"), "");
        assert_eq!(py_dirname("/x"), "/");
        assert_eq!(
            py_splitext("/etc/x.conf"),
            ("/etc/x".into(), ".conf".into())
        );
        assert_eq!(
            py_splitext("/etc/.bashrc"),
            ("/etc/.bashrc".into(), String::new())
        );
        assert_eq!(normpath("/a/./b/../c//"), "/a/c");
    }
}
