//! `ansible_connection: local`: the control node itself, through system calls.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use nix::unistd::{Gid, Group, Uid, User};
use sha2::Digest;
use tokio::io::AsyncWriteExt;

use super::{
    Attrs, ConnError, Connection, ExecOutput, ExecRequest, Fetched, FileKind, FileState, Op,
    OpOutput, Want,
};

#[derive(Debug, Default)]
pub struct LocalConnection;

impl LocalConnection {
    pub fn new() -> Self {
        LocalConnection
    }
}

fn failed(what: &str, path: &str, e: impl std::fmt::Display) -> ConnError {
    ConnError::Failed(format!("{what} {path}: {e}"))
}

fn user_name(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

/// Resolve an owner name (or numeric id) to a uid.
pub fn lookup_uid(name: &str) -> Result<u32, ConnError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u.uid.as_raw()),
        _ => Err(ConnError::Failed(format!(
            "chown failed: failed to look up user {name}"
        ))),
    }
}

/// Resolve a group name (or numeric id) to a gid.
pub fn lookup_gid(name: &str) -> Result<u32, ConnError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(ConnError::Failed(format!(
            "chgrp failed: failed to look up group {name}"
        ))),
    }
}

/// `path` with its directories' symbolic links resolved, when that can be told: absolute, a
/// final component that is a name (not a link, `.` or `..`) in a directory that exists.
fn canonical(path: &str) -> Option<String> {
    let p = Path::new(path);
    if !p.is_absolute() || path.ends_with('/') {
        return None;
    }
    let name = match p.components().next_back()? {
        std::path::Component::Normal(n) => n,
        _ => return None,
    };
    if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
        return None;
    }
    let dir = fs::canonicalize(p.parent()?).ok()?;
    Some(dir.join(name).to_string_lossy().into_owned())
}

pub fn stat_path(path: &str, want: Want) -> Result<FileState, ConnError> {
    let p = Path::new(path);
    let meta = if want.follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::default()),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => return Ok(FileState::default()),
        Err(e) => return Err(failed("cannot stat", path, e)),
    };
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        FileKind::Link
    } else if ft.is_dir() {
        FileKind::Directory
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    let mut st = FileState {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        owner: user_name(meta.uid()),
        group: group_name(meta.gid()),
        size: meta.size(),
        mtime: meta.mtime() as f64 + meta.mtime_nsec() as f64 / 1e9,
        atime: meta.atime() as f64 + meta.atime_nsec() as f64 / 1e9,
        ..FileState::default()
    };
    if kind == FileKind::Link {
        st.link_target = fs::read_link(p)
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
    }
    if kind == FileKind::File && (want.content || want.checksum) {
        let data = fs::read(p).map_err(|e| failed("cannot read", path, e))?;
        if want.checksum {
            st.sha256 = Some(hex::encode(sha2::Sha256::digest(&data)));
            st.sha1 = Some(hex::encode(sha1::Sha1::digest(&data)));
        }
        if want.content {
            st.content = Some(data);
        }
    }
    Ok(st)
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(dir: &Path, base: &str) -> std::path::PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".{base}.castellan-tmp-{}-{n}-{nanos}",
        std::process::id()
    ))
}

fn resolve_ids(attrs: &Attrs) -> Result<(Option<u32>, Option<u32>), ConnError> {
    let uid = attrs.owner.as_deref().map(lookup_uid).transpose()?;
    let gid = attrs.group.as_deref().map(lookup_gid).transpose()?;
    Ok((uid, gid))
}

/// Where a symbolic link at `path` leads, followed link by link (it may not exist: writing it
/// creates it, as Ansible's `os.path.realpath`); `path` itself when it is not a link.
fn resolve_link(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP))
}

/// Atomic write: a 0600 temp file in the destination directory, chown, chmod, fsync, backup
/// (a hard link, see [`super::backup`]), rename. See [`Op::Write`] for `follow` and for the
/// attributes kept.
pub fn write_atomic(
    path: &str,
    content: &[u8],
    attrs: &Attrs,
    backup: bool,
    follow: bool,
) -> Result<Option<String>, ConnError> {
    let resolved;
    let dest = if follow {
        resolved = resolve_link(Path::new(path)).map_err(|e| {
            failed(
                "cannot write",
                path,
                format!("cannot resolve the link: {e}"),
            )
        })?;
        resolved.as_path()
    } else {
        Path::new(path)
    };
    let shown = dest.to_string_lossy();
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(ConnError::Failed(format!(
            "Destination directory {} does not exist",
            dir.display()
        )));
    }
    let base = dest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    // Attributes are kept from a regular file only (through a link, as Ansible's atomic_move
    // does): never from a link's own 0777, nor from a directory.
    let existing = fs::metadata(dest).ok().filter(|m| m.is_file());
    let (uid, gid) = resolve_ids(attrs)?;
    let mode = attrs.mode.unwrap_or_else(|| {
        existing
            .as_ref()
            .map_or_else(|| 0o666 & !current_umask(), |m| m.mode() & 0o7777)
    });
    let uid = uid.or(existing.as_ref().map(|m| m.uid()));
    let gid = gid.or(existing.as_ref().map(|m| m.gid()));

    let tmp = temp_name(dir, &base);
    let mut backup_file = None;
    let result = (|| -> Result<(), ConnError> {
        let io = |e: std::io::Error| failed("cannot write", &shown, e);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(content).map_err(io)?;
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::fchown(&f, uid, gid).map_err(io)?;
        }
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        if backup && fs::symlink_metadata(dest).is_ok() {
            let names = super::backup::Suffixes::now();
            let name = super::backup::link(dest, &names)
                .map_err(|e| failed("cannot back up", &shown, e))?;
            backup_file = Some(name);
        }
        fs::rename(&tmp, dest).map_err(io)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        if let Some(b) = &backup_file {
            // Still a name of the live file, not a backup of anything.
            let _ = fs::remove_file(b);
        }
        return Err(e);
    }
    Ok(backup_file.map(|b| b.to_string_lossy().into_owned()))
}

fn current_umask() -> u32 {
    // Reading the umask means setting it; put it straight back.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

fn set_attrs(path: &str, attrs: &Attrs, follow: bool) -> Result<(), ConnError> {
    let (uid, gid) = resolve_ids(attrs)?;
    if uid.is_some() || gid.is_some() {
        let r = if follow {
            std::os::unix::fs::chown(path, uid, gid)
        } else {
            std::os::unix::fs::lchown(path, uid, gid)
        };
        r.map_err(|e| failed("cannot chown", path, e))?;
    }
    if let Some(mode) = attrs.mode {
        let is_link = fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        if follow || !is_link {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| failed("cannot chmod", path, e))?;
        }
    }
    Ok(())
}

fn mkdir_p(path: &str, attrs: &Attrs) -> Result<(), ConnError> {
    // Create missing ancestors one by one so each new directory gets the requested attributes,
    // as Ansible's file module does.
    let p = Path::new(path);
    let mut missing = Vec::new();
    let mut cur = Some(p);
    while let Some(c) = cur {
        if c.as_os_str().is_empty() || c.exists() {
            break;
        }
        missing.push(c.to_path_buf());
        cur = c.parent();
    }
    for dir in missing.iter().rev() {
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed("cannot create directory", &dir.to_string_lossy(), e)),
        }
        set_attrs(&dir.to_string_lossy(), attrs, true)?;
    }
    if missing.is_empty() {
        set_attrs(path, attrs, true)?;
    }
    Ok(())
}

fn remove(path: &str) -> Result<(), ConnError> {
    let p = Path::new(path);
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed("cannot stat", path, e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).map_err(|e| failed("cannot remove", path, e)),
        Ok(_) => fs::remove_file(p).map_err(|e| failed("cannot remove", path, e)),
    }
}

fn symlink(src: &str, path: &str, force: bool) -> Result<(), ConnError> {
    let p = Path::new(path);
    let dir = p.parent().unwrap_or(Path::new("."));
    let base = p
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(m) = fs::symlink_metadata(p) {
        if m.is_dir() && !m.file_type().is_symlink() {
            return Err(ConnError::Failed(format!(
                "refusing to convert from directory to symlink for {path}"
            )));
        }
        if !m.file_type().is_symlink() && !force {
            return Err(ConnError::Failed(format!(
                "refusing to convert from file to symlink for {path} (set force: true)"
            )));
        }
    }
    let tmp = temp_name(dir, &base);
    std::os::unix::fs::symlink(src, &tmp).map_err(|e| failed("cannot link", path, e))?;
    fs::rename(&tmp, p).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        failed("cannot link", path, e)
    })
}

fn touch(path: &str, attrs: &Attrs) -> Result<(), ConnError> {
    let p = Path::new(path);
    if p.exists() {
        let now = nix::sys::time::TimeSpec::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        nix::sys::stat::utimensat(
            None,
            p,
            &now,
            &now,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .map_err(|e| failed("cannot touch", path, e))?;
    } else {
        let mode = attrs.mode.unwrap_or(0o666 & !current_umask());
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p)
            .map_err(|e| failed("cannot create", path, e))?;
    }
    set_attrs(path, attrs, true)
}

fn is_current_user(user: &str) -> bool {
    let me = Uid::effective();
    match User::from_name(user) {
        Ok(Some(u)) => u.uid == me,
        _ => user.parse::<u32>().ok() == Some(me.as_raw()),
    }
}

/// Run a command locally (also used by the SSH connection's tests as a reference). A shell
/// script goes over stdin to a fixed bootstrap ([`super::stdin_script`]), so its text is on no
/// command line; a program's own arguments are its own.
pub async fn run_local(req: &ExecRequest) -> Result<ExecOutput, ConnError> {
    let (mut argv, input): (Vec<String>, Option<Vec<u8>>) = match &req.shell {
        Some(script) => (
            vec![
                req.executable.clone().unwrap_or_else(|| "/bin/sh".into()),
                "-c".into(),
                super::stdin_script::BOOTSTRAP.into(),
            ],
            Some(
                super::stdin_script::frame(script, req.stdin.as_deref())
                    .map_err(|e| ConnError::Failed(e.to_string()))?,
            ),
        ),
        None => (req.argv.clone(), req.stdin.clone()),
    };
    if let Some(user) = req.become_user.as_deref().filter(|u| !is_current_user(u)) {
        let mut wrapped: Vec<String> = if Uid::effective().is_root() {
            vec!["runuser".into(), "-u".into(), user.into(), "--".into()]
        } else {
            vec![
                "sudo".into(),
                "-n".into(),
                "-u".into(),
                user.into(),
                "--".into(),
            ]
        };
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    let Some((prog, args)) = argv.split_first() else {
        return Err(ConnError::Failed("no command given".into()));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(dir) = &req.chdir {
        cmd.current_dir(dir);
    }
    // Its own process group, ended with everything in it if the run is interrupted.
    let (mut child, group) = match super::children::spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ExecOutput {
                rc: 2,
                stdout: Vec::new(),
                stderr: format!("[Errno 2] No such file or directory: {prog}").into_bytes(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            return Err(ConnError::Failed(e.to_string()))
        }
        Err(e) => return Err(ConnError::Failed(format!("cannot run {prog}: {e}"))),
    };
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        });
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| ConnError::Failed(format!("cannot run {prog}: {e}")))?;
    group.finished();
    Ok(ExecOutput {
        rc: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// `become_user` when it names another user than the one running castellan.
fn other_user(become_user: Option<&str>) -> Option<&str> {
    become_user.filter(|u| !is_current_user(u))
}

/// Run a file script of [`super::ssh_script`] as `user` (`runuser` as root, else `sudo -n`),
/// exactly as the SSH connection runs it on a host; a non-zero exit is the script's message.
async fn run_script_as(
    user: &str,
    what: &str,
    script: String,
    stdin: Option<Vec<u8>>,
) -> Result<ExecOutput, ConnError> {
    let out = run_local(&ExecRequest {
        shell: Some(script),
        stdin,
        become_user: Some(user.to_string()),
        ..ExecRequest::default()
    })
    .await?;
    if out.rc != 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        return Err(ConnError::Failed(if err.is_empty() {
            format!("{what} as {user} failed (exit code {})", out.rc)
        } else {
            err.to_string()
        }));
    }
    Ok(out)
}

fn quote_err(e: super::quote::QuoteError) -> ConnError {
    ConnError::Failed(e.to_string())
}

#[async_trait]
impl Connection for LocalConnection {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        run_local(req).await
    }

    /// As another user (`become_user`), the state is read by that user, as Ansible does.
    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        let Some(user) = other_user(become_user) else {
            return stat_path(path, want);
        };
        let script = super::ssh_script::stat_script(path, want).map_err(quote_err)?;
        let out = run_script_as(user, &format!("stat {path}"), script, None).await?;
        super::ssh_script::parse_stat(&out.stdout, want).map_err(ConnError::Failed)
    }

    /// One by one through system calls, each with its canonical path (what the batch script
    /// tells on a remote host: see [`super::stat_batch`]).
    async fn stat_many(
        &self,
        reqs: &[(String, Want)],
        become_user: Option<&str>,
    ) -> Result<Vec<Result<Fetched, ConnError>>, ConnError> {
        let mut out = Vec::with_capacity(reqs.len());
        for (path, want) in reqs {
            out.push(
                self.stat(path, *want, become_user)
                    .await
                    .map(|state| Fetched {
                        state,
                        real: canonical(path),
                    }),
            );
        }
        Ok(out)
    }

    fn batches_reads(&self) -> bool {
        true
    }

    /// As another user (`become_user`), file changes are made by that user (with that user's
    /// rights, owned by that user), as Ansible does; commands run as that user too.
    async fn apply(&self, op: &Op, become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        let mut out = OpOutput::default();
        if let Op::Exec(req) = op {
            let mut req = req.clone();
            if req.become_user.is_none() {
                req.become_user = become_user.map(str::to_string);
            }
            out.exec = Some(run_local(&req).await?);
            return Ok(out);
        }
        if let Some(user) = other_user(become_user) {
            let Some(job) = super::ssh_script::file_job(op) else {
                return Ok(out);
            };
            let job = job.map_err(quote_err)?;
            let res = run_script_as(user, &op.describe(), job.script, job.stdin).await?;
            if matches!(op, Op::Write { .. }) {
                out.backup_file = super::ssh_script::backup_made(&res.stdout);
                out.written = super::ssh_script::written_state(&res.stdout);
            }
            return Ok(out);
        }
        match op {
            Op::Write {
                path,
                content,
                attrs,
                backup,
                follow,
            } => {
                out.backup_file = write_atomic(path, content, attrs, *backup, *follow)?;
                let after = Want {
                    follow: true,
                    ..Want::default()
                };
                out.written = stat_path(path, after).ok();
            }
            Op::SetAttrs {
                path,
                attrs,
                follow,
            } => set_attrs(path, attrs, *follow)?,
            Op::Mkdir { path, attrs } => mkdir_p(path, attrs)?,
            Op::Remove { path } => remove(path)?,
            Op::Symlink { src, path, force } => symlink(src, path, *force)?,
            Op::Touch { path, attrs } => touch(path, attrs)?,
            Op::Exec(_) => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_creates_with_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        let ps = p.to_str().unwrap();
        let attrs = Attrs {
            mode: Some(0o600),
            ..Attrs::default()
        };
        write_atomic(ps, b"secret", &attrs, false, false).unwrap();
        let st = stat_path(
            ps,
            Want {
                checksum: true,
                ..Want::default()
            },
        )
        .unwrap();
        assert_eq!(st.mode, 0o600);
        assert_eq!(st.kind, FileKind::File);
        let b = write_atomic(ps, b"secret2", &Attrs::default(), true, false).unwrap();
        assert!(b.is_some());
        assert_eq!(fs::read(ps).unwrap(), b"secret2");
        // Mode kept when not given.
        assert_eq!(stat_path(ps, Want::default()).unwrap().mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names
            .iter()
            .all(|n| !n.to_string_lossy().contains("castellan-tmp")));
    }

    #[test]
    fn write_into_missing_dir_fails_cleanly() {
        let e = write_atomic(
            "/nonexistent-dir-xyz/f",
            b"x",
            &Attrs::default(),
            false,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not exist"));
    }
}
