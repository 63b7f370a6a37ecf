//! Reading ahead: a connection that keeps the states read by [`Connection::prefetch`] (one round
//! trip for the paths a play's later tasks will stat) and answers later [`Connection::stat`]s of
//! the same path, as the same user, asking no more than was read, from them (four `lineinfile`
//! tasks on one file that none of them changes read it once).
//!
//! What was read ahead is dropped as soon as it may be stale:
//! - a command run on any host (an [`Op::Exec`], [`Connection::exec`]) or the engine's
//!   [`Epoch::bump`] (a task that waits for something else to act) drops everything read before
//!   it, on every host: a command may change any file (a restart rewrites `postmaster.pid`,
//!   `patronictl` rewrites every member's configuration);
//! - a file change on this host drops what was read of that path and below it, by the path as
//!   written and by its canonical path (directory symlinks resolved, as the host told at read
//!   time), and whatever was read through a final symbolic link; a change to a path whose
//!   canonical form is not known drops everything of this host; a change of attributes drops
//!   everything of this host (hard links share them).
//!
//! The engine bumps the epoch around a task that waits (`wait_for`) and before each retry of an
//! `until` loop: a poll reads the host.
//!
//! Without [`Connection::batches_reads`] on the connection inside, reading ahead does nothing.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    ConnError, Connection, ExecOutput, ExecRequest, Fetched, FileKind, FileState, Op, OpOutput,
    Want,
};

/// A counter shared by every connection of a run: a command anywhere makes every earlier
/// read-ahead stale.
#[derive(Debug, Default, Clone)]
pub struct Epoch(Arc<AtomicU64>);

impl Epoch {
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

struct Entry {
    path: String,
    become_user: Option<String>,
    want: Want,
    state: FileState,
    real: Option<String>,
    epoch: u64,
}

#[derive(Default)]
struct Cache {
    entries: Vec<Entry>,
    /// Canonical paths told by the host (kept after their entry is used), with their epoch.
    real_of: HashMap<String, (String, u64)>,
    hits: u64,
    /// Paths read ahead, and in how many requests.
    fetched: u64,
    requests: u64,
}

pub struct Prefetching {
    /// The host, for the summary printed at `-v` when the connection closes.
    label: String,
    /// Read ahead and keep what a write wrote: not on the control node
    /// ([`Prefetching::control_node`]).
    remote: bool,
    inner: Arc<dyn Connection>,
    epoch: Epoch,
    cache: Mutex<Cache>,
}

/// `have` answers a stat that wants `want`.
fn covers(have: Want, want: Want) -> bool {
    have.follow == want.follow
        && (have.content || !want.content)
        && (have.checksum || !want.checksum)
}

/// `p` is `dir` or below it.
fn at_or_under(p: &str, dir: &str) -> bool {
    p == dir
        || (p.len() > dir.len()
            && p.starts_with(dir)
            && (dir.ends_with('/') || p.as_bytes()[dir.len()] == b'/'))
}

/// `p` is below `dir` by plain names (no `..` after `dir`, which could lead out of it).
fn strictly_under(p: &str, dir: &str) -> bool {
    p != dir && at_or_under(p, dir) && !p[dir.len()..].split('/').any(|c| c == "..")
}

/// `op` makes a directory that was read as missing (now, by this user) and that this user can
/// search once made: it will be empty. A mode without the owner's search bit may leave its
/// files unreadable to a user who is not root: then nothing below it is kept. (Another owner
/// is no such case: only root may give a directory away, and root searches any directory.)
fn fresh_directory(entries: &[Entry], op: &Op, become_user: Option<&str>, now: u64) -> bool {
    let Op::Mkdir { path, attrs } = op else {
        return false;
    };
    attrs.mode.is_none_or(|m| m & 0o100 != 0)
        && entries.iter().any(|e| {
            e.epoch == now
                && e.path == *path
                && e.become_user.as_deref() == become_user
                && e.state.kind == FileKind::Missing
        })
}

impl Prefetching {
    pub fn new(label: &str, inner: Arc<dyn Connection>, epoch: Epoch) -> Self {
        Prefetching {
            label: label.to_string(),
            remote: true,
            inner,
            epoch,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The control node's connection: it reads nothing ahead and keeps no write (the engine's
    /// own code changes files there too, outside any connection); it only takes part in the
    /// epoch (a local command may change a host).
    pub fn control_node(label: &str, inner: Arc<dyn Connection>, epoch: Epoch) -> Self {
        Prefetching {
            remote: false,
            ..Prefetching::new(label, inner, epoch)
        }
    }

    /// A write went through: what it wrote answers the next reads of the path (four
    /// `lineinfile` tasks on one file read it once), unless a command ran meanwhile.
    fn keep_written(
        &self,
        path: &str,
        content: &[u8],
        follow: bool,
        written: &FileState,
        become_user: Option<&str>,
        epoch: u64,
    ) {
        use sha1::Digest as _;
        if self.epoch.now() != epoch || written.kind != FileKind::File {
            return;
        }
        let mut state = written.clone();
        state.size = content.len() as u64;
        state.sha256 = Some(hex::encode(sha2::Sha256::digest(content)));
        state.sha1 = Some(hex::encode(sha1::Sha1::digest(content)));
        state.content = Some(content.to_vec());
        let mut c = self.cache();
        let real = c
            .real_of
            .get(path)
            .filter(|(_, e)| *e == epoch)
            .map(|(r, _)| r.clone());
        let full = Want {
            content: true,
            checksum: true,
            follow: true,
        };
        // Not followed, the path is now the regular file itself: both kinds of stat see it.
        let wants: &[Want] = if follow {
            &[full]
        } else {
            &[
                full,
                Want {
                    follow: false,
                    ..full
                },
            ]
        };
        for want in wants {
            c.entries.push(Entry {
                path: path.to_string(),
                become_user: become_user.map(str::to_string),
                want: *want,
                state: state.clone(),
                real: real.clone(),
                epoch,
            });
        }
    }

    /// A write that keeps the replaced file's owner, group or mode (not given) gets them from
    /// what was read of the file (through links, as the write script's own `stat -L` would
    /// read them): one process fewer on the host. None when nothing is to fill or not known.
    fn with_known_attrs(&self, op: &Op, become_user: Option<&str>) -> Option<Op> {
        let Op::Write {
            path,
            content,
            attrs,
            backup,
            follow,
        } = op
        else {
            return None;
        };
        if attrs.owner.is_some() && attrs.group.is_some() && attrs.mode.is_some() {
            return None;
        }
        let now = self.epoch.now();
        let c = self.cache();
        let st = &c
            .entries
            .iter()
            .find(|e| {
                e.epoch == now
                    && e.path == *path
                    && e.become_user.as_deref() == become_user
                    && e.want.follow
            })?
            .state;
        if st.kind != FileKind::File {
            return None;
        }
        let attrs = super::Attrs {
            owner: attrs.owner.clone().or_else(|| Some(st.uid.to_string())),
            group: attrs.group.clone().or_else(|| Some(st.gid.to_string())),
            mode: attrs.mode.or(Some(st.mode & 0o7777)),
        };
        Some(Op::Write {
            path: path.clone(),
            content: content.clone(),
            attrs,
            backup: *backup,
            follow: *follow,
        })
    }

    /// How many stats were answered from what was read ahead (for tests and `-v`).
    pub fn hits(&self) -> u64 {
        self.cache().hits
    }

    fn take(&self, path: &str, want: Want, become_user: Option<&str>) -> Option<FileState> {
        let now = self.epoch.now();
        let mut c = self.cache();
        c.entries.retain(|e| e.epoch == now);
        let i = c.entries.iter().position(|e| {
            e.path == path && e.become_user.as_deref() == become_user && covers(e.want, want)
        })?;
        let mut st = c.entries[i].state.clone();
        c.hits += 1;
        if !want.content {
            st.content = None;
        }
        Some(st)
    }

    /// A file change at `path` is about to be made: drop what it may make stale.
    fn invalidate(&self, op: &Op, become_user: Option<&str>) {
        let now = self.epoch.now();
        let mut c = self.cache();
        let (path, all) = match op {
            Op::Exec(_) => {
                drop(c);
                self.epoch.bump();
                return;
            }
            Op::SetAttrs { path, .. } => (path, true),
            Op::Write { path, .. }
            | Op::Mkdir { path, .. }
            | Op::Remove { path }
            | Op::Symlink { path, .. }
            | Op::Touch { path, .. } => (path, false),
        };
        let real = c
            .real_of
            .get(path.as_str())
            .filter(|(_, e)| *e == now)
            .map(|(r, _)| r.clone());
        let fresh = fresh_directory(&c.entries, op, become_user, now);
        // What was read as missing below a directory this makes (empty) is still missing,
        // whatever other name the directory has: the tasks that fill a new directory do not
        // read each of its files again.
        let still_missing = |e: &Entry| {
            fresh
                && e.epoch == now
                && e.state.kind == FileKind::Missing
                && e.become_user.as_deref() == become_user
                && strictly_under(&e.path, path)
        };
        match &real {
            Some(rq) if !all => c.entries.retain(|e| {
                let stale = at_or_under(&e.path, path)
                    || e.real.as_deref().is_none_or(|r| at_or_under(r, rq));
                !stale || still_missing(e)
            }),
            _ => c.entries.retain(still_missing),
        }
        if let (true, Some(rq)) = (fresh, real) {
            // The new directory is no link and holds none: a plain name below it is canonical
            // below the directory's canonical path. Known, a write there drops only itself.
            let mut named = Vec::new();
            for e in c.entries.iter_mut() {
                if e.real.is_some() || !strictly_under(&e.path, path) {
                    continue;
                }
                let rest = &e.path[path.len()..];
                let plain = rest
                    .trim_start_matches('/')
                    .split('/')
                    .all(|n| !matches!(n, "" | "." | ".."));
                if plain {
                    let r = format!(
                        "{}/{}",
                        rq.trim_end_matches('/'),
                        rest.trim_start_matches('/')
                    );
                    e.real = Some(r.clone());
                    named.push((e.path.clone(), r));
                }
            }
            for (p, r) in named {
                c.real_of.insert(p, (r, now));
            }
        }
        if matches!(op, Op::Remove { .. } | Op::Symlink { .. }) {
            // Directories may have become links, or gone: canonical forms are unknown again.
            c.real_of.clear();
        }
    }
}

#[async_trait]
impl Connection for Prefetching {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        self.epoch.bump();
        self.inner.exec(req).await
    }

    async fn query(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        self.inner.query(req).await
    }

    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        if let Some(st) = self.take(path, want, become_user) {
            return Ok(st);
        }
        self.inner.stat(path, want, become_user).await
    }

    async fn stat_many(
        &self,
        reqs: &[(String, Want)],
        become_user: Option<&str>,
    ) -> Result<Vec<Result<Fetched, ConnError>>, ConnError> {
        self.inner.stat_many(reqs, become_user).await
    }

    fn batches_reads(&self) -> bool {
        self.remote && self.inner.batches_reads()
    }

    async fn prefetch(
        &self,
        reqs: &[(String, Want)],
        become_user: Option<&str>,
    ) -> Result<(), ConnError> {
        if !self.batches_reads() {
            return Ok(());
        }
        let epoch = self.epoch.now();
        let todo: Vec<(String, Want)> = {
            let c = self.cache();
            let mut todo: Vec<(String, Want)> = Vec::new();
            for (p, w) in reqs {
                let have = c.entries.iter().any(|e| {
                    e.epoch == epoch
                        && &e.path == p
                        && e.become_user.as_deref() == become_user
                        && covers(e.want, *w)
                });
                if !have && !todo.iter().any(|(tp, tw)| tp == p && covers(*tw, *w)) {
                    todo.push((p.clone(), *w));
                }
            }
            todo
        };
        if todo.is_empty() {
            return Ok(());
        }
        let got = self.inner.stat_many(&todo, become_user).await?;
        let mut c = self.cache();
        c.requests += 1;
        c.fetched += todo.len() as u64;
        for ((path, want), r) in todo.into_iter().zip(got) {
            // A path that could not be read is read again by its task, which reports the error.
            let Ok(f) = r else { continue };
            if let Some(real) = &f.real {
                c.real_of.insert(path.clone(), (real.clone(), epoch));
            }
            c.entries.push(Entry {
                path,
                become_user: become_user.map(str::to_string),
                want,
                state: f.state,
                real: f.real,
                epoch,
            });
        }
        Ok(())
    }

    async fn apply(&self, op: &Op, become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        let filled = self.with_known_attrs(op, become_user);
        let op = filled.as_ref().unwrap_or(op);
        self.invalidate(op, become_user);
        let epoch = self.epoch.now();
        let out = self.inner.apply(op, become_user).await?;
        if let (
            true,
            Op::Write {
                path,
                content,
                follow,
                ..
            },
            Some(written),
        ) = (self.remote, op, &out.written)
        {
            self.keep_written(path, content, *follow, written, become_user, epoch);
        }
        Ok(out)
    }

    async fn close(&self) {
        let summary = {
            let mut c = self.cache();
            c.entries.clear();
            (c.requests > 0).then(|| {
                format!(
                    "read ahead {} paths in {} requests; {} stats answered from them",
                    c.fetched, c.requests, c.hits
                )
            })
        };
        if let Some(s) = summary {
            super::ssh_session::note(&self.label, &s);
        }
        self.inner.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::local::LocalConnection;
    use crate::connection::Attrs;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn conn() -> (Prefetching, Epoch) {
        let e = Epoch::default();
        (
            Prefetching::new("t", Arc::new(LocalConnection::new()), e.clone()),
            e,
        )
    }

    const TEXT: Want = Want {
        content: true,
        checksum: false,
        follow: true,
    };

    fn write(path: &str, data: &[u8]) -> Op {
        Op::Write {
            path: path.into(),
            content: Arc::new(data.to_vec()),
            attrs: Attrs::default(),
            backup: false,
            follow: true,
        }
    }

    fn s(p: &std::path::Path) -> String {
        p.display().to_string()
    }

    #[tokio::test]
    async fn a_state_read_ahead_answers_stats_until_the_epoch_moves() {
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("a.conf"));
        fs::write(&f, "one\n").unwrap();
        let (c, e) = conn();
        c.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        // Changed behind castellan's back: the read-ahead still answers (that is reading ahead),
        // for every task that reads it...
        fs::write(&f, "two\n").unwrap();
        for _ in 0..3 {
            let st = c.stat(&f, TEXT, None).await.unwrap();
            assert_eq!(st.content.as_deref(), Some(&b"one\n"[..]));
        }
        assert_eq!(c.hits(), 3);
        // ...until the engine says something else may have acted (a retry, a wait).
        e.bump();
        let st = c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(st.content.as_deref(), Some(&b"two\n"[..]));
        assert_eq!(c.hits(), 3);
    }

    #[tokio::test]
    async fn a_stat_asking_more_or_as_another_user_goes_to_the_host() {
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("a"));
        fs::write(&f, "x").unwrap();
        let (c, _) = conn();
        c.prefetch(&[(f.clone(), Want::default())], None)
            .await
            .unwrap();
        let st = c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(st.content.as_deref(), Some(&b"x"[..]));
        assert_eq!(c.hits(), 0, "metadata only cannot answer a content read");
        c.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        c.stat(&f, TEXT, Some("nobody")).await.ok();
        assert_eq!(c.hits(), 0, "another become user reads for itself");
        let st = c
            .stat(
                &f,
                Want {
                    follow: true,
                    ..Want::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(c.hits(), 1);
        assert_eq!(st.content, None, "no more than asked");
    }

    #[tokio::test]
    async fn a_command_on_any_host_drops_every_read_ahead() {
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("a"));
        fs::write(&f, "x").unwrap();
        let e = Epoch::default();
        let a = Prefetching::new("t", Arc::new(LocalConnection::new()), e.clone());
        let b = Prefetching::new("t", Arc::new(LocalConnection::new()), e.clone());
        a.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        b.apply(
            &Op::Exec(ExecRequest {
                argv: vec!["true".into()],
                ..ExecRequest::default()
            }),
            None,
        )
        .await
        .unwrap();
        a.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(a.hits(), 0);
        a.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        e.bump();
        a.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(a.hits(), 0, "the engine's bump (a wait) drops it too");
    }

    #[tokio::test]
    async fn a_write_drops_its_path_by_any_name_and_keeps_the_others() {
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap();
        fs::create_dir(root.join("real")).unwrap();
        symlink(root.join("real"), root.join("alias")).unwrap();
        let f = s(&root.join("real/a.conf"));
        let via = s(&root.join("alias/a.conf"));
        let other = s(&root.join("real/b.conf"));
        fs::write(&f, "a").unwrap();
        fs::write(&other, "b").unwrap();
        let (c, _) = conn();
        c.prefetch(&[(via.clone(), TEXT), (other.clone(), TEXT)], None)
            .await
            .unwrap();
        // Written by its canonical name: the read through the directory alias is stale.
        c.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        c.apply(&write(&f, b"A"), None).await.unwrap();
        let st = c.stat(&via, TEXT, None).await.unwrap();
        assert_eq!(st.content.as_deref(), Some(&b"A"[..]));
        assert_eq!(c.hits(), 0);
        c.stat(&other, TEXT, None).await.unwrap();
        assert_eq!(c.hits(), 1, "another file's read-ahead stays");
    }

    #[tokio::test]
    async fn a_change_to_a_path_of_unknown_form_or_to_attributes_drops_everything() {
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("a"));
        let g = s(&t.path().join("g"));
        fs::write(&f, "a").unwrap();
        fs::write(&g, "g").unwrap();
        let (c, _) = conn();
        c.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        // `g` was never read: its canonical form is unknown.
        c.apply(&write(&g, b"G"), None).await.unwrap();
        c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(c.hits(), 0);
        c.prefetch(&[(f.clone(), TEXT), (g.clone(), TEXT)], None)
            .await
            .unwrap();
        c.apply(
            &Op::SetAttrs {
                path: g.clone(),
                attrs: Attrs {
                    mode: Some(0o600),
                    ..Attrs::default()
                },
                follow: true,
            },
            None,
        )
        .await
        .unwrap();
        c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(c.hits(), 0);
    }

    #[tokio::test]
    async fn removing_a_directory_drops_what_was_read_below_it() {
        let t = tempfile::tempdir().unwrap();
        let d = s(&t.path().join("d"));
        fs::create_dir(&d).unwrap();
        let f = format!("{d}/f");
        fs::write(&f, "x").unwrap();
        let (c, _) = conn();
        c.prefetch(&[(d.clone(), Want::default()), (f.clone(), TEXT)], None)
            .await
            .unwrap();
        c.apply(&Op::Remove { path: d.clone() }, None)
            .await
            .unwrap();
        let st = c.stat(&f, TEXT, None).await.unwrap();
        assert!(!st.exists());
        assert_eq!(c.hits(), 0);
    }

    #[tokio::test]
    async fn what_a_write_wrote_answers_the_next_read_until_a_command_runs() {
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("pg.conf"));
        fs::write(&f, "a\n").unwrap();
        let (c, _) = conn();
        c.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        c.apply(&write(&f, b"a\nb\n"), None).await.unwrap();
        let st = c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(st.content.as_deref(), Some(&b"a\nb\n"[..]));
        assert_eq!(st.size, 4);
        assert_eq!(c.hits(), 1, "the write's own state answered");
        let disk = c.inner.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(st.mode, disk.mode);
        assert_eq!(st.owner, disk.owner);
        assert_eq!(st.mtime, disk.mtime);
        c.apply(
            &Op::Exec(ExecRequest {
                shell: Some(format!("echo c >> '{f}'")),
                ..ExecRequest::default()
            }),
            None,
        )
        .await
        .unwrap();
        let st = c.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(st.content.as_deref(), Some(&b"a\nb\nc\n"[..]));
        assert_eq!(c.hits(), 1);
        // The control node's connection keeps nothing.
        let e = Epoch::default();
        let local = Prefetching::control_node("localhost", Arc::new(LocalConnection::new()), e);
        assert!(
            !local.batches_reads(),
            "the engine reads nothing ahead there"
        );
        local.prefetch(&[(f.clone(), TEXT)], None).await.unwrap();
        local.apply(&write(&f, b"x"), None).await.unwrap();
        local.stat(&f, TEXT, None).await.unwrap();
        assert_eq!(local.hits(), 0);
    }

    #[tokio::test]
    async fn making_a_directory_read_as_missing_keeps_what_was_read_missing_below_it() {
        let t = tempfile::tempdir().unwrap();
        let d = s(&t.path().join("pg"));
        let f = format!("{d}/server.crt");
        let g = format!("{d}/server.key");
        let out = s(t.path()) + "/pg/../outside";
        fs::write(s(t.path()) + "/outside", "x").unwrap();
        let dir = Want::default();
        let (c, _) = conn();
        // Shorter paths than the directory's are read too (and kept: not below it).
        let top = s(t.path());
        let reqs = [
            (top.clone(), dir),
            (d.clone(), dir),
            (f.clone(), TEXT),
            (out.clone(), TEXT),
            (g.clone(), TEXT),
            ("/".to_string(), dir),
        ];
        c.prefetch(&reqs, None).await.unwrap();
        let mkdir = |mode| Op::Mkdir {
            path: d.clone(),
            attrs: Attrs {
                mode,
                ..Attrs::default()
            },
        };
        c.apply(&mkdir(Some(0o700)), None).await.unwrap();
        // The new directory is empty: its file is still missing, from what was read.
        assert!(!c.stat(&f, TEXT, None).await.unwrap().exists());
        assert_eq!(c.hits(), 1);
        // The directory itself, or a path that leaves it by `..`: read again.
        assert!(c.stat(&d, dir, None).await.unwrap().exists());
        assert!(c.stat(&out, TEXT, None).await.unwrap().exists());
        assert_eq!(c.hits(), 1);
        // Its files' canonical names are known: writing one keeps what was read of another.
        c.apply(&write(&f, b"cert"), None).await.unwrap();
        assert!(!c.stat(&g, TEXT, None).await.unwrap().exists());
        assert_eq!(c.hits(), 2);
        // As another user, or where the directory's owner may not search it: read again.
        fs::remove_dir_all(&d).unwrap();
        for (mode, user) in [(Some(0o600), None), (None, Some("postgres"))] {
            let (c, _) = conn();
            c.prefetch(&reqs[..3], None).await.unwrap();
            let op = mkdir(mode);
            c.invalidate(&op, user);
            assert!(c.take(&f, TEXT, None).is_none(), "{mode:?} {user:?}");
        }
    }

    #[tokio::test]
    async fn a_write_that_keeps_attributes_takes_them_from_what_was_read() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let f = s(&t.path().join("pg.conf"));
        let gone = s(&t.path().join("new.conf"));
        fs::write(&f, "a\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let md = fs::metadata(&f).unwrap();
        let (c, _) = conn();
        let attrs_of = |op: Option<Op>| match op {
            Some(Op::Write { attrs, .. }) => Some(attrs),
            _ => None,
        };
        // Nothing read yet: the host's script reads them.
        assert!(c.with_known_attrs(&write(&f, b"b\n"), None).is_none());
        c.prefetch(&[(f.clone(), TEXT), (gone.clone(), TEXT)], None)
            .await
            .unwrap();
        let a = attrs_of(c.with_known_attrs(&write(&f, b"b\n"), None)).unwrap();
        assert_eq!(a.owner, Some(md.uid().to_string()));
        assert_eq!(a.group, Some(md.gid().to_string()));
        assert_eq!(a.mode, Some(0o640));
        // What the write gives is kept; a file that does not exist, another user, or a write
        // that gives everything: nothing to fill.
        let mut op = write(&f, b"b\n");
        if let Op::Write { attrs, .. } = &mut op {
            attrs.mode = Some(0o600);
        }
        assert_eq!(
            attrs_of(c.with_known_attrs(&op, None)).unwrap().mode,
            Some(0o600)
        );
        assert!(c.with_known_attrs(&write(&gone, b"x"), None).is_none());
        assert!(c
            .with_known_attrs(&write(&f, b"x"), Some("postgres"))
            .is_none());
        if let Op::Write { attrs, .. } = &mut op {
            attrs.owner = Some("root".into());
            attrs.group = Some("root".into());
        }
        assert!(c.with_known_attrs(&op, None).is_none());
        // And the write goes through with them.
        c.apply(&write(&f, b"b\n"), None).await.unwrap();
        let after = fs::metadata(&f).unwrap();
        assert_eq!(after.mode() & 0o7777, 0o640);
        assert_eq!((after.uid(), after.gid()), (md.uid(), md.gid()));
    }

    #[test]
    fn under_means_a_path_component_boundary() {
        assert!(at_or_under("/etc/a", "/etc"));
        assert!(at_or_under("/etc", "/etc"));
        assert!(at_or_under("/etc/a", "/"));
        assert!(!at_or_under("/etcx", "/etc"));
    }
}
