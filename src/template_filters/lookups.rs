//! Lookup plugins: `lookup('name', terms..., key=value)`, `query`/`q` (always a list).
//! env, file, vars, first_found, template, password, items, list, dict, indexed_items.
//! Relative paths resolve against `role_path` and `playbook_dir` from the template's variables,
//! which reach the function as `__ctx` (the variables object, or tera's `__tera_context` JSON).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value};
use tera::Result;

use super::args::{err, Bound};
use super::pystr;
use super::pyval;
use super::signatures::{self, Sig};

/// Renders a template file's text with variables (set by the template layer above).
pub type Renderer = fn(&str, &Value) -> std::result::Result<String, String>;
static RENDERER: OnceLock<Renderer> = OnceLock::new();

/// The template layer registers how `lookup('template', ...)` renders.
pub fn set_template_renderer(f: Renderer) {
    let _ = RENDERER.set(f);
}

struct Call<'a> {
    name: &'static str,
    terms: Vec<Value>,
    opts: Bound,
    ctx: &'a Map<String, Value>,
}

fn ctx_str(ctx: &Map<String, Value>, k: &str) -> Option<String> {
    ctx.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Where Ansible looks for `rel` of kind `sub` (files, templates): the role, then the playbook.
fn search_paths(ctx: &Map<String, Value>, sub: &str, rel: &str) -> Vec<PathBuf> {
    if Path::new(rel).is_absolute() {
        return vec![PathBuf::from(rel)];
    }
    let mut out = Vec::new();
    for base in [ctx_str(ctx, "role_path"), ctx_str(ctx, "playbook_dir")]
        .into_iter()
        .flatten()
    {
        out.push(Path::new(&base).join(sub).join(rel));
        out.push(Path::new(&base).join(rel));
    }
    out.push(PathBuf::from(rel));
    out
}

fn find(ctx: &Map<String, Value>, sub: &str, rel: &str) -> Option<PathBuf> {
    search_paths(ctx, sub, rel)
        .into_iter()
        .find(|p| p.is_file())
}

fn term_str(c: &Call, t: &Value) -> Result<String> {
    match t {
        Value::String(s) => Ok(s.clone()),
        other => Err(err(
            c.name,
            format!("expects string terms, got {}", pystr::repr(other)),
        )),
    }
}

fn env(c: &Call) -> Result<Vec<Value>> {
    c.terms
        .iter()
        .map(|t| {
            let name = term_str(c, t)?;
            Ok(match std::env::var(&name) {
                Ok(v) => Value::String(v),
                Err(_) => c
                    .opts
                    .get(0)
                    .cloned()
                    .unwrap_or(Value::String(String::new())),
            })
        })
        .collect()
}

fn file(c: &Call) -> Result<Vec<Value>> {
    c.terms
        .iter()
        .map(|t| {
            let rel = term_str(c, t)?;
            let p = find(c.ctx, "files", &rel)
                .ok_or_else(|| err(c.name, format!("could not locate file in lookup: {rel}")))?;
            let mut s = std::fs::read_to_string(&p)
                .map_err(|e| err(c.name, format!("{}: {e}", p.display())))?;
            if c.opts.flag(0, false) {
                s = s.trim_start().to_string();
            }
            if c.opts.flag(1, true) {
                s = s.trim_end().to_string();
            }
            Ok(Value::String(s))
        })
        .collect()
}

fn vars(c: &Call) -> Result<Vec<Value>> {
    c.terms
        .iter()
        .map(|t| {
            let name = term_str(c, t)?;
            match c.ctx.get(&name) {
                Some(v) => Ok(v.clone()),
                None => c.opts.get(0).cloned().ok_or_else(|| {
                    tera::Error::msg(format!("No variable named '{name}' was found."))
                }),
            }
        })
        .collect()
}

fn first_found(c: &Call) -> Result<Vec<Value>> {
    let mut files: Vec<String> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut skip = c.opts.flag(2, false);
    let add_list = |v: &Value, into: &mut Vec<String>| match v {
        Value::Array(a) => into.extend(a.iter().map(pystr::str)),
        Value::String(s) => into.extend(s.split([',', ';']).map(|x| x.trim().to_string())),
        Value::Null => {}
        other => into.push(pystr::str(other)),
    };
    for t in &c.terms {
        match t {
            Value::Object(m) => {
                if let Some(f) = m.get("files") {
                    add_list(f, &mut files);
                }
                if let Some(p) = m.get("paths") {
                    add_list(p, &mut paths);
                }
                skip = skip || m.get("skip").is_some_and(pyval::truthy);
            }
            Value::Array(a) => files.extend(a.iter().map(pystr::str)),
            other => files.push(pystr::str(other)),
        }
    }
    if let Some(f) = c.opts.get(0) {
        add_list(f, &mut files);
    }
    if let Some(p) = c.opts.get(1) {
        add_list(p, &mut paths);
    }
    for f in &files {
        let candidates: Vec<PathBuf> = if paths.is_empty() || Path::new(f).is_absolute() {
            search_paths(c.ctx, "files", f)
        } else {
            paths
                .iter()
                .flat_map(|p| search_paths(c.ctx, "files", &Path::new(p).join(f).to_string_lossy()))
                .collect()
        };
        if let Some(p) = candidates.into_iter().find(|p| p.exists()) {
            return Ok(vec![Value::String(p.to_string_lossy().into_owned())]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(err(c.name, "No file was found when using first_found."))
}

fn template(c: &Call) -> Result<Vec<Value>> {
    let render = RENDERER
        .get()
        .ok_or_else(|| err(c.name, "no template renderer registered"))?;
    let mut vars = Value::Object(c.ctx.clone());
    if let (Some(Value::Object(extra)), Value::Object(m)) = (c.opts.get(3), &mut vars) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    c.terms
        .iter()
        .map(|t| {
            let rel = term_str(c, t)?;
            let p = find(c.ctx, "templates", &rel).ok_or_else(|| {
                err(
                    c.name,
                    format!("the template file {rel} could not be found for the lookup"),
                )
            })?;
            let src = std::fs::read_to_string(&p)
                .map_err(|e| err(c.name, format!("{}: {e}", p.display())))?;
            render(&src, &vars)
                .map(Value::String)
                .map_err(|e| err(c.name, format!("{}: {e}", p.display())))
        })
        .collect()
}

const ASCII_LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const ASCII_UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// Ansible's `chars=` names (string module constants) or literal characters; `,,` is a comma.
fn charset(spec: &str) -> String {
    let mut out = String::new();
    if spec.contains(",,") {
        out.push(',');
    }
    for part in spec.replace(",,", ",").split(',').filter(|p| !p.is_empty()) {
        match part {
            "ascii_letters" => out.push_str(&format!("{ASCII_LOWER}{ASCII_UPPER}")),
            "ascii_lowercase" => out.push_str(ASCII_LOWER),
            "ascii_uppercase" => out.push_str(ASCII_UPPER),
            "digits" => out.push_str(DIGITS),
            "hexdigits" => out.push_str("0123456789abcdefABCDEF"),
            "octdigits" => out.push_str("01234567"),
            "punctuation" => out.push_str("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
            other => out.push_str(other),
        }
    }
    out
}

fn random_password(len: usize, chars: &[char]) -> std::result::Result<String, String> {
    if chars.is_empty() {
        return Err("no characters to make a password of".into());
    }
    let mut out = String::with_capacity(len);
    let limit = 256 - (256 % chars.len());
    while out.chars().count() < len {
        let mut buf = [0u8; 64];
        crate::entropy::fill(&mut buf)?;
        for b in buf {
            if (b as usize) < limit && out.chars().count() < len {
                out.push(chars[b as usize % chars.len()]);
            }
        }
    }
    Ok(out)
}

/// `password`: the first line of the file (before ` salt=`), or a new random password written
/// there (mode 0600). `/dev/null` never stores.
fn password(c: &Call) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for t in &c.terms {
        let term = term_str(c, t)?;
        let mut words = term.split_whitespace();
        let rel = words
            .next()
            .ok_or_else(|| err(c.name, "needs a file path"))?
            .to_string();
        let mut length = c.opts.int_or(0, 20)?;
        let mut chars = c.opts.get(1).map(|v| match v {
            Value::Array(a) => a.iter().map(pystr::str).collect::<Vec<_>>().join(","),
            other => pystr::str(other),
        });
        for w in words {
            match w.split_once('=') {
                Some(("length", n)) => {
                    length = n
                        .parse()
                        .map_err(|_| err(c.name, format!("bad length '{n}'")))?
                }
                Some(("chars", cs)) => chars = Some(cs.to_string()),
                Some(("encrypt" | "seed" | "ident", _)) => {
                    return Err(err(c.name, format!("'{w}' is not supported by castellan")))
                }
                _ => return Err(err(c.name, format!("unrecognized option '{w}'"))),
            }
        }
        let set: Vec<char> =
            charset(&chars.unwrap_or_else(|| "ascii_letters,digits,.,:,-,_".into()))
                .chars()
                .collect();
        let path = match ctx_str(c.ctx, "playbook_dir") {
            Some(base) if !Path::new(&rel).is_absolute() => Path::new(&base).join(&rel),
            _ => PathBuf::from(&rel),
        };
        if rel == "/dev/null" {
            out.push(Value::String(
                random_password(length.max(0) as usize, &set).map_err(|e| err(c.name, e))?,
            ));
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            let line = text.lines().next().unwrap_or("");
            let pw = line.split_once(" salt=").map_or(line, |(p, _)| p);
            out.push(Value::String(pw.to_string()));
            continue;
        }
        let pw = random_password(length.max(0) as usize, &set).map_err(|e| err(c.name, e))?;
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(c.name, format!("{}: {e}", dir.display())))?;
        }
        write_private(&path, &format!("{pw}\n"))
            .map_err(|e| err(c.name, format!("{}: {e}", path.display())))?;
        out.push(Value::String(pw));
    }
    Ok(out)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

fn items(c: &Call) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for t in &c.terms {
        match t {
            Value::Array(a) => out.extend(a.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    Ok(out)
}

fn list(c: &Call) -> Result<Vec<Value>> {
    Ok(c.terms.clone())
}

fn dict(c: &Call) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for t in &c.terms {
        let m = t
            .as_object()
            .ok_or_else(|| err(c.name, "with_dict expects a dict"))?;
        for (k, v) in m {
            let mut e = Map::new();
            e.insert("key".into(), Value::String(k.clone()));
            e.insert("value".into(), v.clone());
            out.push(Value::Object(e));
        }
    }
    Ok(out)
}

fn indexed_items(c: &Call) -> Result<Vec<Value>> {
    Ok(items(c)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| Value::Array(vec![pyval::int_value(i as i64), v]))
        .collect())
}

type Plugin = fn(&Call) -> Result<Vec<Value>>;

fn plugin(name: &str) -> Option<Plugin> {
    Some(match name {
        "env" => env,
        "file" => file,
        "vars" => vars,
        "first_found" => first_found,
        "template" => template,
        "password" => password,
        "items" => items,
        "list" => list,
        "dict" => dict,
        "indexed_items" => indexed_items,
        _ => return None,
    })
}

fn context(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default(),
        _ => Map::new(),
    }
}

/// `lookup(name, *terms, **options)` (`always_list` for query/q).
pub fn run(b: &Bound, always_list: bool) -> Result<Value> {
    let name = b.str(0)?;
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(&name);
    let (Some(sig), Some(f)) = (signatures::lookup(short), plugin(short)) else {
        let known: Vec<&str> = signatures::names(signatures::Kind::Lookup).collect();
        return Err(err(
            b.name,
            format!(
                "lookup plugin '{name}' not found (castellan has: {})",
                known.join(", ")
            ),
        ));
    };
    let ctx = context(b.kw.get("__ctx"));
    let mut opts_in: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    let mut wantlist = always_list;
    let mut errors = "strict".to_string();
    for (k, v) in &b.kw {
        match k.as_str() {
            "__ctx" => {}
            "wantlist" => wantlist = wantlist || pyval::truthy(v),
            "errors" => errors = pystr::str(v),
            _ => {
                opts_in.insert(k.clone(), v.clone());
            }
        }
    }
    let opts = bind_options(sig, &opts_in)?;
    let call = Call {
        name: sig.name,
        terms: b.extra.clone(),
        opts,
        ctx: &ctx,
    };
    let ran = match f(&call) {
        Ok(r) => r,
        Err(e) if errors == "ignore" || errors == "warn" => {
            let _ = e;
            return Ok(if wantlist {
                Value::Array(Vec::new())
            } else {
                Value::Null
            });
        }
        Err(e) => return Err(e),
    };
    if wantlist {
        return Ok(Value::Array(ran));
    }
    Ok(shape(ran))
}

/// `lookup()`'s result without wantlist: strings joined with `,`, one item as itself.
fn shape(ran: Vec<Value>) -> Value {
    if !ran.is_empty() && ran.iter().all(Value::is_string) {
        return Value::String(ran.iter().map(pystr::str).collect::<Vec<_>>().join(","));
    }
    if ran.len() == 1 {
        return ran.into_iter().next().unwrap_or(Value::Null);
    }
    Value::Array(ran)
}

fn bind_options(
    sig: &'static Sig,
    opts: &std::collections::HashMap<String, Value>,
) -> Result<Bound> {
    Bound::named(sig, opts).map(|mut b| {
        b.extra.clear();
        b
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_result_shapes_like_ansible() {
        // lookup('items', [1,2], [3]) -> [1, 2, 3]; lookup('items', ['a','b']) -> 'a,b';
        // lookup('vars', 'x') -> 1; lookup('env', 'HOME', 'NOPE') -> '/root,'
        assert_eq!(shape(vec![json!(1), json!(2), json!(3)]), json!([1, 2, 3]));
        assert_eq!(shape(vec![json!("a"), json!("b")]), json!("a,b"));
        assert_eq!(shape(vec![json!(1)]), json!(1));
        assert_eq!(shape(vec![json!("/root"), json!("")]), json!("/root,"));
    }

    #[test]
    fn password_charsets() {
        assert_eq!(charset("digits"), DIGITS);
        assert_eq!(charset("ascii_lowercase,,,"), format!(",{ASCII_LOWER}"));
        let pw = random_password(30, &charset("digits").chars().collect::<Vec<_>>()).unwrap();
        assert_eq!(pw.len(), 30);
        assert!(pw.chars().all(|c| c.is_ascii_digit()));
    }
}
