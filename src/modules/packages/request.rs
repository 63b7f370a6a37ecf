//! What a package task asks for, read from its arguments: the packages (names, apt's
//! `name=version` pins, local `.deb`/`.rpm` files) and the state, with Ansible's words
//! (`installed`/`removed` for `present`/`absent`).
use serde_json::Value;

use crate::modules::Args;
use crate::template::is_template;

/// The wanted state of every package of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkgState {
    Present,
    Latest,
    Absent,
}

/// The `state` choices of every package module.
pub const STATES: &[&str] = &["present", "installed", "latest", "absent", "removed"];

impl PkgState {
    pub fn of(args: &Args) -> Self {
        match args.str("state") {
            Some("latest") => PkgState::Latest,
            Some("absent" | "removed") => PkgState::Absent,
            _ => PkgState::Present,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            PkgState::Present => "present",
            PkgState::Latest => "latest",
            PkgState::Absent => "absent",
        }
    }
}

/// One requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A package by name, with an exact version for apt's `name=version`.
    Name {
        name: String,
        version: Option<String>,
    },
    /// A local package file on the host.
    File(String),
}

/// The kind of package files a manager installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Deb,
    Rpm,
}

impl Family {
    fn ext(self) -> &'static str {
        match self {
            Family::Deb => ".deb",
            Family::Rpm => ".rpm",
        }
    }
}

/// One name as written: checked, and read as a file, a pinned name or a name.
fn one(s: &str, family: Family) -> Result<Wanted, String> {
    let s = s.trim();
    if s.contains("://") {
        return Err(format!(
            "`{s}`: installing from a URL is not supported; copy the file to the host and give its path"
        ));
    }
    crate::os::check_word("package name", s)?;
    if s.ends_with(family.ext()) {
        return Ok(Wanted::File(s.to_string()));
    }
    if s.contains(['*', '?', '[']) {
        return Err(format!(
            "`{s}`: wildcards in package names are not supported"
        ));
    }
    match (family, s.split_once('=')) {
        (Family::Deb, Some((n, v))) if !n.is_empty() && !v.is_empty() => Ok(Wanted::Name {
            name: n.to_string(),
            version: Some(v.to_string()),
        }),
        (Family::Deb, Some(_)) => Err(format!("`{s}`: expected name=version")),
        _ => Ok(Wanted::Name {
            name: s.to_string(),
            version: None,
        }),
    }
}

fn strings(v: &[Value]) -> impl Iterator<Item = String> + '_ {
    v.iter().map(|x| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The packages of `name` (and of apt's `deb`), rendered.
pub fn wanted(args: &Args, family: Family) -> Result<Vec<Wanted>, String> {
    let mut out = Vec::new();
    for s in strings(&args.list("name")) {
        out.push(one(&s, family)?);
    }
    if let Some(deb) = args.string("deb") {
        crate::os::check_word("package file", &deb)?;
        out.push(Wanted::File(deb));
    }
    Ok(out)
}

/// Load-time check of the literal names (templated ones are checked once rendered).
pub fn check_literal_names(args: &Args, family: Family) -> Result<(), String> {
    for s in strings(&args.list("name")).filter(|s| !is_template(s)) {
        one(&s, family).map_err(|e| format!("argument `name`: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        Args {
            map: v.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn names_files_and_pins() {
        let a = args(
            json!({"name": ["curl", "/tmp/x_1.0_all.deb", "libpq5=15.5-0+deb12u1"], "deb": "y.deb"}),
        );
        assert_eq!(
            wanted(&a, Family::Deb).unwrap(),
            [
                Wanted::Name {
                    name: "curl".into(),
                    version: None
                },
                Wanted::File("/tmp/x_1.0_all.deb".into()),
                Wanted::Name {
                    name: "libpq5".into(),
                    version: Some("15.5-0+deb12u1".into())
                },
                Wanted::File("y.deb".into()),
            ]
        );
        let r = args(json!({"name": ["cs-web-1.0.rpm", "bash"]}));
        assert_eq!(
            wanted(&r, Family::Rpm).unwrap()[0],
            Wanted::File("cs-web-1.0.rpm".into())
        );
    }

    #[test]
    fn what_cannot_be_a_package_is_refused() {
        for bad in ["-o", "a b", "http://x/y.rpm", "lib*", "=1.0"] {
            let a = args(json!({ "name": bad }));
            assert!(check_literal_names(&a, Family::Deb).is_err(), "{bad}");
        }
        let t = args(json!({"name": "{{ pkgs }}"}));
        assert!(check_literal_names(&t, Family::Deb).is_ok());
        assert_eq!(
            PkgState::of(&args(json!({"state": "removed"}))),
            PkgState::Absent
        );
        assert_eq!(PkgState::of(&args(json!({}))), PkgState::Present);
    }
}
