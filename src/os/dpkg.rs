//! Debian packages: the one read-only script a plan runs (`dpkg-deb -f` for local files,
//! `dpkg-query -W` for what is installed, `apt-cache policy` for candidates, the age of apt's
//! cache: the update stamp, else the lists directory, where `apt-config` says they are), its
//! parser, and the `apt-get` command lines that change things.
use std::collections::HashMap;

use super::{check_word, sh};
use crate::text::sections;

/// What the query asks about one requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// An installed package by name (no version, no architecture suffix stripped).
    Name(String),
    /// A local `.deb` file: its own name and version, then that package as installed.
    File(String),
}

/// One installed (or half-installed) package as `dpkg-query` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub name: String,
    pub version: String,
    /// `db:Status-Abbrev`: desired action, status, error flag (`ii `, `rc `, `iU `...).
    pub status: String,
}

impl Installed {
    /// Unpacked and configured (status `i`), as opposed to removed with its configuration
    /// files left (`c`), or broken half-way.
    pub fn is_installed(&self) -> bool {
        self.status.as_bytes().get(1) == Some(&b'i')
    }

    /// Only the configuration files are left (`apt-get remove` without `--purge`).
    pub fn config_files_only(&self) -> bool {
        self.status.as_bytes().get(1) == Some(&b'c')
    }
}

/// The answer for one requested package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// For a file: its `Package` and `Version`, or why they could not be read.
    pub file: Option<Result<(String, String), String>>,
    /// The package as dpkg knows it (none when it never was installed).
    pub installed: Vec<Installed>,
}

impl Entry {
    /// The installed version, when the package is installed.
    pub fn version(&self) -> Option<&str> {
        self.installed
            .iter()
            .find(|i| i.is_installed())
            .map(|i| i.version.as_str())
    }
}

/// Everything the query found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// One per requested package, in order.
    pub entries: Vec<Entry>,
    /// `apt-cache policy`: name -> candidate version (`None`: known, no candidate).
    pub candidates: HashMap<String, Option<String>>,
    /// The host's clock and the time of apt's last successful cache update (seconds).
    pub now: Option<i64>,
    pub cache_time: Option<i64>,
    /// The tools the host lacks among `dpkg-query`, `dpkg-deb`, `apt-get`, `apt-cache`.
    pub missing: Vec<String>,
}

const FORMAT: &str = "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n";

/// The script: one round trip, reads only. `policy` are the names whose candidate versions
/// are needed.
pub fn query_script(queries: &[Query], policy: &[String]) -> Result<String, String> {
    let fmt = sh(FORMAT)?;
    let mut s = String::from(
        "echo @@missing\n\
         for t in dpkg-query dpkg-deb apt-get apt-cache; do command -v \"$t\" >/dev/null 2>&1 || echo \"$t\"; done\n\
         echo @@now\ndate +%s\n\
         echo @@cache_time\n\
         eval \"$(apt-config shell APT_STATE Dir::State/d APT_LISTS Dir::State::Lists/d 2>/dev/null)\"\n\
         stat -c %Y \"${APT_STATE:-/var/lib/apt/}periodic/update-success-stamp\" 2>/dev/null || \
         stat -c %Y \"${APT_LISTS:-/var/lib/apt/lists/}\" 2>/dev/null\n",
    );
    for (i, q) in queries.iter().enumerate() {
        match q {
            Query::Name(n) => {
                check_word("package name", n)?;
                s.push_str(&format!(
                    "echo @@have.{i}\ndpkg-query -W --showformat={fmt} {} 2>/dev/null\n",
                    sh(n)?
                ));
            }
            Query::File(f) => {
                check_word("package file", f)?;
                let f = sh(f)?;
                s.push_str(&format!(
                    "echo @@file.{i}\n\
                     if out=$(LC_ALL=C dpkg-deb -f {f} Package Version 2>&1); then\n\
                     printf '%s\\n' \"$out\"\n\
                     echo @@have.{i}\n\
                     dpkg-query -W --showformat={fmt} \"$(dpkg-deb -f {f} Package)\" 2>/dev/null\n\
                     else printf 'error: %s\\n' \"$out\"; fi\n"
                ));
            }
        }
    }
    if !policy.is_empty() {
        let names = policy
            .iter()
            .map(|n| check_word("package name", n).and_then(|()| sh(n)))
            .collect::<Result<Vec<_>, _>>()?;
        s.push_str(&format!(
            "echo @@policy\nLC_ALL=C apt-cache policy {} 2>/dev/null\n",
            names.join(" ")
        ));
    }
    Ok(s)
}

/// `dpkg-query -W` lines.
fn parse_installed(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, version, status) = (f.next()?, f.next()?, f.next()?);
            (!name.is_empty()).then(|| Installed {
                name: name.to_string(),
                version: version.to_string(),
                status: status.to_string(),
            })
        })
        .collect()
}

/// `dpkg-deb -f FILE Package Version` (or the `error: ...` line the script prints).
fn parse_fields(text: &str) -> Result<(String, String), String> {
    if let Some(e) = text.strip_prefix("error: ") {
        return Err(e.trim().to_string());
    }
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    match (field("Package:"), field("Version:")) {
        (Some(n), Some(v)) => Ok((n, v)),
        _ => Err(format!("no Package/Version fields in: {}", text.trim())),
    }
}

/// `apt-cache policy` output: each package's `Candidate:`.
pub fn parse_policy(text: &str) -> HashMap<String, Option<String>> {
    let mut out = HashMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            if let Some(name) = line.strip_suffix(':') {
                cur = Some(name.to_string());
                out.insert(name.to_string(), None);
            }
            continue;
        }
        if let (Some(n), Some(c)) = (&cur, line.trim().strip_prefix("Candidate:")) {
            let c = c.trim();
            let v = (c != "(none)" && !c.is_empty()).then(|| c.to_string());
            out.insert(n.clone(), v);
        }
    }
    out
}

/// Read the script's output for `queries` (the same list the script was built from).
pub fn parse(out: &str, queries: &[Query]) -> Snapshot {
    let sec = sections(out);
    let num = |k: &str| sec.get(k).and_then(|s| s.trim().parse::<i64>().ok());
    let entries = queries
        .iter()
        .enumerate()
        .map(|(i, q)| Entry {
            file: match q {
                Query::File(_) => Some(
                    sec.get(&format!("file.{i}"))
                        .map_or_else(|| Err("no answer".to_string()), |t| parse_fields(t)),
                ),
                Query::Name(_) => None,
            },
            installed: sec
                .get(&format!("have.{i}"))
                .map(|t| parse_installed(t))
                .unwrap_or_default(),
        })
        .collect();
    Snapshot {
        entries,
        candidates: sec
            .get("policy")
            .map(|t| parse_policy(t))
            .unwrap_or_default(),
        now: num("now"),
        cache_time: num("cache_time"),
        missing: sec
            .get("missing")
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

/// The options every changing `apt-get` call gets.
#[derive(Debug, Clone, Default)]
pub struct AptFlags {
    /// `DPkg::Lock::Timeout`: how long to wait for another apt or dpkg to finish.
    pub lock_timeout: u64,
    /// `--no-install-recommends` (Some(false)) or `--install-recommends` (Some(true)).
    pub install_recommends: Option<bool>,
    pub allow_downgrade: bool,
    pub purge: bool,
    pub autoremove: bool,
}

/// `apt-get` run non-interactively (no debconf question, the packaged configuration kept for
/// files the admin changed, as Ansible's `force-confdef,force-confold`).
fn apt_get(flags: &AptFlags, verb: &str) -> Vec<String> {
    [
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-y",
        "-q",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("DPkg::Lock::Timeout={}", flags.lock_timeout),
        "-o".into(),
        "Dpkg::Options::=--force-confdef".into(),
        "-o".into(),
        "Dpkg::Options::=--force-confold".into(),
        verb.into(),
    ])
    .collect()
}

/// `apt-get update`.
pub fn update_argv(flags: &AptFlags) -> Vec<String> {
    apt_get(flags, "update")
}

/// `apt-get install` of names (`name` or `name=version`) and local files (a path apt reads as a
/// file: absolute, or `./x.deb`).
pub fn install_argv(flags: &AptFlags, targets: &[String]) -> Vec<String> {
    let mut v = apt_get(flags, "install");
    match flags.install_recommends {
        Some(false) => v.push("--no-install-recommends".into()),
        Some(true) => v.push("--install-recommends".into()),
        None => {}
    }
    if flags.allow_downgrade {
        v.push("--allow-downgrades".into());
    }
    v.extend(targets.iter().cloned());
    v
}

/// `apt-get remove` (with `--purge`, `--auto-remove` as asked).
pub fn remove_argv(flags: &AptFlags, names: &[String]) -> Vec<String> {
    let mut v = apt_get(flags, "remove");
    if flags.purge {
        v.push("--purge".into());
    }
    if flags.autoremove {
        v.push("--auto-remove".into());
    }
    v.extend(names.iter().cloned());
    v
}

/// A local file as apt-get reads it: a path with a `/` (a bare `x.deb` is a package name to
/// apt).
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
            Query::Name("curl".into()),
            Query::File("/tmp/x_1.1_all.deb".into()),
            Query::Name("nosuch".into()),
            Query::File("/tmp/missing.deb".into()),
        ];
        let out = "@@missing\n@@now\n1700000100\n@@cache_time\n1700000000\n\
                   @@have.0\ncurl\t7.88.1-10+deb12u5\tii \n\
                   @@file.1\nPackage: x\nVersion: 1.1\n@@have.1\nx\t1.0\trc \n\
                   @@have.2\n\
                   @@file.3\nerror: dpkg-deb: error: failed to read archive '/tmp/missing.deb': No such file or directory\n\
                   @@policy\ncurl:\n  Installed: 7.88.1-10+deb12u5\n  Candidate: 7.88.1-10+deb12u12\n  Version table:\n \
                   *** 7.88.1-10+deb12u5 500\nnosuch:\n  Installed: (none)\n  Candidate: (none)\n";
        let s = parse(out, &q);
        assert_eq!(s.now, Some(1_700_000_100));
        assert_eq!(s.cache_time, Some(1_700_000_000));
        assert!(s.missing.is_empty());
        assert_eq!(s.entries[0].version(), Some("7.88.1-10+deb12u5"));
        assert_eq!(s.entries[1].file, Some(Ok(("x".into(), "1.1".into()))));
        assert_eq!(s.entries[1].version(), None, "rc: only config files left");
        assert!(s.entries[1].installed[0].config_files_only());
        assert!(s.entries[2].installed.is_empty());
        assert!(matches!(&s.entries[3].file, Some(Err(e)) if e.contains("No such file")));
        assert_eq!(
            s.candidates.get("curl"),
            Some(&Some("7.88.1-10+deb12u12".to_string()))
        );
        assert_eq!(s.candidates.get("nosuch"), Some(&None));
    }

    #[test]
    fn names_that_would_be_options_are_refused() {
        assert!(query_script(&[Query::Name("-o".into())], &[]).is_err());
        assert!(query_script(&[Query::Name("a b".into())], &[]).is_err());
        assert!(query_script(&[], &["--x".into()]).is_err());
        let s = query_script(&[Query::File("/tmp/it's.deb".into())], &[]).unwrap();
        assert!(s.contains("'/tmp/it'\\''s.deb'"), "{s}");
    }

    #[test]
    fn command_lines() {
        let f = AptFlags {
            lock_timeout: 60,
            install_recommends: Some(false),
            allow_downgrade: true,
            purge: true,
            autoremove: true,
        };
        let i = install_argv(&f, &["x=1.0".into(), file_target("y.deb")]);
        assert_eq!(
            &i[..3],
            ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
        );
        assert!(i.contains(&"DPkg::Lock::Timeout=60".to_string()));
        assert_eq!(
            &i[i.len() - 4..],
            [
                "--no-install-recommends",
                "--allow-downgrades",
                "x=1.0",
                "./y.deb"
            ]
        );
        let r = remove_argv(&f, &["x".into()]);
        assert_eq!(
            &r[r.len() - 4..],
            ["remove", "--purge", "--auto-remove", "x"]
        );
    }
}
