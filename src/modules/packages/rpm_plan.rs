//! dnf's and yum's plan, shared by the `dnf`, `yum` and `package` modules on an RPM host: one
//! query (installed versions from `rpm -q`, local files' headers from `rpm -qp`, upgrades from
//! the cached metadata with `check-update -C`), the decision per package, and the deferred
//! [`RpmRun`] (`makecache`, `install`, `upgrade`, `downgrade`, `remove`, then the versions read
//! again: `changed` is what really changed, `results` lists it as dnf does).
//!
//! A local `.rpm` is installed when no installed version equals the file's (`latest`: when the
//! file is newer than every installed one); a file older than the installed version is left
//! alone unless `allow_downgrade` (then `downgrade`), as Ansible's dnf does. When the cache
//! cannot tell whether an installed package has an upgrade (no metadata yet), `latest` runs the
//! upgrade and reads back what it did. `update_cache` alone changes nothing (Ansible's "Cache
//! updated"). Whether a package not installed is available is not checked before the run: the
//! install fails with the manager's message.
use std::cmp::Ordering;

use async_trait::async_trait;
use serde_json::{json, Map};

use super::request::{PkgState, Wanted};
use super::run::{changes, diff, exec, failure, query, text, Change, Versions};
use crate::connection::ExecRequest;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Args, CheckMode, ModuleCtx, ModuleError, Plan, Step,
};
use crate::os::rpm::{self, Query, RpmFlags, Snapshot, Tool};
use crate::os::rpm_version::compare;

/// dnf's and yum's options beyond names and state.
#[derive(Debug, Clone, Default)]
pub struct RpmOpts {
    pub flags: RpmFlags,
    pub update_cache: bool,
    pub allow_downgrade: bool,
}

impl RpmOpts {
    pub fn from_args(args: &Args) -> Self {
        let list = |k: &str| -> Vec<String> {
            args.list(k)
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        };
        RpmOpts {
            flags: RpmFlags {
                disable_gpg_check: args.bool("disable_gpg_check", false),
                enablerepo: list("enablerepo"),
                disablerepo: list("disablerepo"),
            },
            update_cache: args.bool("update_cache", false),
            allow_downgrade: args.bool("allow_downgrade", false),
        }
    }
}

fn queries(wanted: &[Wanted]) -> Vec<Query> {
    wanted
        .iter()
        .map(|w| match w {
            Wanted::Name { name, .. } => Query::Name(name.clone()),
            Wanted::File(f) => Query::File(f.clone()),
        })
        .collect()
}

/// Installed versions (`version-release`, `epoch:` when not 0) by package name.
fn versions(snap: &Snapshot) -> Versions {
    let mut v = Versions::new();
    for e in &snap.entries {
        for h in &e.installed {
            let evr = h.evr.strip_prefix("0:").unwrap_or(&h.evr).to_string();
            let list = v.entry(h.name.clone()).or_default();
            if !list.contains(&evr) {
                list.push(evr);
            }
        }
    }
    v
}

/// What to do for the packages of one task.
#[derive(Debug, Default)]
struct Decision {
    install: Vec<String>,
    upgrade: Vec<String>,
    downgrade: Vec<String>,
    remove: Vec<String>,
    after: Versions,
    /// A change known from the current state.
    sure: bool,
    notes: Vec<String>,
}

fn push(list: &mut Vec<String>, s: &str) {
    if !list.iter().any(|x| x == s) {
        list.push(s.to_string());
    }
}

fn decide(
    wanted: &[Wanted],
    snap: &Snapshot,
    state: PkgState,
    opts: &RpmOpts,
    before: &Versions,
) -> Result<Decision, ModuleError> {
    let mut d = Decision {
        after: before.clone(),
        ..Decision::default()
    };
    for (w, e) in wanted.iter().zip(&snap.entries) {
        match w {
            Wanted::File(path) => {
                let h = match &e.file {
                    Some(Ok(h)) => h.clone(),
                    Some(Err(err)) if state == PkgState::Absent => {
                        return Err(ModuleError::failed(format!(
                            "Unable to read package file {path}: {err}"
                        )))
                    }
                    Some(Err(err)) => {
                        return Err(ModuleError::failed(format!(
                            "Unable to install package: {path}: {err}"
                        )))
                    }
                    None => return Err(ModuleError::failed(format!("no answer for {path}"))),
                };
                if state == PkgState::Absent {
                    if !e.installed.is_empty() {
                        push(&mut d.remove, &h.name);
                        d.after.remove(&h.name);
                        d.sure = true;
                    }
                    continue;
                }
                if e.installed
                    .iter()
                    .any(|i| compare(&i.evr, &h.evr) == Ordering::Equal)
                {
                    continue;
                }
                let newest = e
                    .installed
                    .iter()
                    .map(|i| i.evr.as_str())
                    .max_by(|a, b| compare(a, b));
                let shown = h.evr.strip_prefix("0:").unwrap_or(&h.evr).to_string();
                let target = rpm::file_target(path);
                match newest.map(|n| (n, compare(&h.evr, n))) {
                    None | Some((_, Ordering::Greater | Ordering::Equal)) => {
                        push(&mut d.install, &target);
                    }
                    Some((_, Ordering::Less)) if state == PkgState::Latest => continue,
                    Some(_) if opts.allow_downgrade => push(&mut d.downgrade, &target),
                    Some((n, _)) => {
                        d.notes.push(format!(
                            "{} {} is installed, newer than {shown} in {path}: nothing done \
                             (allow_downgrade: true installs the older version)",
                            h.name,
                            n.strip_prefix("0:").unwrap_or(n)
                        ));
                        continue;
                    }
                }
                d.after.insert(h.name.clone(), vec![shown]);
                d.sure = true;
            }
            Wanted::Name { name, .. } => {
                let installed = !e.installed.is_empty();
                match state {
                    PkgState::Absent if installed => {
                        push(&mut d.remove, name);
                        for i in &e.installed {
                            d.after.remove(&i.name);
                        }
                        d.sure = true;
                    }
                    PkgState::Absent => {}
                    _ if !installed => {
                        push(&mut d.install, name);
                        d.after.insert(name.clone(), vec!["(available)".into()]);
                        d.sure = true;
                    }
                    PkgState::Latest => match &snap.updates {
                        Some(u) => {
                            if let Some(v) = u.get(name) {
                                push(&mut d.upgrade, name);
                                d.after.insert(name.clone(), vec![v.clone()]);
                                d.sure = true;
                            } else if opts.update_cache {
                                // Decided again once the metadata is refreshed.
                                push(&mut d.upgrade, name);
                            }
                        }
                        None => {
                            push(&mut d.upgrade, name);
                            d.sure = true;
                        }
                    },
                    PkgState::Present => {}
                }
            }
        }
    }
    Ok(d)
}

/// Plan dnf or yum for these packages.
pub async fn plan(
    ctx: &ModuleCtx<'_>,
    tool: Tool,
    wanted: &[Wanted],
    state: PkgState,
    opts: RpmOpts,
) -> Result<Plan, ModuleError> {
    let queries = queries(wanted);
    let mut latest: Vec<String> = Vec::new();
    if state == PkgState::Latest {
        for w in wanted {
            if let Wanted::Name { name, .. } = w {
                push(&mut latest, name);
            }
        }
    }
    let req = ExecRequest {
        shell: Some(rpm::query_script(tool, &queries, &latest)?),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    let out = ctx.host.query(&req).await?;
    let snap = rpm::parse(&String::from_utf8_lossy(&out.stdout), &queries);
    if !snap.missing.is_empty() {
        return Err(ModuleError::failed(format!(
            "{}: {} not found on the host (on a Debian-based system use apt)",
            tool.bin(),
            snap.missing.join(", ")
        )));
    }
    let before = versions(&snap);
    let d = decide(wanted, &snap, state, &opts, &before)?;
    let nothing = d.install.is_empty()
        && d.upgrade.is_empty()
        && d.downgrade.is_empty()
        && d.remove.is_empty();
    let mut result = Map::new();
    result.insert("results".into(), json!([]));
    result.insert("rc".into(), json!(0));
    let msg = if d.notes.is_empty() {
        "Nothing to do".to_string()
    } else {
        d.notes.join("; ")
    };
    if nothing && !opts.update_cache {
        result.insert("msg".into(), json!(msg));
        return Ok(Plan::ok().with_result(result));
    }
    let check = if d.sure {
        CheckMode::WouldChange
    } else {
        CheckMode::Unchanged
    };
    let shown = d.sure.then(|| diff(&before, &d.after));
    let run = RpmRun {
        tool,
        flags: opts.flags,
        makecache: opts.update_cache,
        install: d.install,
        upgrade: d.upgrade,
        downgrade: d.downgrade,
        remove: d.remove,
        queries,
        before,
        notes: d.notes,
        check,
    };
    Ok(Plan::steps(vec![Step::Action(Box::new(run))], shown).with_result(result))
}

/// The deferred dnf/yum run.
struct RpmRun {
    tool: Tool,
    flags: RpmFlags,
    makecache: bool,
    install: Vec<String>,
    upgrade: Vec<String>,
    downgrade: Vec<String>,
    remove: Vec<String>,
    queries: Vec<Query>,
    before: Versions,
    notes: Vec<String>,
    check: CheckMode,
}

impl RpmRun {
    fn commands(&self) -> Vec<Vec<String>> {
        let (t, f) = (self.tool, &self.flags);
        let mut out = Vec::new();
        if self.makecache {
            out.push(rpm::makecache_argv(t, f));
        }
        if !self.install.is_empty() {
            out.push(rpm::install_argv(t, f, &self.install));
        }
        if !self.upgrade.is_empty() {
            out.push(rpm::upgrade_argv(t, f, &self.upgrade));
        }
        if !self.downgrade.is_empty() {
            out.push(rpm::downgrade_argv(t, f, &self.downgrade));
        }
        if !self.remove.is_empty() {
            out.push(rpm::remove_argv(t, f, &self.remove));
        }
        out
    }
}

#[async_trait]
impl Action for RpmRun {
    fn describe(&self) -> String {
        self.commands()
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn in_check_mode(&self) -> CheckMode {
        self.check.clone()
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        for argv in self.commands() {
            let o = exec(ctx, &argv).await?;
            if o.rc != 0 {
                let why = text(&o.stderr);
                return Err(failure(format!("'{}' failed: {why}", argv.join(" ")), &o));
            }
        }
        let out = query(ctx, &rpm::query_script(self.tool, &self.queries, &[])?).await?;
        let after = versions(&rpm::parse(&out, &self.queries));
        let results: Vec<String> = changes(&self.before, &after)
            .into_iter()
            .flat_map(|c| match c {
                Change::Installed(n, v) => vec![format!("Installed: {n}-{v}")],
                Change::Removed(n, v) => vec![format!("Removed: {n}-{v}")],
                Change::Replaced(n, old, new) => {
                    vec![
                        format!("Installed: {n}-{new}"),
                        format!("Removed: {n}-{old}"),
                    ]
                }
            })
            .collect();
        let mut result = Map::new();
        let msg = match (results.is_empty(), self.notes.is_empty()) {
            (_, false) => self.notes.join("; "),
            (true, true) if self.makecache => "Cache updated".to_string(),
            (true, true) => "Nothing to do".to_string(),
            (false, true) => String::new(),
        };
        result.insert("msg".into(), json!(msg));
        result.insert("rc".into(), json!(0));
        let changed = !results.is_empty();
        result.insert("results".into(), json!(results));
        Ok(ActionOutput {
            changed,
            result,
            ..ActionOutput::default()
        })
    }
}
