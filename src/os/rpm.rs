//! RPM packages through dnf or yum: the one read-only script a plan runs (`rpm -qp` for local
//! files, `rpm -q` for what is installed, `check-update` from the cache for upgrades), its
//! parser, and the `dnf`/`yum` command lines that change things.
use std::collections::HashMap;

use super::{check_word, sh};
use crate::text::sections;

/// The package manager that changes things (rpm itself only reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Dnf,
    Yum,
}

impl Tool {
    pub fn bin(self) -> &'static str {
        match self {
            Tool::Dnf => "dnf",
            Tool::Yum => "yum",
        }
    }

    /// The verb that upgrades installed packages.
    fn upgrade_verb(self) -> &'static str {
        match self {
            Tool::Dnf => "upgrade",
            Tool::Yum => "update",
        }
    }
}

/// What the query asks about one requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Installed packages matching a name (`foo`, `foo-1.0`, `foo.x86_64`: rpm's own matching).
    Name(String),
    /// A local `.rpm` file: its header, then its package as installed.
    File(String),
}

/// One package header: name, `epoch:version-release`, architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub evr: String,
    pub arch: String,
}

impl Header {
    /// `name-version-release` (with `epoch:` only when not 0), as dnf prints it.
    pub fn nevr(&self) -> String {
        let vr = self.evr.strip_prefix("0:").unwrap_or(&self.evr);
        format!("{}-{vr}", self.name)
    }
}

/// The answer for one requested package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// For a file: its header, or why it could not be read.
    pub file: Option<Result<Header, String>>,
    /// Installed packages that match (several for multi-version packages like kernels).
    pub installed: Vec<Header>,
}

/// Everything the query found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    /// `check-update` from the cache: name -> newer `epoch:version-release`. `None`: it could
    /// not tell (no cache yet, or the tool failed).
    pub updates: Option<HashMap<String, String>>,
    /// The tools the host lacks among `rpm` and the package manager.
    pub missing: Vec<String>,
}

const QF: &str = "%{NAME}\\t%|EPOCH?{%{EPOCH}}:{0}|:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";

/// The script: one round trip, reads only (`check-update` runs from the cache, `-C`).
/// `updates` are the installed names whose upgrades are wanted.
pub fn query_script(tool: Tool, queries: &[Query], updates: &[String]) -> Result<String, String> {
    let qf = sh(QF)?;
    let bin = tool.bin();
    let mut s = format!(
        "echo @@missing\n\
         for t in rpm {bin}; do command -v \"$t\" >/dev/null 2>&1 || echo \"$t\"; done\n"
    );
    for (i, q) in queries.iter().enumerate() {
        match q {
            Query::Name(n) => {
                check_word("package name", n)?;
                s.push_str(&format!(
                    "echo @@have.{i}\nrpm -q --qf {qf} {} 2>/dev/null\n",
                    sh(n)?
                ));
            }
            Query::File(f) => {
                check_word("package file", f)?;
                let f = sh(f)?;
                s.push_str(&format!(
                    "echo @@file.{i}\n\
                     if out=$(rpm -qp --qf {qf} {f} 2>&1); then\n\
                     printf '%s\\n' \"$out\"\n\
                     echo @@have.{i}\n\
                     rpm -q --qf {qf} \"$(rpm -qp --qf '%{{NAME}}' {f} 2>/dev/null)\" 2>/dev/null\n\
                     else printf 'error: %s\\n' \"$out\"; fi\n"
                ));
            }
        }
    }
    if !updates.is_empty() {
        let names = updates
            .iter()
            .map(|n| check_word("package name", n).and_then(|()| sh(n)))
            .collect::<Result<Vec<_>, _>>()?;
        s.push_str(&format!(
            "echo @@updates\n{bin} -q -C check-update {} 2>/dev/null\nrc=$?\necho @@updates_rc\necho $rc\n",
            names.join(" ")
        ));
    }
    Ok(s)
}

/// Header lines (`NAME\tEVR\tARCH`); other lines (warnings, "package x is not installed") are
/// skipped.
fn parse_headers(text: &str) -> Vec<Header> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, evr, arch) = (f.next()?, f.next()?, f.next()?);
            (!name.is_empty() && !name.contains(' ')).then(|| Header {
                name: name.to_string(),
                evr: evr.to_string(),
                arch: arch.to_string(),
            })
        })
        .collect()
}

/// `check-update` lines: `name.arch  [epoch:]version-release  repo` (a long name may wrap the
/// rest onto the next line); nothing after "Obsoleting Packages".
pub fn parse_check_update(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut carry: Option<String> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("Obsoleting") {
            break;
        }
        let joined = match carry.take() {
            Some(c) => format!("{c} {line}"),
            None => line.to_string(),
        };
        let f: Vec<&str> = joined.split_whitespace().collect();
        match f.as_slice() {
            [na] if na.contains('.') && line.starts_with(|c: char| !c.is_whitespace()) => {
                carry = Some(na.to_string());
            }
            [na, evr, _repo, ..] if evr.chars().any(|c| c.is_ascii_digit()) => {
                if let Some((name, _arch)) = na.rsplit_once('.') {
                    out.insert(name.to_string(), evr.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

/// Read the script's output for `queries` (the list the script was built from).
pub fn parse(out: &str, queries: &[Query]) -> Snapshot {
    let sec = sections(out);
    let entries = queries
        .iter()
        .enumerate()
        .map(|(i, q)| Entry {
            file: match q {
                Query::File(_) => Some(match sec.get(&format!("file.{i}")) {
                    Some(t) if t.starts_with("error: ") => {
                        Err(t["error: ".len()..].trim().to_string())
                    }
                    Some(t) => parse_headers(t)
                        .into_iter()
                        .next()
                        .ok_or_else(|| format!("cannot read the package header: {}", t.trim())),
                    None => Err("no answer".to_string()),
                }),
                Query::Name(_) => None,
            },
            installed: sec
                .get(&format!("have.{i}"))
                .map(|t| parse_headers(t))
                .unwrap_or_default(),
        })
        .collect();
    // check-update: 0 nothing newer, 100 updates listed, anything else: it could not tell.
    let updates = match sec.get("updates_rc").map(|s| s.trim()) {
        Some("0") => Some(HashMap::new()),
        Some("100") => Some(parse_check_update(sec.get("updates").map_or("", |s| s))),
        _ => None,
    };
    Snapshot {
        entries,
        updates,
        missing: sec
            .get("missing")
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// Options every changing call gets.
#[derive(Debug, Clone, Default)]
pub struct RpmFlags {
    pub disable_gpg_check: bool,
    pub enablerepo: Vec<String>,
    pub disablerepo: Vec<String>,
}

fn tool_argv(tool: Tool, flags: &RpmFlags, verb: &str, targets: &[String]) -> Vec<String> {
    let mut v = vec![tool.bin().to_string(), "-y".to_string()];
    if flags.disable_gpg_check {
        v.push("--nogpgcheck".into());
    }
    v.extend(
        flags
            .disablerepo
            .iter()
            .map(|r| format!("--disablerepo={r}")),
    );
    v.extend(flags.enablerepo.iter().map(|r| format!("--enablerepo={r}")));
    v.push(verb.into());
    v.extend(targets.iter().cloned());
    v
}

/// `dnf -y install ...` (names and local files).
pub fn install_argv(tool: Tool, flags: &RpmFlags, targets: &[String]) -> Vec<String> {
    tool_argv(tool, flags, "install", targets)
}

/// `dnf -y upgrade ...` / `yum -y update ...`.
pub fn upgrade_argv(tool: Tool, flags: &RpmFlags, targets: &[String]) -> Vec<String> {
    tool_argv(tool, flags, tool.upgrade_verb(), targets)
}

/// `dnf -y downgrade FILE...` (an older local file over a newer installed version).
pub fn downgrade_argv(tool: Tool, flags: &RpmFlags, targets: &[String]) -> Vec<String> {
    tool_argv(tool, flags, "downgrade", targets)
}

/// `dnf -y remove ...`.
pub fn remove_argv(tool: Tool, flags: &RpmFlags, names: &[String]) -> Vec<String> {
    tool_argv(tool, flags, "remove", names)
}

/// `dnf -y makecache` (Ansible's `update_cache`).
pub fn makecache_argv(tool: Tool, flags: &RpmFlags) -> Vec<String> {
    tool_argv(tool, flags, "makecache", &[])
}

/// A local file as dnf reads it: a path with a `/`.
pub fn file_target(path: &str) -> String {
    if path.contains('/') {
        path.to_string()
    } else {
        format!("./{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_answers_are_read_per_package() {
        let q = vec![
            Query::Name("bash".into()),
            Query::File("/tmp/cs-web-2.1.rpm".into()),
            Query::Name("nosuch".into()),
            Query::File("/tmp/gone.rpm".into()),
        ];
        let out = "@@missing\n\
                   @@have.0\nbash\t0:5.1.8-6.el9\tx86_64\n\
                   @@file.1\nwarning: /tmp/cs-web-2.1.rpm: Header V4 RSA/SHA256 Signature, key ID 1: NOKEY\n\
                   cryptosense-analyzer-web\t0:2.1-1\tx86_64\n\
                   @@have.1\ncryptosense-analyzer-web\t0:2.0-1\tx86_64\n\
                   @@have.2\npackage nosuch is not installed\n\
                   @@file.3\nerror: error: open of /tmp/gone.rpm failed: No such file or directory\n\
                   @@updates\nbash.x86_64   5.1.8-9.el9   baseos\n\
                   @@updates_rc\n100\n";
        let s = parse(out, &q);
        assert_eq!(s.entries[0].installed[0].evr, "0:5.1.8-6.el9");
        let f = s.entries[1].file.clone().unwrap().unwrap();
        assert_eq!(f.name, "cryptosense-analyzer-web");
        assert_eq!(f.nevr(), "cryptosense-analyzer-web-2.1-1");
        assert_eq!(s.entries[1].installed[0].evr, "0:2.0-1");
        assert!(s.entries[2].installed.is_empty());
        assert!(matches!(&s.entries[3].file, Some(Err(e)) if e.contains("No such file")));
        assert_eq!(
            s.updates.unwrap().get("bash").map(String::as_str),
            Some("5.1.8-9.el9")
        );
    }

    #[test]
    fn check_update_lines_wrap_and_end_at_obsoletes() {
        let u = parse_check_update(
            "\nkernel-core.x86_64  5.14.0-1  baseos\n\
             a-very-long-package-name-that-wraps.noarch\n          2:1.0-3.el9   appstream\n\
             Obsoleting Packages\nold.x86_64  1-1  baseos\n",
        );
        assert_eq!(u.get("kernel-core").map(String::as_str), Some("5.14.0-1"));
        assert_eq!(
            u.get("a-very-long-package-name-that-wraps")
                .map(String::as_str),
            Some("2:1.0-3.el9")
        );
        assert!(!u.contains_key("old"));
        // check-update could not tell (exit 1): no answer, not "nothing newer".
        let s = parse("@@updates\n@@updates_rc\n1\n", &[]);
        assert_eq!(s.updates, None);
    }

    #[test]
    fn command_lines() {
        let f = RpmFlags {
            disable_gpg_check: true,
            enablerepo: vec!["cap".into()],
            disablerepo: vec!["*".into()],
        };
        assert_eq!(
            install_argv(Tool::Dnf, &f, &[file_target("x.rpm")]),
            [
                "dnf",
                "-y",
                "--nogpgcheck",
                "--disablerepo=*",
                "--enablerepo=cap",
                "install",
                "./x.rpm"
            ]
        );
        assert_eq!(
            upgrade_argv(Tool::Yum, &RpmFlags::default(), &["a".into()]),
            ["yum", "-y", "update", "a"]
        );
        assert!(query_script(Tool::Dnf, &[Query::Name("-x".into())], &[]).is_err());
    }
}
