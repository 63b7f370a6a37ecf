//! apt's plan, shared by the `apt` module and `package` on a Debian-based host: one query
//! (installed versions, local files' own name and version, candidates, the cache's age), the
//! decision per package, and the deferred [`AptRun`] (cache update, `apt-get install`,
//! `apt-get remove`, then the versions read again: `changed` is what really changed).
//!
//! A local `.deb` is installed when the installed version differs from the file's (`latest`:
//! when the file is newer); a file older than the installed version is left alone unless
//! `allow_downgrade`. With `update_cache`, the cache is refreshed first (skipped while it is
//! younger than `cache_valid_time`); a refresh alone counts as a change (Ansible's
//! `cache_updated`), a refresh beside packages that are already as wanted does not. `latest`
//! decides from the cache as it is; after a refresh, the install runs for every `latest` package
//! and what it did is read back.
use std::cmp::Ordering;

use async_trait::async_trait;
use serde_json::{json, Map};

use super::request::{PkgState, Wanted};
use super::run::{changes, diff, exec, failure, query, text, Versions};
use crate::connection::ExecRequest;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Args, CheckMode, ModuleCtx, ModuleError, Plan, Step,
};
use crate::os::deb_version::compare;
use crate::os::dpkg::{self, AptFlags, Query, Snapshot};

/// apt's options beyond names and state.
#[derive(Debug, Clone)]
pub struct AptOpts {
    pub flags: AptFlags,
    pub update_cache: bool,
    /// Seconds: a younger cache is not refreshed.
    pub cache_valid_time: u64,
}

/// Ansible's default `lock_timeout`: wait up to a minute for another apt or dpkg.
const LOCK_TIMEOUT: u64 = 60;

impl Default for AptOpts {
    fn default() -> Self {
        AptOpts {
            flags: AptFlags {
                lock_timeout: LOCK_TIMEOUT,
                ..AptFlags::default()
            },
            update_cache: false,
            cache_valid_time: 0,
        }
    }
}

impl AptOpts {
    /// From the `apt` module's arguments (`cache_valid_time` implies `update_cache`, as in
    /// Ansible).
    pub fn from_args(args: &Args) -> Self {
        let cache_valid_time = args.int("cache_valid_time").unwrap_or(0).max(0) as u64;
        AptOpts {
            flags: AptFlags {
                lock_timeout: args
                    .int("lock_timeout")
                    .map_or(LOCK_TIMEOUT, |t| t.max(0) as u64),
                install_recommends: args
                    .has("install_recommends")
                    .then(|| args.bool("install_recommends", true)),
                allow_downgrade: args.bool("allow_downgrade", false),
                purge: args.bool("purge", false),
                autoremove: args.bool("autoremove", false),
            },
            update_cache: args.bool("update_cache", false) || cache_valid_time > 0,
            cache_valid_time,
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

/// Installed versions of the packages the queries found (config files left: marked).
fn versions(queries: &[Query], snap: &Snapshot) -> Versions {
    let mut v = Versions::new();
    for (q, e) in queries.iter().zip(&snap.entries) {
        let name = match (q, &e.file) {
            (Query::File(_), Some(Ok((n, _)))) => n.clone(),
            (Query::File(_), _) => continue,
            (Query::Name(n), _) => n.clone(),
        };
        let list = v.entry(name).or_default();
        for i in &e.installed {
            let shown = if i.is_installed() {
                i.version.clone()
            } else if i.config_files_only() {
                format!("{} (config files)", i.version)
            } else {
                continue;
            };
            if !list.contains(&shown) {
                list.push(shown);
            }
        }
    }
    v
}

async fn read(
    ctx: &ModuleCtx<'_>,
    queries: &[Query],
    policy: &[String],
) -> Result<Snapshot, ModuleError> {
    let req = ExecRequest {
        shell: Some(dpkg::query_script(queries, policy)?),
        become_user: ctx.become_user.map(str::to_string),
        ..ExecRequest::default()
    };
    let out = ctx.host.query(&req).await?;
    let snap = dpkg::parse(&String::from_utf8_lossy(&out.stdout), queries);
    if !snap.missing.is_empty() {
        return Err(ModuleError::failed(format!(
            "apt: {} not found on the host (apt needs a Debian-based system; on Red Hat use dnf or yum)",
            snap.missing.join(", ")
        )));
    }
    Ok(snap)
}

/// What to do for the packages of one task.
#[derive(Debug, Default)]
struct Decision {
    install: Vec<String>,
    remove: Vec<String>,
    /// Versions expected afterwards (for the diff).
    after: Versions,
    /// A change known from the current state (not only one the refreshed cache may bring).
    sure: bool,
    notes: Vec<String>,
}

impl Decision {
    fn install(&mut self, target: String, name: &str, version: &str) {
        if !self.install.contains(&target) {
            self.install.push(target);
        }
        self.after
            .insert(name.to_string(), vec![version.to_string()]);
        self.sure = true;
    }

    fn remove(&mut self, name: &str) {
        if !self.remove.iter().any(|n| n == name) {
            self.remove.push(name.to_string());
        }
        self.after.remove(name);
        self.sure = true;
    }
}

fn decide(
    wanted: &[Wanted],
    snap: &Snapshot,
    state: PkgState,
    opts: &AptOpts,
    update: bool,
    before: &Versions,
) -> Result<Decision, ModuleError> {
    let mut d = Decision {
        after: before.clone(),
        ..Decision::default()
    };
    for (w, e) in wanted.iter().zip(&snap.entries) {
        let have = e.version();
        match w {
            Wanted::File(path) => {
                let (name, ver) = match &e.file {
                    Some(Ok(nv)) => nv.clone(),
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
                    if have.is_some() {
                        d.remove(&name);
                    }
                    continue;
                }
                match have.map(|h| (h, compare(&ver, h))) {
                    Some((_, Ordering::Equal)) => {}
                    Some((_, Ordering::Less)) if state == PkgState::Latest => {}
                    Some((h, Ordering::Less)) if !opts.flags.allow_downgrade => {
                        d.notes.push(format!(
                            "{name} {h} is installed, newer than {ver} in {path}: nothing done \
                         (allow_downgrade: true installs the older version)"
                        ))
                    }
                    _ => d.install(dpkg::file_target(path), &name, &ver),
                }
            }
            Wanted::Name { name, version } => {
                let config_only = e.installed.iter().any(|i| i.config_files_only());
                match (state, version) {
                    (PkgState::Absent, pin) => {
                        let matches = match (have, pin) {
                            (Some(h), Some(v)) => compare(h, v) == Ordering::Equal,
                            (Some(_), None) => true,
                            (None, _) => config_only && opts.flags.purge,
                        };
                        if matches {
                            d.remove(name);
                        }
                    }
                    (_, Some(v)) => {
                        if have.is_none_or(|h| compare(h, v) != Ordering::Equal) {
                            d.install(format!("{name}={v}"), name, v);
                        }
                    }
                    (_, None) => {
                        let cand = snap.candidates.get(name).cloned().flatten();
                        match have {
                            None => {
                                if cand.is_none() && !update {
                                    return Err(ModuleError::failed(format!(
                                        "No package matching '{name}' is available"
                                    )));
                                }
                                let v = cand.unwrap_or_else(|| "(candidate)".into());
                                d.install(name.clone(), name, &v);
                            }
                            Some(h) if state == PkgState::Latest => {
                                match cand.filter(|c| compare(c, h) == Ordering::Greater) {
                                    Some(c) => d.install(name.clone(), name, &c),
                                    // Decided again once the cache is refreshed.
                                    None if update && !d.install.contains(name) => {
                                        d.install.push(name.clone())
                                    }
                                    None => {}
                                }
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    Ok(d)
}

/// Plan apt for these packages.
pub async fn plan(
    ctx: &ModuleCtx<'_>,
    wanted: &[Wanted],
    state: PkgState,
    opts: AptOpts,
) -> Result<Plan, ModuleError> {
    let queries = queries(wanted);
    let mut policy: Vec<String> = Vec::new();
    if state != PkgState::Absent {
        for w in wanted {
            if let Wanted::Name {
                name,
                version: None,
            } = w
            {
                if !policy.contains(name) {
                    policy.push(name.clone());
                }
            }
        }
    }
    let snap = read(ctx, &queries, &policy).await?;
    let fresh = opts.cache_valid_time > 0
        && matches!((snap.now, snap.cache_time),
            (Some(now), Some(at)) if now - at < opts.cache_valid_time as i64);
    let update = opts.update_cache && !fresh;
    let before = versions(&queries, &snap);
    let d = decide(wanted, &snap, state, &opts, update, &before)?;
    let mut result = Map::new();
    result.insert("cache_updated".into(), json!(false));
    if opts.update_cache {
        if let Some(t) = snap.cache_time {
            result.insert("cache_update_time".into(), json!(t));
        }
    }
    if !d.notes.is_empty() {
        result.insert("msg".into(), json!(d.notes.join("; ")));
    }
    if !update && d.install.is_empty() && d.remove.is_empty() {
        return Ok(Plan::ok().with_result(result));
    }
    let cache_only = wanted.is_empty();
    let check = if d.sure || (update && cache_only) {
        CheckMode::WouldChange
    } else {
        CheckMode::Unchanged
    };
    let shown = d.sure.then(|| diff(&before, &d.after));
    let run = AptRun {
        update,
        install: d.install,
        remove: d.remove,
        flags: opts.flags,
        queries,
        before,
        cache_only,
        check,
    };
    Ok(Plan::steps(vec![Step::Action(Box::new(run))], shown).with_result(result))
}

/// The deferred apt run.
struct AptRun {
    update: bool,
    install: Vec<String>,
    remove: Vec<String>,
    flags: AptFlags,
    queries: Vec<Query>,
    before: Versions,
    /// No package named: the cache refresh is the whole task (and its change).
    cache_only: bool,
    check: CheckMode,
}

#[async_trait]
impl Action for AptRun {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.update {
            parts.push("apt-get update".to_string());
        }
        if !self.install.is_empty() {
            parts.push(format!("apt-get install {}", self.install.join(" ")));
        }
        if !self.remove.is_empty() {
            let verb = if self.flags.purge { "purge" } else { "remove" };
            parts.push(format!("apt-get {verb} {}", self.remove.join(" ")));
        }
        parts.join("; ")
    }

    fn in_check_mode(&self) -> CheckMode {
        self.check.clone()
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let mut result = Map::new();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        if self.update {
            let o = exec(ctx, &dpkg::update_argv(&self.flags)).await?;
            if o.rc != 0 {
                let why = text(&o.stderr);
                return Err(failure(format!("Failed to update apt cache: {why}"), &o));
            }
            result.insert("cache_updated".into(), json!(true));
        }
        let cmds = [
            (!self.install.is_empty()).then(|| dpkg::install_argv(&self.flags, &self.install)),
            (!self.remove.is_empty()).then(|| dpkg::remove_argv(&self.flags, &self.remove)),
        ];
        for argv in cmds.into_iter().flatten() {
            let o = exec(ctx, &argv).await?;
            if o.rc != 0 {
                let why = text(&o.stderr);
                return Err(failure(format!("'{}' failed: {why}", argv.join(" ")), &o));
            }
            stdout.push(text(&o.stdout));
            stderr.push(text(&o.stderr));
        }
        let out = query(ctx, &dpkg::query_script(&self.queries, &[])?).await?;
        let snap = dpkg::parse(&out, &self.queries);
        let after = versions(&self.queries, &snap);
        if let Some(t) = snap.cache_time {
            result.insert("cache_update_time".into(), json!(t));
        }
        result.insert("stdout".into(), json!(stdout.join("\n")));
        result.insert("stderr".into(), json!(stderr.join("\n")));
        let changed = !changes(&self.before, &after).is_empty() || (self.update && self.cache_only);
        Ok(ActionOutput {
            changed,
            result,
            ..ActionOutput::default()
        })
    }
}
