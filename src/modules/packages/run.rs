//! What every package action shares: running a package manager command as the task's user,
//! failing with its output the way Ansible does, and telling what changed from the installed
//! versions before and after.
use std::collections::BTreeMap;

use serde_json::{json, Map};

use crate::connection::{ExecOutput, ExecRequest};
use crate::modules::{ActionCtx, Diff, ModuleError};

/// Installed versions by package name (several for multi-version rpm packages).
pub type Versions = BTreeMap<String, Vec<String>>;

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

/// Run one command on the host (as the task's become user).
pub async fn exec(ctx: &ActionCtx<'_>, argv: &[String]) -> Result<ExecOutput, ModuleError> {
    let req = ExecRequest {
        argv: argv.to_vec(),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    Ok(ctx.conn.exec(&req).await?)
}

/// Run a query script on the host (as the task's become user).
pub async fn query(ctx: &ActionCtx<'_>, script: &str) -> Result<String, ModuleError> {
    let req = ExecRequest {
        shell: Some(script.to_string()),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    Ok(String::from_utf8_lossy(&ctx.conn.exec(&req).await?.stdout).into_owned())
}

/// A command that failed: `msg` (Ansible's wording for the manager) with `rc`, `stdout`,
/// `stderr` registered.
pub fn failure(msg: String, out: &ExecOutput) -> ModuleError {
    let mut r = Map::new();
    r.insert("rc".into(), json!(out.rc));
    r.insert("stdout".into(), json!(text(&out.stdout)));
    r.insert("stderr".into(), json!(text(&out.stderr)));
    ModuleError::failed_with(msg, r)
}

/// One package that changed between two readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Installed(String, String),
    Removed(String, String),
    /// Name, old versions, new versions.
    Replaced(String, String, String),
}

/// What changed from `before` to `after` (names in either).
pub fn changes(before: &Versions, after: &Versions) -> Vec<Change> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    let empty = Vec::new();
    names
        .into_iter()
        .filter_map(|n| {
            let (b, a) = (
                before.get(n).unwrap_or(&empty),
                after.get(n).unwrap_or(&empty),
            );
            match (b.is_empty(), a.is_empty()) {
                _ if a == b => None,
                (true, _) => Some(Change::Installed(n.clone(), a.join(", "))),
                (_, true) => Some(Change::Removed(n.clone(), b.join(", "))),
                _ => Some(Change::Replaced(n.clone(), b.join(", "), a.join(", "))),
            }
        })
        .collect()
}

/// `name version` lines, for a diff.
fn listing(v: &Versions) -> String {
    v.iter()
        .filter(|(_, vs)| !vs.is_empty())
        .map(|(n, vs)| format!("{n} {}\n", vs.join(", ")))
        .collect()
}

/// The planned change as a diff of the installed versions.
pub fn diff(before: &Versions, after: &Versions) -> Diff {
    Diff {
        path: "installed packages".into(),
        before: listing(before),
        after: listing(after),
        secret: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_readings() {
        let v = |pairs: &[(&str, &str)]| -> Versions {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), vec![v.to_string()]))
                .collect()
        };
        let before = v(&[("a", "1.0"), ("b", "2.0"), ("c", "3.0")]);
        let after = v(&[("a", "1.1"), ("c", "3.0"), ("d", "0.1")]);
        assert_eq!(
            changes(&before, &after),
            [
                Change::Replaced("a".into(), "1.0".into(), "1.1".into()),
                Change::Removed("b".into(), "2.0".into()),
                Change::Installed("d".into(), "0.1".into()),
            ]
        );
        assert!(changes(&before, &before).is_empty());
        let d = diff(&before, &after);
        assert_eq!(d.before, "a 1.0\nb 2.0\nc 3.0\n");
        assert_eq!(d.after, "a 1.1\nc 3.0\nd 0.1\n");
    }
}
