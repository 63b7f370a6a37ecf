//! The remote side of the SSH connection: pure builders of the POSIX `sh` scripts that carry out one
//! operation each (one round trip), and the parsers of what they print.
//!
//! Targets need only `sh` and GNU coreutils (`stat -c`, `mktemp`, `sha256sum`, `mv -T`, `sync FILE`,
//! `head -c`, `dd iflag=count_bytes`, `wc -c`, `ln -P`, `readlink -f`).
//! Every path, name and argument goes through [`quote_str`] (the one audited quoting function); file
//! content never appears in a script or a command line: it travels on stdin.
//!
//! The scripts behave like [`super::local`] does through system calls: same defaults for new files
//! (the owner is the user running the script, mode `0666 & ~umask`, existing owner/group/mode kept),
//! same error texts where sensible. The unit tests run each script with the local `/bin/sh` against
//! real files.
use std::path::Path;

use super::backup::Suffixes;
use super::quote::{quote_str, QuoteError};
use super::{Attrs, ExecRequest, FileKind, FileState, Op, Want};

/// First word of the header line the stat script prints.
pub(super) const STAT_TAG: &str = "castellan-stat";
/// What `stat -c` prints for the stat header ([`parse_stat`] reads it).
pub(super) const STAT_FIELDS: &str = "%f %u %g %s %Y %X %y %x %U %G";
/// What the write script prints, followed by a space and the name, when it made a backup.
pub const BACKUP_TAG: &str = "castellan-backup";
/// The line a write prints when it left its directory's flush to the session ([`sync_deferred`]).
pub const UNSYNCED_TAG: &str = "castellan-unsynced";

/// How to run a script as another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BecomeMethod {
    /// `sudo -n -u USER --`: fails at once ("a password is required") instead of prompting.
    Sudo,
    /// `runuser -u USER --`: for a login as root, needs no sudoers entry.
    Runuser,
}

/// The command line sent to the remote login shell: `/bin/sh -c SCRIPT`, wrapped for become.
pub fn command_line(
    script: &str,
    as_user: Option<(&str, BecomeMethod)>,
) -> Result<String, QuoteError> {
    command_line_in("/bin/sh", script, as_user)
}

/// [`command_line`] with another shell (`SHELL -c SCRIPT`). Commands use it with the fixed
/// [`super::stdin_script::BOOTSTRAP`]: their text travels on stdin.
pub fn command_line_in(
    shell: &str,
    script: &str,
    as_user: Option<(&str, BecomeMethod)>,
) -> Result<String, QuoteError> {
    let sh = format!("{} -c {}", quote_str(shell)?, quote_str(script)?);
    Ok(match as_user {
        None => sh,
        Some((user, BecomeMethod::Sudo)) => format!("sudo -n -u {} -- {sh}", quote_str(user)?),
        Some((user, BecomeMethod::Runuser)) => format!("runuser -u {} -- {sh}", quote_str(user)?),
    })
}

/// The script that runs an [`ExecRequest`] (without become: see [`command_line`]). It is sent
/// over stdin ([`super::stdin_script`]) and run by the request's shell, so a `shell` script is
/// part of it as it is. A missing program gives rc 2 and `[Errno 2] No such file or directory:
/// PROG`, as locally.
pub fn exec_script(req: &ExecRequest) -> Result<String, QuoteError> {
    let mut s = String::new();
    if let Some(dir) = &req.chdir {
        let d = quote_str(dir)?;
        s.push_str(&format!(
            "cd {d} || {{ printf 'Unable to change directory before execution: %s\\n' {d} >&2; exit 1; }}\n"
        ));
    }
    match &req.shell {
        Some(script) => s.push_str(script),
        None => {
            let Some(prog) = req.argv.first() else {
                s.push_str("printf 'no command given\\n' >&2; exit 2");
                return Ok(s);
            };
            let p = quote_str(prog)?;
            s.push_str(&format!(
                "command -v {p} >/dev/null 2>&1 || {{ printf '[Errno 2] No such file or directory: %s' {p} >&2; exit 2; }}\n"
            ));
            let args: Vec<&str> = req.argv.iter().map(String::as_str).collect();
            s.push_str("exec ");
            s.push_str(&super::quote::join(&args)?);
        }
    }
    Ok(s)
}

/// The shell functions shared by the file scripts: `f MSG` fails with MSG on stderr; `ch FLAGS
/// PATH` and `cm PATH` set the owner/group in `$o`/`$g` and the mode in `$m` (each only when not
/// empty).
macro_rules! helper_fns {
    () => {
        r#"f() { printf '%s\n' "$*" >&2; exit 1; }
ch() {
  [ -n "$o$g" ] || return 0
  e=$(chown $1 -- "$o${g:+:$g}" "$2" 2>&1) && return 0
  case $e in
    *'invalid user'*) f "chown failed: failed to look up user $o" ;;
    *'invalid group'*) f "chgrp failed: failed to look up group $g" ;;
  esac
  f "cannot chown $2: ${e#chown: }"
}
cm() {
  [ -n "$m" ] || return 0
  e=$(chmod -- "$m" "$1" 2>&1) || f "cannot chmod $1: ${e#chmod: }"
}
"#
    };
}

/// [`helper_fns`] after the C locale (messages parsed in English, `stat`'s fields as expected).
const HELPERS: &str = concat!("LC_ALL=C; export LC_ALL\n", helper_fns!());

fn opt(v: Option<&str>) -> Result<String, QuoteError> {
    quote_str(v.unwrap_or(""))
}

fn mode_str(mode: Option<u32>) -> String {
    mode.map(|m| format!("{:04o}", m & 0o7777))
        .unwrap_or_default()
}

/// `o=.. g=.. m=..` assignments for [`HELPERS`].
fn attr_vars(attrs: &Attrs) -> Result<String, QuoteError> {
    Ok(format!(
        "o={}; g={}; m={}\n",
        opt(attrs.owner.as_deref())?,
        opt(attrs.group.as_deref())?,
        quote_str(&mode_str(attrs.mode))?
    ))
}

/// Directory and base name of a destination, as local.rs computes them.
fn split_path(path: &str) -> (String, String) {
    let p = Path::new(path);
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| ".".to_string(), |d| d.to_string_lossy().into_owned());
    let base = p
        .file_name()
        .map_or_else(|| "file".to_string(), |f| f.to_string_lossy().into_owned());
    (dir, base)
}

/// stat: one header line `castellan-stat missing` or
/// `castellan-stat RAWMODEHEX UID GID SIZE MTIME ATIME MTIME_HUMAN(3 words) ATIME_HUMAN(3) OWNER GROUP`,
/// then for a link (not followed) its target, for a file with `content` the raw bytes, for a file
/// with only `checksum` a line `SHA256 SHA1`.
pub fn stat_script(path: &str, want: Want) -> Result<String, QuoteError> {
    let l = if want.follow { "-L " } else { "" };
    let mut s = format!(
        r#"LC_ALL=C; export LC_ALL
p={p}
h=$(stat {l}-c '{STAT_FIELDS}' -- "$p" 2>&1) || {{
  case $h in *'No such file or directory'*|*'Not a directory'*) printf '{STAT_TAG} missing\n'; exit 0 ;; esac
  printf 'cannot stat %s: %s\n' "$p" "${{h#stat: }}" >&2; exit 1
}}
printf '{STAT_TAG} %s\n' "$h"
"#,
        p = quote_str(path)?
    );
    if !want.follow {
        s.push_str("if [ -L \"$p\" ]; then exec readlink -- \"$p\"; fi\n");
    }
    if want.content {
        s.push_str("if [ -f \"$p\" ]; then exec cat -- \"$p\"; fi\n");
    } else if want.checksum {
        s.push_str(
            r#"if [ -f "$p" ]; then
  a=$(sha256sum < "$p") && b=$(sha1sum < "$p") || exit 1
  printf '%s %s\n' "${a%% *}" "${b%% *}"
fi
"#,
        );
    }
    Ok(s)
}

fn bad_stat(msg: &str) -> String {
    format!("unexpected output from the remote stat script: {msg}")
}

/// Seconds with the fraction taken from `stat`'s human-readable `HH:MM:SS.NNNNNNNNN`.
fn seconds(whole: &str, human_time: &str) -> Result<f64, String> {
    let w: i64 = whole.parse().map_err(|_| bad_stat(whole))?;
    let frac = human_time
        .split_once('.')
        .and_then(|(_, f)| format!("0.{f}").parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok(w as f64 + if w < 0 { -frac } else { frac })
}

/// Parse the stat script's output. Checksums are computed here when the content was read.
pub fn parse_stat(out: &[u8], want: Want) -> Result<FileState, String> {
    use sha2::Digest;
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad_stat("no header line"))?;
    let header = std::str::from_utf8(&out[..nl]).map_err(|_| bad_stat("header is not UTF-8"))?;
    let rest = &out[nl + 1..];
    let Some(fields) = header.strip_prefix(STAT_TAG) else {
        return Err(bad_stat(header));
    };
    let w: Vec<&str> = fields.split_whitespace().collect();
    if w.first() == Some(&"missing") {
        return Ok(FileState::default());
    }
    if w.len() < 14 {
        return Err(bad_stat(header));
    }
    let raw = u32::from_str_radix(w[0], 16).map_err(|_| bad_stat(header))?;
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad_stat(header));
    let kind = match raw & 0o170000 {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Directory,
        0o120000 => FileKind::Link,
        _ => FileKind::Other,
    };
    let (uid, gid) = (num(w[1])?, num(w[2])?);
    let name = |n: &str, id: u32| {
        if n == "UNKNOWN" {
            id.to_string()
        } else {
            n.to_string()
        }
    };
    let mut st = FileState {
        kind,
        mode: raw & 0o7777,
        uid,
        gid,
        owner: name(w[12], uid),
        group: name(w[13], gid),
        size: w[3].parse().map_err(|_| bad_stat(header))?,
        mtime: seconds(w[4], w[7])?,
        atime: seconds(w[5], w[10])?,
        ..FileState::default()
    };
    match kind {
        FileKind::Link if !want.follow => {
            let t = rest.strip_suffix(b"\n").unwrap_or(rest);
            st.link_target = Some(String::from_utf8_lossy(t).into_owned());
        }
        FileKind::File if want.content => {
            if want.checksum {
                st.sha256 = Some(hex::encode(sha2::Sha256::digest(rest)));
                st.sha1 = Some(hex::encode(sha1::Sha1::digest(rest)));
            }
            st.content = Some(rest.to_vec());
        }
        FileKind::File if want.checksum => {
            let line = std::str::from_utf8(rest).map_err(|_| bad_stat("checksums"))?;
            let mut it = line.split_whitespace();
            match (it.next(), it.next()) {
                (Some(a), Some(b)) if a.len() == 64 && b.len() == 40 => {
                    st.sha256 = Some(a.to_string());
                    st.sha1 = Some(b.to_string());
                }
                _ => return Err(bad_stat(line)),
            }
        }
        _ => {}
    }
    Ok(st)
}

/// Atomic write: the call of [`library`]'s `__castellan_write` (after the library's text, so
/// that the script runs anywhere; a persistent session has the library and gets the call
/// alone, see [`super::session`]). Stdin carries 16 random hex digits on a line (the temp file's name), the
/// content, then its SHA-256 in hex on a line of its own (see [`write_stream`]); the script text
/// carries only the expected size, so not even a digest of secret content shows in the process
/// table. The temp file `.NAME.castellan-tmp-RANDOM` in the destination directory is created by
/// the shell with `set -C` after a test that nothing is there (`O_EXCL`; a shell's noclobber
/// would open an existing FIFO or device: the test refuses any name that exists; 0600 under
/// `umask 077`; the name is unknown to anyone before it exists, as `mktemp`'s, without a
/// `mktemp` process) and gets exactly `size` bytes, flushed to disk (`dd` with
/// `iflag=count_bytes,fullblock`, which reads no byte past them, and `conv=fsync`: one process
/// where `head -c` and `sync` were two); a short stream (connection lost, sender killed) or a
/// wrong digest fails before anything is renamed, and so does a full disk. Then chown, chmod, the backup (a hard link, see [`super::backup`]),
/// `mv -fT` over the destination, `sync` of the directory. With `follow`, a symbolic link at
/// `path` is resolved (`readlink -f`) and its target is written instead. Attributes not given
/// come from the regular file being replaced (`stat -L`, as Ansible's `atomic_move`), else
/// `0666 & ~umask`. Any failure removes the temp file (and a backup link made for it) and exits
/// 1 with a message once it has read its whole stdin (so that a session can go on reading its
/// stream); when it cannot know how much it read (the copy to the temporary file failed, the
/// stream ended, a signal), 3. A hang-up does too. Prints `castellan-stat ...` (the new file's state) and
/// `castellan-backup NAME` (no newline) when it made the backup.
pub fn write_script(
    path: &str,
    attrs: &Attrs,
    follow: bool,
    size: usize,
    backup: Option<&Suffixes>,
) -> Result<String, QuoteError> {
    let (dir, base) = split_path(path);
    Ok(format!(
        "{lib}o={o}; g={g}; m={m}; dest={dest}; d={d}; b={b}; s1={s1}; s2={s2}; z={size}; fl={follow}; __castellan_write",
        lib = library(),
        o = opt(attrs.owner.as_deref())?,
        g = opt(attrs.group.as_deref())?,
        m = quote_str(&mode_str(attrs.mode))?,
        dest = quote_str(path)?,
        d = quote_str(&dir)?,
        b = quote_str(&base)?,
        s1 = opt(backup.map(|s| s.usual.as_str()))?,
        s2 = opt(backup.map(|s| s.fallback.as_str()))?,
        follow = u8::from(follow),
    ))
}

/// The shell functions a persistent session defines once (`f`, `ch`, `cm` and
/// `__castellan_write`, see [`write_script`]). Each reads exactly the stdin it is given (or, on
/// failure, exits 3), never more: a session may hand them its own stream. Defines functions
/// only: no variable, no locale, nothing else of the shell that runs it changes.
pub fn library() -> &'static str {
    static LIB: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            r#"{helpers}__castellan_write() {{
LC_ALL=C; export LC_ALL
tmp=; bk=; left=1
trap '[ -z "$tmp" ] || rm -f -- "$tmp"' EXIT
trap 'exit 3' HUP INT TERM PIPE
f() {{
  if [ -n "$left" ]; then
    left=
    {{ dd of=/dev/null bs=65536 count="$z" iflag=count_bytes,fullblock status=none && IFS= read -r _; }} 2>/dev/null || exit 3
  fi
  printf '%s\n' "$*" >&2; exit 1
}}
d0=$d
IFS= read -r tn || {{
  printf '%s\n' "cannot write $dest: the content stream ended early (connection lost?); $dest is unchanged" >&2; exit 3
}}
if [ "$fl" = 1 ] && [ -L "$dest" ]; then
  r=$(readlink -f -- "$dest" && printf x) || f "cannot write $dest: cannot resolve the symbolic link"
  dest=${{r%??}}; d=${{dest%/*}}; b=${{dest##*/}}; [ -n "$d" ] || d=/
fi
[ -d "$d" ] || f "Destination directory $d does not exist"
u=; [ -n "$m" ] || u=$(umask)
umask 077
case $tn in
  ????????????????) case $tn in *[!0-9a-f]*) tn= ;; esac ;;
  *) tn= ;;
esac
[ -n "$tn" ] || f "cannot write $dest: bad temporary name; $dest is unchanged"
t=$d/.$b.castellan-tmp-$tn
if [ -e "$t" ] || [ -L "$t" ]; then e="File exists"
else e=$(set -C; {{ : >"$t"; }} 2>&1) && e=
fi
[ -z "$e" ] || f "cannot write $dest: cannot create a temporary file in $d: ${{e##*: }}"
tmp=$t
e=$(dd bs=65536 count="$z" iflag=count_bytes,fullblock conv=fsync status=none 2>&1 >"$tmp") || {{
  printf '%s\n' "cannot write $dest: ${{e##*: }}" >&2; exit 3
}}
IFS= read -r want || want=
left=
h=$(sha256sum <"$tmp") || exit 1
if [ "${{h%% *}}" != "$want" ]; then
  n=$(wc -c <"$tmp") || exit 1
  [ "$n" -eq "$z" ] || f "cannot write $dest: the content stream ended after $n of $z bytes (connection lost?); $dest is unchanged"
  f "cannot write $dest: the content arrived damaged (SHA-256 mismatch); $dest is unchanged"
fi
if [ -f "$dest" ] && {{ [ -z "$o" ] || [ -z "$g" ] || [ -z "$m" ]; }}; then
  cur=$(stat -L -c '%u %g %a' -- "$dest") || exit 1
  set -- $cur
  [ -n "$o" ] || o=$1; [ -n "$g" ] || g=$2; [ -n "$m" ] || m=$3
fi
[ -n "$m" ] || m=$(printf '%o' $((0666 & ~0$u)))
ch '' "$tmp"
case $m in 600|0600) ;; *) cm "$tmp" ;; esac
if [ -n "$s1" ] && {{ [ -e "$dest" ] || [ -L "$dest" ]; }}; then
  if ln -P -- "$dest" "$dest$s1" 2>/dev/null; then bk=$dest$s1
  else
    e=$(ln -P -- "$dest" "$dest$s2" 2>&1) || f "cannot back up $dest: ${{e#ln: }}"
    bk=$dest$s2
  fi
fi
e=$(mv -fT -- "$tmp" "$dest" 2>&1) || {{ [ -z "$bk" ] || rm -f -- "$bk"; f "cannot write $dest: ${{e#mv: }}"; }}
tmp=
printf '{STAT_TAG} '; stat -c '{STAT_FIELDS}' -- "$dest" 2>/dev/null || echo
if [ -n "${{__castellan_defer-}}" ] && [ "$d" = "$d0" ]; then printf '{UNSYNCED_TAG}\n'
else sync -- "$d" 2>/dev/null || :
fi
[ -z "$bk" ] || printf '{BACKUP_TAG} %s' "$bk"
}}
__castellan_sync() {{
  sync -- "$@" 2>/dev/null || :
}}
"#,
            helpers = helper_fns!()
        )
    });
    &LIB
}

/// The stdin of [`write_script`]: 16 random hex digits and a newline (the temp file's name:
/// in the stream, not in the script, so that no process table shows it before it exists), then
/// [`write_input`].
pub fn write_stream(content: &[u8]) -> Vec<u8> {
    let mut v = super::session::nonce().into_bytes();
    v.push(b'\n');
    v.extend_from_slice(&write_input(content));
    v
}

/// The content, then its SHA-256 in hex and a newline (what a write script reads after its
/// header, if any).
pub fn write_input(content: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(content));
    let mut v = Vec::with_capacity(content.len() + digest.len() + 1);
    v.extend_from_slice(content);
    v.extend_from_slice(digest.as_bytes());
    v.push(b'\n');
    v
}

/// The backup [`write_script`] made, from its stdout.
pub fn backup_made(stdout: &[u8]) -> Option<String> {
    let rest = match stat_line(stdout) {
        Some(line) => &stdout[line.len() + 1..],
        None => stdout,
    };
    let unsynced = format!("{UNSYNCED_TAG}\n");
    let rest = rest.strip_prefix(unsynced.as_bytes()).unwrap_or(rest);
    // Last, without a newline: the name may hold any byte but NUL.
    let name = rest.strip_prefix(format!("{BACKUP_TAG} ").as_bytes())?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// [`write_script`] left the destination's directory to be flushed later, by
/// [`sync_script`]: it ran in a persistent session (whose loop sets `__castellan_defer`) and
/// wrote in the directory it was given (a write through a link flushes its own).
pub fn sync_deferred(stdout: &[u8]) -> bool {
    let Some(line) = stat_line(stdout) else {
        return false;
    };
    stdout[line.len() + 1..].starts_with(format!("{UNSYNCED_TAG}\n").as_bytes())
}

/// Flush `dirs` (their entries: the renames of the writes made there) to disk: a call of
/// [`library`]'s `__castellan_sync`, one `sync` for them all; errors are ignored, as a write's own
/// flush of its directory.
pub fn sync_script(dirs: &[String]) -> Result<String, QuoteError> {
    let args: Vec<&str> = dirs.iter().map(String::as_str).collect();
    Ok(format!(
        "{}__castellan_sync {}",
        library(),
        super::quote::join(&args)?
    ))
}

/// The directory of a destination, as [`write_script`] computes it.
pub fn dir_of(path: &str) -> String {
    split_path(path).0
}

/// The stat line the write script prints first (one line: user and group names hold no
/// newline), without its newline.
fn stat_line(stdout: &[u8]) -> Option<&[u8]> {
    if !stdout.starts_with(format!("{STAT_TAG} ").as_bytes()) {
        return None;
    }
    let nl = stdout.iter().position(|&b| b == b'\n')?;
    Some(&stdout[..nl])
}

/// The state of the file [`write_script`] wrote, from the stat line it prints after the rename
/// (`None` when it could not stat it). Without the content: the caller has it.
pub fn written_state(stdout: &[u8]) -> Option<FileState> {
    let mut header = stat_line(stdout)?.to_vec();
    header.push(b'\n');
    parse_stat(&header, Want::default()).ok()
}

/// A file operation as one script and its stdin.
#[derive(Debug)]
pub struct FileJob {
    pub script: String,
    pub stdin: Option<Vec<u8>>,
}

/// The script of a file operation (`None` for [`Op::Exec`], which is not one). A write's
/// backup names are taken now.
pub fn file_job(op: &Op) -> Option<Result<FileJob, QuoteError>> {
    let script = |s: Result<String, QuoteError>| {
        Some(s.map(|script| FileJob {
            script,
            stdin: None,
        }))
    };
    match op {
        Op::Write {
            path,
            content,
            attrs,
            backup,
            follow,
        } => {
            let names = backup.then(Suffixes::now);
            Some(
                write_script(path, attrs, *follow, content.len(), names.as_ref()).map(|script| {
                    FileJob {
                        script,
                        stdin: Some(write_stream(content)),
                    }
                }),
            )
        }
        Op::SetAttrs {
            path,
            attrs,
            follow,
        } => script(set_attrs_script(path, attrs, *follow)),
        Op::Mkdir { path, attrs } => script(mkdir_script(path, attrs)),
        Op::Remove { path } => script(remove_script(path)),
        Op::Symlink { src, path, force } => script(symlink_script(src, path, *force)),
        Op::Touch { path, attrs } => script(touch_script(path, attrs)),
        Op::Exec(_) => None,
    }
}

fn set_attrs_body(follow: bool) -> &'static str {
    if follow {
        "ch '' \"$p\"\ncm \"$p\"\n"
    } else {
        "ch -h \"$p\"\n[ -L \"$p\" ] || cm \"$p\"\n"
    }
}

/// chown/chmod an existing path (`chown -h` and no chmod on a link when not following).
pub fn set_attrs_script(path: &str, attrs: &Attrs, follow: bool) -> Result<String, QuoteError> {
    Ok(format!(
        "{HELPERS}{}p={}\n{}",
        attr_vars(attrs)?,
        quote_str(path)?,
        set_attrs_body(follow)
    ))
}

/// `mkdir -p` one level at a time, so every directory created gets the attributes; when nothing
/// was missing, the attributes go on the last one.
pub fn mkdir_script(path: &str, attrs: &Attrs) -> Result<String, QuoteError> {
    let mut chain: Vec<&Path> = Path::new(path)
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty() && a.parent().is_some())
        .collect();
    chain.reverse();
    let mut list = String::new();
    for a in chain {
        list.push(' ');
        list.push_str(&quote_str(&a.to_string_lossy())?);
    }
    Ok(format!(
        r#"{HELPERS}{vars}p={p}; n=0
for x in{list}; do
  [ -e "$x" ] && continue
  e=$(mkdir -- "$x" 2>&1) || [ -d "$x" ] || f "cannot create directory $x: ${{e#mkdir: }}"
  ch '' "$x"; cm "$x"; n=1
done
[ "$n" = 1 ] || {{ ch '' "$p"; cm "$p"; }}
"#,
        vars = attr_vars(attrs)?,
        p = quote_str(path)?,
    ))
}

/// `rm -rf`.
pub fn remove_script(path: &str) -> Result<String, QuoteError> {
    let p = quote_str(path)?;
    Ok(format!(
        "LC_ALL=C; export LC_ALL\ne=$(rm -rf -- {p} 2>&1) || {{ printf 'cannot remove %s: %s\\n' {p} \"${{e#rm: }}\" >&2; exit 1; }}\n"
    ))
}

/// Create or replace a symbolic link: a temp link next to it, renamed over it.
pub fn symlink_script(src: &str, path: &str, force: bool) -> Result<String, QuoteError> {
    let (dir, base) = split_path(path);
    Ok(format!(
        r#"LC_ALL=C; export LC_ALL
f() {{ printf '%s\n' "$*" >&2; exit 1; }}
p={p}; s={s}; d={d}; b={b}; force={force}
if [ -d "$p" ] && [ ! -L "$p" ]; then f "refusing to convert from directory to symlink for $p"; fi
if [ -e "$p" ] && [ ! -L "$p" ] && [ "$force" != 1 ]; then f "refusing to convert from file to symlink for $p (set force: true)"; fi
tmp="$d/.$b.castellan-tmp-$$"
e=$(ln -s -- "$s" "$tmp" 2>&1) || f "cannot link $p: ${{e#ln: }}"
e=$(mv -fT -- "$tmp" "$p" 2>&1) || {{ rm -f -- "$tmp"; f "cannot link $p: ${{e#mv: }}"; }}
"#,
        p = quote_str(path)?,
        s = quote_str(src)?,
        d = quote_str(&dir)?,
        b = quote_str(&base)?,
        force = u8::from(force),
    ))
}

/// Create an empty file (under `umask 077` when a mode is given, so it never has a wider one) or
/// update its times, then set the attributes.
pub fn touch_script(path: &str, attrs: &Attrs) -> Result<String, QuoteError> {
    Ok(format!(
        r#"{HELPERS}{vars}p={p}
[ -e "$p" ] || [ -z "$m" ] || umask 077
e=$(touch -- "$p" 2>&1) || f "cannot touch $p: ${{e#touch: }}"
ch '' "$p"; cm "$p"
"#,
        vars = attr_vars(attrs)?,
        p = quote_str(path)?,
    ))
}

/// One-round-trip probe of the login: user name, uid, and which become tools exist.
pub const WHOAMI_SCRIPT: &str = "id -un; id -u; command -v sudo >/dev/null 2>&1 && echo sudo; command -v runuser >/dev/null 2>&1 && echo runuser; :";

/// What [`WHOAMI_SCRIPT`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteUser {
    pub name: String,
    pub uid: u32,
    pub has_sudo: bool,
    pub has_runuser: bool,
}

impl RemoteUser {
    pub fn parse(out: &str) -> Option<RemoteUser> {
        let mut lines = out.lines();
        let name = lines.next()?.trim().to_string();
        let uid = lines.next()?.trim().parse().ok()?;
        let rest: Vec<&str> = lines.map(str::trim).collect();
        Some(RemoteUser {
            name,
            uid,
            has_sudo: rest.contains(&"sudo"),
            has_runuser: rest.contains(&"runuser"),
        })
    }

    /// How to become `user`: None when we are that user already.
    pub fn become_method(&self, user: &str) -> Option<BecomeMethod> {
        if user == self.name || user.parse::<u32>().ok() == Some(self.uid) {
            None
        } else if self.uid == 0 && self.has_runuser {
            Some(BecomeMethod::Runuser)
        } else {
            Some(BecomeMethod::Sudo)
        }
    }
}

/// The interrupt's sweep, run on a fresh channel of a connection's master: it ends every other
/// session of that SSH connection, i.e. the commands castellan started there (the master is
/// private: every session on it is ours) and everything in their sessions. A remote command
/// does not die when its channel closes (no terminal, no SIGHUP): this is what ends it.
///
/// The sessions are the children of the sshd process serving the connection (`sshd` or
/// `sshd-session`, found by walking up from this script), each one a session of its own (sshd
/// calls `setsid`); this script's own is skipped. A daemon a command started (`pg_ctl start`
/// calls `setsid`) is in a session of its own and is left alone. SIGTERM first (a write script's
/// trap then removes its temp file), SIGKILL a second later to what is still there; it stops as
/// soon as a pass finds nothing it may signal (as a become user, it ends that user's processes).
/// Linux `/proc`, POSIX `sh` builtins (no process per `/proc` entry); exits 1 with a message when
/// it cannot find the connection.
pub const SWEEP_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
st() {
  s=
  { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
  c=${s#*\(}; c=${c%\)*}
  set -- ${s##*\) }
  z=$1; pp=$2; sd=$4
}
conn=; p=$$; mine=$$
while st "$p"; do
  case $c in sshd*) conn=$p; break ;; esac
  mine=$p; p=$pp
  [ "$p" -gt 1 ] || break
done
[ -n "$conn" ] || { echo "cannot find the sshd process of this connection in /proc" >&2; exit 1; }
n=0
while [ "$n" -lt 20 ]; do
  S=
  for d in /proc/[0-9]*; do
    q=${d#/proc/}
    st "$q" || continue
    [ "$pp" = "$conn" ] && [ "$q" != "$mine" ] && [ "$z" != Z ] && S="$S $sd"
  done
  [ -n "$S" ] || exit 0
  sig=TERM; [ "$n" -ge 10 ] && sig=KILL
  k=0
  for d in /proc/[0-9]*; do
    q=${d#/proc/}
    st "$q" || continue
    [ "$z" = Z ] && continue
    case "$S " in *" $sd "*) kill -s "$sig" "$q" 2>/dev/null && k=1 ;; esac
  done
  [ "$k" = 1 ] || exit 0
  n=$((n+1))
  sleep 0.1
done
echo "sessions still running after SIGKILL:$S" >&2
exit 1
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};

    fn sh(script: &str, stdin: &[u8]) -> (i32, Vec<u8>, String) {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut i = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let t = std::thread::spawn(move || {
            let _ = i.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        t.join().unwrap();
        (
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn stat(path: &str, want: Want) -> FileState {
        let (rc, out, err) = sh(&stat_script(path, want).unwrap(), b"");
        assert_eq!(rc, 0, "{err}");
        parse_stat(&out, want).unwrap()
    }

    fn tricky_dir() -> (tempfile::TempDir, String) {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("we ird $x `y` 'q'\n\u{e9}");
        fs::create_dir(&d).unwrap();
        let s = d.to_str().unwrap().to_string();
        (t, s)
    }

    #[test]
    fn stat_matches_local_for_file_dir_link_missing() {
        let (_t, d) = tricky_dir();
        let f = format!("{d}/f'ile");
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        fs::write(&f, &data).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let l = format!("{d}/link");
        std::os::unix::fs::symlink("f'ile", &l).unwrap();
        for want in [
            Want::default(),
            Want {
                checksum: true,
                ..Want::default()
            },
            Want {
                content: true,
                checksum: true,
                follow: true,
            },
        ] {
            for p in [&f, &d, &l, &format!("{d}/missing"), &format!("{f}/notdir")] {
                let a = stat(p, want);
                let b = super::super::local::stat_path(p, want).unwrap();
                assert_eq!(a.kind, b.kind, "{p}");
                assert_eq!(a.mode, b.mode, "{p}");
                assert_eq!(
                    (a.uid, a.gid, &a.owner, &a.group),
                    (b.uid, b.gid, &b.owner, &b.group)
                );
                assert_eq!(a.size, b.size);
                assert!((a.mtime - b.mtime).abs() < 1e-6, "{} {}", a.mtime, b.mtime);
                assert_eq!(a.link_target, b.link_target);
                assert_eq!(a.sha256, b.sha256);
                assert_eq!(a.sha1, b.sha1);
                assert_eq!(a.content, b.content);
            }
        }
        // Checksums without content come from sha256sum/sha1sum.
        let a = stat(
            &f,
            Want {
                checksum: true,
                ..Want::default()
            },
        );
        assert!(a.sha256.is_some() && a.content.is_none());
    }

    /// Run the write script of `p` with `content` (and its digest) on stdin.
    fn write(
        p: &str,
        attrs: &Attrs,
        follow: bool,
        backup: Option<&Suffixes>,
        content: &[u8],
    ) -> (i32, Vec<u8>, String) {
        let script = write_script(p, attrs, follow, content.len(), backup).unwrap();
        sh(&script, &write_stream(content))
    }

    fn names_in(d: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_creates_private_file_then_keeps_attrs_and_backs_up() {
        let (_t, d) = tricky_dir();
        let p = format!("{d}/key $(touch pwned).pem");
        let secret: Vec<u8> = vec![0, 1, 2, 0xff, b'\n', b'\'', 0x80];
        let attrs = Attrs {
            mode: Some(0o600),
            ..Attrs::default()
        };
        let (rc, out, err) = write(&p, &attrs, false, None, &secret);
        assert_eq!(rc, 0, "{err}");
        assert_eq!(backup_made(&out), None);
        // What it wrote, as the host tells it after the rename.
        let w = written_state(&out).unwrap();
        assert_eq!(w.kind, FileKind::File);
        assert_eq!(w.mode, 0o600);
        assert_eq!(w.size, secret.len() as u64);
        assert_eq!(fs::read(&p).unwrap(), secret);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        // Mode kept; backup made (the old inode, under Ansible's name).
        let names = Suffixes::now();
        let ino = fs::metadata(&p).unwrap().ino();
        let (rc, out, err) = write(&p, &Attrs::default(), false, Some(&names), b"two");
        assert_eq!(rc, 0, "{err}");
        let bk = format!("{p}{}", names.usual);
        assert_eq!(backup_made(&out).as_deref(), Some(bk.as_str()));
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read(&bk).unwrap(), secret);
        assert_eq!(fs::metadata(&bk).unwrap().ino(), ino);
        assert_eq!(fs::metadata(&bk).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        // New file without a mode: 0666 & ~umask, like local.
        let q = format!("{d}/plain");
        let script = write_script(&q, &Attrs::default(), false, 1, None).unwrap();
        let (rc, _, err) = sh(&format!("umask 022\n{script}"), &write_stream(b"x"));
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::metadata(&q).unwrap().mode() & 0o7777, 0o644);
        // Empty content is content too.
        let (rc, _, err) = write(&q, &Attrs::default(), false, None, b"");
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::read(&q).unwrap(), b"");
        // No temp file left, nothing injected.
        let names = names_in(&d);
        assert!(
            names.iter().all(|n| !n.contains("castellan-tmp")),
            "{names:?}"
        );
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn a_short_or_damaged_stream_is_never_installed() {
        let (_t, d) = tricky_dir();
        let p = format!("{d}/server.key");
        fs::write(&p, "OLD KEY\n").unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let script = write_script(&p, &Attrs::default(), false, content.len(), None).unwrap();
        let full = write_stream(&content);
        let name = &full[..17];
        // Exit 3 where the script cannot know how much of its stdin it read (a session then ends).
        let cases: [(&str, Vec<u8>, &str, i32); 8] = [
            ("nothing", Vec::new(), "ended early", 3),
            ("cut name", full[..5].to_vec(), "ended early", 3),
            (
                "not a name",
                [&b"0123456789abcdeX\n"[..], &full[17..]].concat(),
                "bad temporary name",
                1,
            ),
            (
                "no content",
                name.to_vec(),
                "ended after 0 of 200000 bytes",
                1,
            ),
            (
                "half",
                full[..17 + 100_000].to_vec(),
                "ended after 100000 of 200000 bytes",
                1,
            ),
            (
                "no digest",
                [name, &content].concat(),
                "SHA-256 mismatch",
                1,
            ),
            (
                "cut digest",
                full[..full.len() - 10].to_vec(),
                "SHA-256 mismatch",
                1,
            ),
            (
                "damaged",
                [name, &[0xffu8][..], &full[18..]].concat(),
                "SHA-256 mismatch",
                1,
            ),
        ];
        for (what, input, msg, want) in cases {
            let (rc, out, err) = sh(&script, &input);
            assert_eq!(rc, want, "{what}: {err}");
            assert!(err.contains(msg), "{what}: {err}");
            assert!(err.contains("is unchanged"), "{what}: {err}");
            assert!(out.is_empty());
            assert_eq!(fs::read(&p).unwrap(), b"OLD KEY\n", "{what}");
            assert_eq!(names_in(&d), ["server.key"], "{what}: no temp file left");
        }
        let (rc, _, err) = sh(&script, &full);
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::read(&p).unwrap(), content);
    }

    #[test]
    fn the_backup_never_writes_through_a_planted_name() {
        let (_t, d) = tricky_dir();
        let p = format!("{d}/server.key");
        fs::write(&p, "OLD KEY\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let victim = format!("{d}/victim");
        fs::write(&victim, "victim\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let names = Suffixes::now();
        std::os::unix::fs::symlink(&victim, format!("{p}{}", names.usual)).unwrap();
        let (rc, out, err) = write(&p, &Attrs::default(), false, Some(&names), b"NEW\n");
        assert_eq!(rc, 0, "{err}");
        let bk = format!("{p}{}", names.fallback);
        assert_eq!(backup_made(&out).as_deref(), Some(bk.as_str()));
        assert_eq!(fs::read(&bk).unwrap(), b"OLD KEY\n");
        assert_eq!(fs::metadata(&bk).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&victim).unwrap(), b"victim\n");
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o7777, 0o644);
        // Both names taken: the write fails, nothing is written through, nothing is left.
        fs::remove_file(&bk).unwrap();
        std::os::unix::fs::symlink(&victim, &bk).unwrap();
        let (rc, _, err) = write(&p, &Attrs::default(), false, Some(&names), b"NEWER\n");
        assert_eq!(rc, 1);
        assert!(err.starts_with(&format!("cannot back up {p}: ")), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"NEW\n");
        assert_eq!(fs::read(&victim).unwrap(), b"victim\n");
        assert!(names_in(&d).iter().all(|n| !n.contains("castellan-tmp")));
    }

    #[test]
    fn the_temp_file_is_never_an_existing_name() {
        let (_t, d) = tricky_dir();
        let p = format!("{d}/server.key");
        fs::write(&p, "OLD KEY\n").unwrap();
        let victim = format!("{d}/victim");
        fs::write(&victim, "victim\n").unwrap();
        let fifo = format!("{d}/fifo");
        nix::unistd::mkfifo(
            fifo.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .unwrap();
        let script = write_script(&p, &Attrs::default(), false, 4, None).unwrap();
        let input = write_stream(b"NEW\n");
        let name = std::str::from_utf8(&input[..16]).unwrap();
        let tmp = format!("{d}/.server.key.castellan-tmp-{name}");
        // A link to a file, a dangling link, a link to a FIFO (which a plain `>` would open and
        // write the secret into), a file: each refused, nothing written through, the planted
        // name left as it was.
        for (what, plant) in [
            ("link", Some(victim.as_str())),
            ("dangling", Some("/nonexistent/x")),
            ("fifo", Some(fifo.as_str())),
            ("file", None),
        ] {
            match plant {
                Some(target) => std::os::unix::fs::symlink(target, &tmp).unwrap(),
                None => fs::write(&tmp, "planted\n").unwrap(),
            }
            let (rc, _, err) = sh(&script, &input);
            assert_eq!(rc, 1, "{what}");
            assert!(
                err.contains("cannot create a temporary file") && err.contains("exists"),
                "{what}: {err}"
            );
            assert_eq!(fs::read(&p).unwrap(), b"OLD KEY\n", "{what}");
            assert_eq!(fs::read(&victim).unwrap(), b"victim\n", "{what}");
            assert!(
                fs::symlink_metadata(&tmp).is_ok(),
                "{what}: the planted name was removed"
            );
            fs::remove_file(&tmp).unwrap();
        }
        let (rc, _, err) = sh(&script, &input);
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"NEW\n");
    }

    #[test]
    fn follow_writes_the_target_and_no_follow_replaces_the_link() {
        let (_t, d) = tricky_dir();
        let real = format!("{d}/real.key");
        let link = format!("{d}/server.key");
        fs::write(&real, "OLD\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("real.key", &link).unwrap();
        let names = Suffixes::now();
        let (rc, out, err) = write(&link, &Attrs::default(), true, Some(&names), b"NEW\n");
        assert_eq!(rc, 0, "{err}");
        // Outside a session, the write flushed its own directory.
        assert!(!sync_deferred(&out));
        // The backup is beside the file that was replaced.
        assert_eq!(
            backup_made(&out),
            Some(format!("{real}{}", names.usual)),
            "{err}"
        );
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"NEW\n");
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o7777, 0o640);
        // Not followed: a regular file with the target's mode (never the link's 0777).
        let (rc, out, err) = write(&link, &Attrs::default(), false, Some(&names), b"OWN\n");
        assert_eq!(rc, 0, "{err}");
        let bk = format!("{link}{}", names.usual);
        assert_eq!(backup_made(&out).as_deref(), Some(bk.as_str()));
        assert_eq!(fs::read_link(&bk).unwrap(), Path::new("real.key"));
        let m = fs::symlink_metadata(&link).unwrap();
        assert!(m.is_file());
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(fs::read(&link).unwrap(), b"OWN\n");
        assert_eq!(fs::read(&real).unwrap(), b"NEW\n");
        // A dangling link followed: its target is created.
        let dl = format!("{d}/dl");
        std::os::unix::fs::symlink("made", &dl).unwrap();
        let (rc, _, err) = write(&dl, &Attrs::default(), true, None, b"M");
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::read(format!("{d}/made")).unwrap(), b"M");
        assert!(fs::symlink_metadata(&dl).unwrap().file_type().is_symlink());
    }

    #[test]
    fn write_failures_are_clean() {
        let (_t, d) = tricky_dir();
        let (rc, _, err) = write(
            "/nonexistent-dir-xyz/f",
            &Attrs::default(),
            false,
            None,
            b"x",
        );
        assert_eq!(rc, 1);
        assert!(err.contains("Destination directory /nonexistent-dir-xyz does not exist"));
        let p = format!("{d}/k");
        let attrs = Attrs {
            owner: Some("no-such-user-xyz".into()),
            ..Attrs::default()
        };
        let (rc, _, err) = write(&p, &attrs, false, None, b"x");
        assert_eq!(rc, 1);
        assert!(
            err.contains("chown failed: failed to look up user no-such-user-xyz"),
            "{err}"
        );
        let attrs = Attrs {
            group: Some("no-such-group-xyz".into()),
            ..Attrs::default()
        };
        let (rc, _, err) = write(&p, &attrs, false, None, b"x");
        assert_eq!(rc, 1);
        assert!(
            err.contains("failed to look up group no-such-group-xyz"),
            "{err}"
        );
        // A directory in the way.
        fs::create_dir(&p).unwrap();
        let (rc, _, err) = write(&p, &Attrs::default(), false, None, b"x");
        assert_eq!(rc, 1, "{err}");
        assert!(err.starts_with(&format!("cannot write {p}: ")), "{err}");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn mkdir_symlink_touch_remove_setattrs() {
        let (_t, d) = tricky_dir();
        let deep = format!("{d}/a/b c/d");
        let attrs = Attrs {
            mode: Some(0o750),
            ..Attrs::default()
        };
        let (rc, _, err) = sh(&mkdir_script(&deep, &attrs).unwrap(), b"");
        assert_eq!(rc, 0, "{err}");
        for p in [format!("{d}/a"), format!("{d}/a/b c"), deep.clone()] {
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o750, "{p}");
        }
        // Existing: attributes on the last one only.
        let attrs = Attrs {
            mode: Some(0o700),
            ..Attrs::default()
        };
        let (rc, _, _) = sh(&mkdir_script(&deep, &attrs).unwrap(), b"");
        assert_eq!(rc, 0);
        assert_eq!(fs::metadata(&deep).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(
            fs::metadata(format!("{d}/a")).unwrap().mode() & 0o7777,
            0o750
        );
        // Relative paths too.
        let (rc, _, err) = sh(
            &format!(
                "cd {} && {}",
                quote_str(&d).unwrap(),
                mkdir_script("rel/x", &Attrs::default()).unwrap()
            ),
            b"",
        );
        assert_eq!(rc, 0, "{err}");
        assert!(Path::new(&format!("{d}/rel/x")).is_dir());

        // touch with a mode
        let t = format!("{d}/t");
        let (rc, _, err) = sh(
            &touch_script(
                &t,
                &Attrs {
                    mode: Some(0o604),
                    ..Attrs::default()
                },
            )
            .unwrap(),
            b"",
        );
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::metadata(&t).unwrap().mode() & 0o7777, 0o604);

        // symlink: create, replace, refuse over a file without force, refuse over a directory
        let l = format!("{d}/l");
        let (rc, _, err) = sh(&symlink_script("t", &l, false).unwrap(), b"");
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::read_link(&l).unwrap().to_str(), Some("t"));
        let (rc, _, _) = sh(&symlink_script("a", &l, false).unwrap(), b"");
        assert_eq!(rc, 0);
        // l -> a is a link to a directory: replaced, not moved into.
        assert_eq!(fs::read_link(&l).unwrap().to_str(), Some("a"));
        let (rc, _, err) = sh(&symlink_script("x", &t, false).unwrap(), b"");
        assert_eq!(rc, 1);
        assert!(
            err.contains("refusing to convert from file to symlink"),
            "{err}"
        );
        let (rc, _, err) = sh(&symlink_script("x", &deep, true).unwrap(), b"");
        assert_eq!(rc, 1);
        assert!(err.contains("refusing to convert from directory to symlink"));

        // set attrs without following a link leaves the target alone
        let attrs = Attrs {
            mode: Some(0o600),
            ..Attrs::default()
        };
        let (rc, _, err) = sh(&set_attrs_script(&l, &attrs, false).unwrap(), b"");
        assert_eq!(rc, 0, "{err}");
        assert_eq!(
            fs::metadata(format!("{d}/a")).unwrap().mode() & 0o7777,
            0o750
        );
        let (rc, _, err) = sh(&set_attrs_script(&t, &attrs, true).unwrap(), b"");
        assert_eq!(rc, 0, "{err}");
        assert_eq!(fs::metadata(&t).unwrap().mode() & 0o7777, 0o600);

        // remove
        let (rc, _, _) = sh(&remove_script(&format!("{d}/a")).unwrap(), b"");
        assert_eq!(rc, 0);
        assert!(!Path::new(&format!("{d}/a")).exists());
        let (rc, _, _) = sh(&remove_script(&format!("{d}/a")).unwrap(), b"");
        assert_eq!(rc, 0);
    }

    #[test]
    fn exec_scripts() {
        let (_t, d) = tricky_dir();
        let req = ExecRequest {
            argv: vec!["printf".into(), "%s|".into(), "a b".into(), "$HOME".into()],
            chdir: Some(d.clone()),
            ..ExecRequest::default()
        };
        let (rc, out, _) = sh(&exec_script(&req).unwrap(), b"");
        assert_eq!(rc, 0);
        assert_eq!(out, b"a b|$HOME|");
        let req = ExecRequest {
            shell: Some("pwd; cat".into()),
            chdir: Some(d.clone()),
            ..ExecRequest::default()
        };
        let (rc, out, _) = sh(&exec_script(&req).unwrap(), b"in\xff");
        assert_eq!(rc, 0);
        assert_eq!(out, [format!("{d}\n").as_bytes(), b"in\xff"].concat());
        let req = ExecRequest {
            argv: vec!["no-such-program-xyz".into()],
            ..ExecRequest::default()
        };
        let (rc, _, err) = sh(&exec_script(&req).unwrap(), b"");
        assert_eq!(rc, 2);
        assert_eq!(
            err,
            "[Errno 2] No such file or directory: no-such-program-xyz"
        );
        let req = ExecRequest {
            argv: vec!["true".into()],
            chdir: Some("/no/such/dir".into()),
            ..ExecRequest::default()
        };
        let (rc, _, err) = sh(&exec_script(&req).unwrap(), b"");
        assert_eq!(rc, 1);
        assert!(err.contains("Unable to change directory before execution: /no/such/dir"));
    }

    #[test]
    fn command_line_wraps_become() {
        assert_eq!(
            command_line("echo 'x'", None).unwrap(),
            r#"/bin/sh -c 'echo '\''x'\'''"#
        );
        assert_eq!(
            command_line("id", Some(("postgres", BecomeMethod::Sudo))).unwrap(),
            "sudo -n -u postgres -- /bin/sh -c id"
        );
        assert_eq!(
            command_line("id", Some(("a b", BecomeMethod::Runuser))).unwrap(),
            "runuser -u 'a b' -- /bin/sh -c id"
        );
        assert_eq!(
            command_line_in("/bin/bash", "id", Some(("pg", BecomeMethod::Sudo))).unwrap(),
            "sudo -n -u pg -- /bin/bash -c id"
        );
        let (rc, out, _) = sh(
            &format!("exec {}", command_line("printf %s \"$0\"", None).unwrap()),
            b"",
        );
        assert_eq!(rc, 0);
        assert_eq!(out, b"/bin/sh");
    }

    #[test]
    fn whoami_parse() {
        let (rc, out, _) = sh(WHOAMI_SCRIPT, b"");
        assert_eq!(rc, 0);
        let u = RemoteUser::parse(&String::from_utf8_lossy(&out)).unwrap();
        assert_eq!(u.uid, nix::unistd::Uid::effective().as_raw());
        let root = RemoteUser {
            name: "root".into(),
            uid: 0,
            has_sudo: true,
            has_runuser: true,
        };
        assert_eq!(root.become_method("root"), None);
        assert_eq!(root.become_method("0"), None);
        assert_eq!(root.become_method("postgres"), Some(BecomeMethod::Runuser));
        let dep = RemoteUser {
            name: "deploy".into(),
            uid: 1000,
            has_sudo: true,
            has_runuser: true,
        };
        assert_eq!(dep.become_method("root"), Some(BecomeMethod::Sudo));
    }

    #[test]
    fn sweep_ends_the_other_sessions_of_the_connection_and_only_them() {
        // A stand-in for the connection's sshd: a copy of /bin/sh named `sshd-...` (its comm).
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("sshd-test");
        fs::copy("/bin/sh", &fake).unwrap();
        // Without the sweep, `wait` below would take the full 20 s.
        let marker = format!("20.{:03}", std::process::id() % 1000);
        let pids = t.path().join("pids");
        // Two sessions of the "connection" (setsid, as sshd does): a sleep with a child, and the
        // sweep. A process outside the connection is left alone.
        let outside = Command::new("sleep").arg(&marker).spawn().unwrap();
        let script = format!(
            "setsid sh -c 'sleep {marker} & echo $! > {p}.a; sleep {marker}; :' & \
             sleep 0.3; setsid sh -c {sweep} ; echo rc=$? ; wait",
            p = pids.display(),
            sweep = quote_str(SWEEP_SCRIPT).unwrap()
        );
        let t0 = std::time::Instant::now();
        let out = Command::new(&fake).arg("-c").arg(&script).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("rc=0"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `wait` returned: the session's processes are gone, well before their 20 s.
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        let child: i32 = fs::read_to_string(format!("{}.a", pids.display()))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = |pid: i32| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
                .unwrap_or(true)
        };
        for _ in 0..100 {
            if gone(child) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(gone(child), "the background child of the session survived");
        let mut outside = outside;
        assert!(
            outside.try_wait().unwrap().is_none(),
            "an outside process was killed"
        );
        outside.kill().unwrap();
        outside.wait().unwrap();
    }
}
