//! The persistent remote session: one long-lived POSIX `sh` per (host, become user) that runs
//! framed requests read from its stdin and writes framed replies on its stdout, so an SSH
//! connection pays the login shell (and its rc files) once, not once per operation.
//!
//! # Protocol
//!
//! The command line is always `/bin/sh -c LOOP` ([`LOOP`] holds no task text), wrapped for
//! become as any other command. The client first sends one line, a random hex nonce; the loop
//! answers `\ncastellan-session-ready NONCE PID\n` (PID: the loop's own process). Whatever a
//! login shell's rc file printed comes before that line and is skipped. Then, per request:
//!
//! ```text
//! client:  N M NONCE K\n      N = bytes of SCRIPT + NONCE, M = bytes of INPUT, K = how it runs
//!          SCRIPT NONCE       the script (no NUL), then the nonce again
//!          INPUT              exactly M bytes: the script's stdin (write content and its digest)
//! loop:    castellan-start NONCE\n                      the whole script arrived; it runs now
//! K = x:   castellan-reply NONCE RC OUT ERR\n           exit code, stdout and stderr lengths
//!          OUT bytes of stdout, ERR bytes of stderr
//! K = i:   STDOUT\ncastellan-end NONCE RC ERR\n         stdout as it comes, then the end line
//!          ERR bytes of stderr
//! K = w:   as i; the request is `N M NONCE w\n`, CALL NONCE\n, then INPUT (M bytes)
//! ```
//!
//! The loop reads the header with `read` (a shell reads a pipe a byte at a time) and the script
//! with `head -c` (GNU coreutils reads no further than asked; the nonce at the end keeps a
//! command substitution from eating trailing newlines), and checks the nonce at its end:
//! a stream cut short never runs a partial script (the loop exits instead).
//!
//! Two ways to run it ([`Runs`]):
//! - `x`, for commands (a `shell`/`command` task's bootstrap, any `executable`): the script runs
//!   as `/bin/sh -c SCRIPT` in a process of its own (its own `$$`, the login umask, none of the
//!   loop's variables), exactly the command line a channel of its own would run: a command's
//!   text does not show in `ps`, since commands send the fixed
//!   [`super::stdin_script::BOOTSTRAP`] with the text framed in their input. A command killed by
//!   a signal exits 128 + the signal's number, as in any shell. Its stdout and stderr go to files
//!   in a private `mktemp -d` directory (made at the session's first command, umask 077, emptied
//!   after each reply, removed when the loop ends), so binary output (NUL bytes, no trailing newline) comes back exact, and a daemon
//!   the command leaves running with those descriptors open cannot write into the stream.
//! - `i`, for castellan's own file scripts (stat, read, write, mkdir...: they start nothing that
//!   outlives them): `eval` in a subshell of the loop, with the login umask and the loop's
//!   variables unset, its stdout straight onto the stream and ended by a line that holds the
//!   request's nonce (16 random hex digits no script is given), its stderr captured by the
//!   loop (a command substitution; sent after the end line with its length in bytes, counted
//!   in the C locale; a script's stderr is text, it holds no NUL). No `/bin/sh` to start, no
//!   file to measure and copy back: about 4 process starts fewer per request, the largest
//!   share of a small write's cost on the host; a session that runs no command makes no
//!   directory (no `mktemp`, no `rm`). `$$` is the loop's. The descriptor 3 the loop keeps for
//!   its stream is closed for every script and command.
//! - `w`, for a call of the library the loop defines before it serves ([`loop_with`]: the
//!   write script's function, [`super::ssh_script::library`]): as `i`, but the call is one line
//!   read with `read` (no `head` for the script text: a write's script is a 300-byte line, not
//!   3 KB) and its input is not framed: the function reads exactly its M bytes from the
//!   session's own stream (no `head` and pipe for the input). The library's contract: exit 0 or
//!   1 only after reading exactly its input (a write that fails early reads its content to
//!   `/dev/null` first); any other exit status (it could not tell how much it read, a signal, a
//!   syntax error) ends the loop after the reply, so bytes of a file's content are never taken
//!   for a request. A write costs 2 programs fewer than as `i`.
//!
//! For `i` and `x`, the script's stdin is `/dev/null`, or a pipe from `head -c M` drained to
//! the end after the script exits, so no script can read (or leave unread) bytes of the
//! session's own stream.
//!
//! `__castellan_defer` (set by the loop, seen by the file scripts) tells a write that the client
//! flushes its directory later, once for many writes (see [`super::ssh`]).
//!
//! A loop that cannot make the directory for commands' output answers a command's request with
//! `castellan-refused NONCE` (its input read and dropped) and goes on: commands then go one
//! channel each, file scripts still through the session.
//!
//! `castellan-start` tells the client whether a lost session ran the request: a session that
//! ends before it ran nothing, and the request can be sent again on a new session.
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use super::quote::QuoteError;
use super::ExecOutput;

/// First word of the line the loop prints once it is ready.
pub const READY_TAG: &str = "castellan-session-ready";
/// First word of the line the loop prints when a request's script starts.
pub const START_TAG: &str = "castellan-start";
/// First word of the line the loop prints instead when it cannot run a command.
pub const REFUSED_TAG: &str = "castellan-refused";
/// First word of a reply's header line (requests run as [`Runs::OwnShell`]).
pub const REPLY_TAG: &str = "castellan-reply";
/// First word of the line that ends a reply's stdout (requests run as [`Runs::Subshell`]).
pub const END_TAG: &str = "castellan-end";

/// How the loop runs a request's script (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// `/bin/sh -c SCRIPT`, its own process, output through files: commands.
    OwnShell,
    /// `eval` in a subshell of the loop, stdout streamed: castellan's own file scripts.
    Subshell,
    /// As [`Runs::Subshell`], for a one-line call of the session's library: the line is read
    /// with `read`, and the input is not framed (the library's functions read exactly their
    /// input, see [`library_call`]).
    Library,
}

impl Runs {
    fn flag(self) -> char {
        match self {
            Runs::OwnShell => 'x',
            Runs::Subshell => 'i',
            Runs::Library => 'w',
        }
    }
}

/// The loop's text with `library` (shell functions only) defined before it serves: see
/// [`library_call`].
pub fn loop_with(library: &str) -> String {
    match LOOP.split_once('\n') {
        Some((name, rest)) => format!("{name}\n{library}{rest}"),
        None => format!("{library}{LOOP}"),
    }
}

/// `script` as a call of `library` the loop of [`loop_with`] can take as [`Runs::Library`]:
/// the script is the library's text then one line (no newline: a quoted path may hold one,
/// and then the whole script goes as it is). The library's functions must read exactly the
/// input they are given, and exit 0 or 1 only when they did: on any other exit status the
/// loop ends after its reply, since the stream may be out of step.
pub fn library_call<'a>(script: &'a str, library: &str) -> Option<&'a str> {
    let call = script.strip_prefix(library)?;
    (!call.is_empty() && !call.contains('\n')).then_some(call)
}
/// Most bytes of login-shell output skipped before the ready line.
pub const MAX_JUNK: usize = 1 << 20;

/// The remote loop (see the module documentation). `castellan-session-loop` in the first line
/// names it in `ps`.
pub const LOOP: &str = r#": castellan-session-loop
__castellan_u=$(umask)
umask 077
__castellan_t=
__castellan_defer=1
trap '[ -z "$__castellan_t" ] || rm -rf -- "$__castellan_t"' EXIT
trap 'exit 1' HUP INT TERM PIPE
IFS= read -r __castellan_h || exit 1
case $__castellan_h in ''|*[!0-9a-f]*) exit 1 ;; esac
exec 3>&1
printf '\ncastellan-session-ready %s %s\n' "$__castellan_h" "$$"
__castellan_run() {
  ( umask "$__castellan_u"; exec /bin/sh -c "$__castellan_s" )
}
__castellan_sub() {
  ( umask "$__castellan_u"
    unset __castellan_h __castellan_n __castellan_i __castellan_e __castellan_k __castellan_o __castellan_r __castellan_t __castellan_u __castellan_x
    eval "unset __castellan_s
$__castellan_s" )
}
while IFS=' ' read -r __castellan_n __castellan_i __castellan_e __castellan_k; do
  case $__castellan_n:$__castellan_i:$__castellan_e in
    *[!0-9a-f:]*|:*|*::*|*:) exit 1 ;;
  esac
  case $__castellan_k in
    i|x) __castellan_s=$(head -c "$__castellan_n") || exit 1 ;;
    w) IFS= read -r __castellan_s || exit 1 ;;
    *) exit 1 ;;
  esac
  case $__castellan_s in
    *"$__castellan_e") __castellan_s=${__castellan_s%"$__castellan_e"} ;;
    *) exit 1 ;;
  esac
  if [ "$__castellan_k" = x ] && [ -z "$__castellan_t" ]; then
    __castellan_t=$(mktemp -d "${TMPDIR:-/tmp}/castellan-session.XXXXXX") || __castellan_t=
    if [ -z "$__castellan_t" ]; then
      if [ "$__castellan_i" -gt 0 ]; then head -c "$__castellan_i" >/dev/null || exit 1; fi
      printf 'castellan-refused %s\n' "$__castellan_e"
      continue
    fi
  fi
  printf 'castellan-start %s\n' "$__castellan_e"
  if [ "$__castellan_k" != x ]; then
    if [ "$__castellan_k" = w ]; then
      __castellan_x=$(__castellan_sub 2>&1 >&3 3>&-; __castellan_r=$?; printf x; exit "$__castellan_r")
    elif [ "$__castellan_i" -gt 0 ]; then
      __castellan_x=$(head -c "$__castellan_i" | {
        __castellan_sub 2>&1 >&3 3>&-
        __castellan_r=$?
        if IFS= read -r __castellan_o || [ -n "$__castellan_o" ]; then cat >/dev/null 2>&1; fi
        printf x
        exit "$__castellan_r"
      })
    else
      __castellan_x=$(__castellan_sub </dev/null 2>&1 >&3 3>&-; __castellan_r=$?; printf x; exit "$__castellan_r")
    fi
    __castellan_r=$?
    __castellan_x=${__castellan_x%x}
    if [ -n "$__castellan_x" ]; then
      __castellan_o=$(LC_ALL=C; printf %s "${#__castellan_x}")
      printf '\ncastellan-end %s %s %s\n%s' "$__castellan_e" "$__castellan_r" "$__castellan_o" "$__castellan_x"
      __castellan_x=
    else
      printf '\ncastellan-end %s %s 0\n' "$__castellan_e" "$__castellan_r"
    fi
    if [ "$__castellan_k" = w ]; then
      case $__castellan_r in 0|1) ;; *) exit 1 ;; esac
    fi
    continue
  fi
  if [ "$__castellan_i" -gt 0 ]; then
    head -c "$__castellan_i" | {
      __castellan_run >"$__castellan_t/o" 2>"$__castellan_t/e" 3>&-
      __castellan_r=$?
      if IFS= read -r __castellan_o || [ -n "$__castellan_o" ]; then cat >/dev/null; fi
      exit "$__castellan_r"
    }
  else
    __castellan_run </dev/null >"$__castellan_t/o" 2>"$__castellan_t/e" 3>&-
  fi
  __castellan_r=$?
  if [ -s "$__castellan_t/o" ] || [ -s "$__castellan_t/e" ]; then
    __castellan_o=$(stat -c %s -- "$__castellan_t/o" "$__castellan_t/e") || exit 1
    printf 'castellan-reply %s %s %s %s\n' "$__castellan_e" "$__castellan_r" $__castellan_o
    cat -- "$__castellan_t/o" "$__castellan_t/e" || exit 1
    : >"$__castellan_t/o"
    : >"$__castellan_t/e"
  else
    printf 'castellan-reply %s %s 0 0\n' "$__castellan_e" "$__castellan_r"
  fi
done
"#;

/// Why a session cannot serve (any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The session ended or broke before the request's script started: nothing of it ran, it
    /// may be sent again elsewhere.
    NotRun(String),
    /// The session ended or broke after the script started: it may have run, in part.
    Lost(String),
    /// The loop cannot run commands (no directory for their output: no `mktemp`, no writable
    /// `TMPDIR`); it read the request and goes on serving file scripts.
    Refused,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::NotRun(m) => write!(f, "{m}"),
            SessionError::Lost(m) => write!(f, "{m} (the operation may have run in part)"),
            SessionError::Refused => write!(f, "no directory for commands' output"),
        }
    }
}

/// 16 hex digits from the system's random generator (a clock-based fallback if it fails).
pub fn nonce() -> String {
    crate::entropy::hex_or_clock(8)
}

/// One request's bytes and its nonce. A script cannot hold a NUL byte (no shell can).
pub fn request(
    script: &str,
    input: Option<&[u8]>,
    runs: Runs,
) -> Result<(Vec<u8>, String), QuoteError> {
    if let Some(offset) = script.bytes().position(|b| b == 0) {
        return Err(QuoteError { offset });
    }
    if runs == Runs::Library && script.contains('\n') {
        return Err(QuoteError {
            offset: script.find('\n').unwrap_or_default(),
        });
    }
    let nonce = nonce();
    let input = input.unwrap_or_default();
    let n = script.len() + nonce.len();
    let mut out = format!("{n} {} {nonce} {}\n", input.len(), runs.flag()).into_bytes();
    out.reserve(n + 1 + input.len());
    out.extend_from_slice(script.as_bytes());
    out.extend_from_slice(nonce.as_bytes());
    if runs == Runs::Library {
        out.push(b'\n');
    }
    out.extend_from_slice(input);
    Ok((out, nonce))
}

/// Read one `\n`-terminated line of at most `max` bytes (without the newline); None at end of
/// stream.
async fn line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(max as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            if buf.len() > max {
                "line too long"
            } else {
                "stream ended inside a line"
            },
        ));
    }
    buf.pop();
    Ok(Some(buf))
}

/// Skip the login shell's output up to the ready line for `nonce`; the loop's pid.
pub async fn await_ready<R: AsyncBufRead + Unpin>(r: &mut R, nonce: &str) -> Result<u32, String> {
    let want = format!("{READY_TAG} {nonce} ");
    let mut skipped = 0usize;
    loop {
        let mut buf = Vec::new();
        let n = (&mut *r)
            .take(4096)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| format!("reading the session's greeting: {e}"))?;
        if n == 0 {
            return Err("the remote shell ended before it was ready".into());
        }
        skipped += n;
        let text = String::from_utf8_lossy(&buf);
        if let Some(rest) = text.strip_prefix(want.as_str()) {
            return rest
                .trim_end_matches('\n')
                .parse()
                .map_err(|_| format!("bad greeting from the remote shell: {text:?}"));
        }
        if skipped > MAX_JUNK {
            return Err(
                "the login shell printed more than 1 MiB before the session started".into(),
            );
        }
    }
}

/// Send one request and wait until its script starts; the nonce [`finish`] needs. Any error
/// leaves the session unusable.
pub async fn send<W, R>(
    w: &mut W,
    r: &mut R,
    script: &str,
    input: Option<&[u8]>,
    runs: Runs,
) -> Result<String, SessionError>
where
    W: AsyncWrite + Unpin,
    R: AsyncBufRead + Unpin,
{
    let (bytes, nonce) =
        request(script, input, runs).map_err(|e| SessionError::NotRun(e.to_string()))?;
    let not_run = |what: &str, e: std::io::Error| SessionError::NotRun(format!("{what}: {e}"));
    w.write_all(&bytes)
        .await
        .map_err(|e| not_run("sending to the remote shell", e))?;
    w.flush()
        .await
        .map_err(|e| not_run("sending to the remote shell", e))?;
    drop(bytes);
    let start = line(r, 256)
        .await
        .map_err(|e| not_run("reading from the remote shell", e))?
        .ok_or_else(|| SessionError::NotRun("the remote shell ended".into()))?;
    if start == format!("{REFUSED_TAG} {nonce}").as_bytes() {
        return Err(SessionError::Refused);
    }
    if start != format!("{START_TAG} {nonce}").as_bytes() {
        return Err(SessionError::NotRun(format!(
            "protocol error: expected the start of the request, got {:?}",
            String::from_utf8_lossy(&start)
        )));
    }
    Ok(nonce)
}

/// Read the reply to the request [`send`] sent with `nonce`.
pub async fn finish<R: AsyncBufRead + Unpin>(
    r: &mut R,
    nonce: &str,
    runs: Runs,
) -> Result<ExecOutput, SessionError> {
    let lost = SessionError::Lost;
    let streamed = match runs {
        Runs::OwnShell => None,
        Runs::Subshell | Runs::Library => Some(
            until_marker(r, format!("\n{END_TAG} {nonce} ").as_bytes())
                .await
                .map_err(|e| lost(format!("reading from the remote shell: {e}")))?
                .ok_or_else(|| lost("the remote shell ended during the operation".into()))?,
        ),
    };
    let head = line(r, 256)
        .await
        .map_err(|e| lost(format!("reading from the remote shell: {e}")))?
        .ok_or_else(|| lost("the remote shell ended during the operation".into()))?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let bad = || lost(format!("protocol error: bad reply header {head:?}"));
    let w: Vec<&str> = head.split(' ').collect();
    let (rc, out_len, err_len) = match &streamed {
        // What follows the marker: `RC ERR`.
        Some(_) if w.len() == 2 => (w[0], "0", w[1]),
        None if w.len() == 5 && w[0] == REPLY_TAG && w[1] == nonce => (w[2], w[3], w[4]),
        _ => return Err(bad()),
    };
    let rc: i32 = rc.parse().map_err(|_| bad())?;
    let out_len: usize = out_len.parse().map_err(|_| bad())?;
    let err_len: usize = err_len.parse().map_err(|_| bad())?;
    let mut stdout = streamed.unwrap_or_else(|| vec![0u8; out_len]);
    let mut stderr = vec![0u8; err_len];
    if out_len > 0 {
        r.read_exact(&mut stdout)
            .await
            .map_err(|e| lost(format!("reading the reply: {e}")))?;
    }
    r.read_exact(&mut stderr)
        .await
        .map_err(|e| lost(format!("reading the reply: {e}")))?;
    Ok(ExecOutput { rc, stdout, stderr })
}

/// Everything up to `marker`, which is consumed and not returned (nothing after it is read);
/// None when the stream ends first.
async fn until_marker<R: AsyncBufRead + Unpin>(
    r: &mut R,
    marker: &[u8],
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(None);
        }
        let (n, before) = (buf.len(), out.len());
        out.extend_from_slice(buf);
        // The marker may have begun in an earlier chunk.
        let from = before.saturating_sub(marker.len() - 1);
        match memchr::memmem::find(&out[from..], marker) {
            Some(at) => {
                let end = from + at + marker.len();
                r.consume(end - before);
                out.truncate(from + at);
                return Ok(Some(out));
            }
            None => r.consume(n),
        }
    }
}

/// [`send`] then [`finish`].
pub async fn call<W, R>(
    w: &mut W,
    r: &mut R,
    script: &str,
    input: Option<&[u8]>,
    runs: Runs,
) -> Result<ExecOutput, SessionError>
where
    W: AsyncWrite + Unpin,
    R: AsyncBufRead + Unpin,
{
    let nonce = send(w, r, script, input, runs).await?;
    finish(r, &nonce, runs).await
}

/// Send the greeting and wait (at most `wait`) for the ready line; the loop's pid.
pub async fn handshake<W, R>(w: &mut W, r: &mut R, wait: Duration) -> Result<u32, String>
where
    W: AsyncWrite + Unpin,
    R: AsyncBufRead + Unpin,
{
    let nonce = nonce();
    let greet = async {
        w.write_all(format!("{nonce}\n").as_bytes())
            .await
            .map_err(|e| format!("sending to the remote shell: {e}"))?;
        w.flush()
            .await
            .map_err(|e| format!("sending to the remote shell: {e}"))?;
        await_ready(r, &nonce).await
    };
    tokio::time::timeout(wait, greet)
        .await
        .map_err(|_| format!("the remote shell was not ready within {}s", wait.as_secs()))?
}

/// Drain a stream into the last `keep` bytes of `buf` (the loop's own stderr: nothing reads it
/// otherwise, and a full pipe would stall the session).
pub async fn drain_into<R: AsyncRead + Unpin>(
    mut r: R,
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    keep: usize,
) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut b = buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.extend_from_slice(&chunk[..n]);
        if b.len() > keep {
            let cut = b.len() - keep;
            b.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ssh_script;
    use crate::connection::Attrs;
    use std::process::Stdio;
    use tokio::io::BufReader;
    use tokio::process::{Child, ChildStdin, ChildStdout, Command};

    struct Local {
        child: Child,
        w: ChildStdin,
        r: BufReader<ChildStdout>,
        pid: u32,
    }

    /// The loop under `shell`, started behind a login shell that prints `junk` first.
    async fn start(shell: &str, junk: &str) -> Local {
        start_with(shell, junk, &[]).await
    }

    /// [`start`] with these environment variables.
    async fn start_with(shell: &str, junk: &str, env: &[(&str, &str)]) -> Local {
        let line = format!(
            "printf %s {} ; printf 'rc noise\\n' >&2; exec {shell} -c {}",
            crate::connection::quote::quote_str(junk).unwrap(),
            crate::connection::quote::quote_str(&loop_with(ssh_script::library())).unwrap()
        );
        let mut child = Command::new("/bin/sh")
            .envs(env.iter().copied())
            .args(["-c", &line])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut w = child.stdin.take().unwrap();
        let mut r = BufReader::new(child.stdout.take().unwrap());
        let pid = handshake(&mut w, &mut r, Duration::from_secs(10))
            .await
            .unwrap();
        Local { child, w, r, pid }
    }

    impl Local {
        async fn call(
            &mut self,
            script: &str,
            input: Option<&[u8]>,
        ) -> Result<ExecOutput, SessionError> {
            call(&mut self.w, &mut self.r, script, input, Runs::OwnShell).await
        }

        async fn sub(
            &mut self,
            script: &str,
            input: Option<&[u8]>,
        ) -> Result<ExecOutput, SessionError> {
            call(&mut self.w, &mut self.r, script, input, Runs::Subshell).await
        }

        /// A script that reads part of its input, then exits early: the rest is drained, and
        /// the next request (one that reads all of it) is in step.
        async fn input_is_drained(&mut self, runs: Runs, sh: &str) {
            let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
            let o = call(
                &mut self.w,
                &mut self.r,
                "head -c 10 | od -An -tx1 | tr -d ' \\n'; exit 3",
                Some(&input),
                runs,
            )
            .await
            .unwrap();
            assert_eq!(
                (o.rc, o.stdout.as_slice()),
                (3, &b"00010203040506070809"[..]),
                "{sh}"
            );
            let o = call(
                &mut self.w,
                &mut self.r,
                "wc -c | tr -d ' '",
                Some(&input),
                runs,
            )
            .await
            .unwrap();
            assert_eq!(o.stdout, b"300000\n", "{sh}");
        }
    }

    fn shells() -> Vec<&'static str> {
        ["/bin/sh", "/bin/bash", "/bin/dash", "/bin/ksh"]
            .into_iter()
            .filter(|s| std::path::Path::new(s).exists())
            .collect()
    }

    #[tokio::test]
    async fn many_requests_binary_output_exit_codes_and_isolation() {
        for sh in shells() {
            let mut s = start(
                sh,
                "junk without newline castellan-session-ready 0 1\n\x01x",
            )
            .await;
            assert!(s.pid > 1);
            for i in 0..100 {
                let o = s
                    .call(&format!("printf 'a\\0b%s' {i}; exit {}", i % 7), None)
                    .await
                    .unwrap();
                assert_eq!(o.stdout, format!("a\0b{i}").as_bytes(), "{sh}");
                assert_eq!(o.rc, i % 7, "{sh}");
            }
            // Stderr, no trailing newline, and the loop's variables are not the script's.
            let o = s
                .call("printf 'e\\n\\n' >&2; printf '%s' \"${__castellan_t-}${__castellan_s-}\"; cd /; x=1", None)
                .await
                .unwrap();
            assert_eq!(
                (o.rc, o.stdout.as_slice(), o.stderr.as_slice()),
                (0, &b""[..], &b"e\n\n"[..]),
                "{sh}"
            );
            // A script that reads stdin sees end of file, and cannot eat the session's stream;
            // what a script changes (variables, directory) stays in its subshell.
            let o = s.call("cat; echo \"[$x]\"; pwd", None).await.unwrap();
            let cwd = std::env::current_dir().unwrap();
            assert_eq!(
                o.stdout,
                format!("[]\n{}\n", cwd.display()).as_bytes(),
                "{sh}"
            );
            // `$$` is the script's own shell: killing it ends the request, not the session.
            let o = s.call("kill -9 $$", None).await.unwrap();
            assert_eq!(o.rc, 137, "{sh}");
            // A syntax error fails the request, not the session.
            let o = s.call("if then", None).await.unwrap();
            assert_ne!(o.rc, 0, "{sh}");
            s.input_is_drained(Runs::OwnShell, sh).await;
            let big = s.call("head -c 1048576 /dev/zero", None).await.unwrap();
            assert_eq!(big.stdout.len(), 1 << 20);
            // The umask of the login shell, not the loop's 077.
            let o = s.call("umask", None).await.unwrap();
            let here = std::process::Command::new(sh)
                .args(["-c", "umask"])
                .output()
                .unwrap();
            assert_eq!(o.stdout, here.stdout, "{sh}");
            drop(s.w);
            let st = s.child.wait().await.unwrap();
            assert!(st.success(), "{sh}: {st}");
        }
    }

    #[tokio::test]
    async fn writes_are_exact_and_a_bad_digest_renames_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let ps = p.to_str().unwrap();
        let mut s = start("/bin/sh", "").await;
        let attrs = Attrs {
            mode: Some(0o600),
            ..Attrs::default()
        };
        let mut contents: Vec<Vec<u8>> = vec![b"no newline".to_vec(), vec![0, 0, 1, 0, b'\n', 0]];
        contents.push((0..=255u8).cycle().take(1 << 20).collect());
        for c in &contents {
            let script = ssh_script::write_script(ps, &attrs, false, c.len(), None).unwrap();
            let o = s
                .sub(&script, Some(&ssh_script::write_stream(c)))
                .await
                .unwrap();
            assert_eq!(o.rc, 0, "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(&std::fs::read(&p).unwrap(), c);
        }
        // The content arrives, its digest does not match: refused, the file is the last one.
        let c = b"new content".to_vec();
        let script = ssh_script::write_script(ps, &attrs, false, c.len(), None).unwrap();
        let mut input = ssh_script::write_stream(&c);
        input[17] ^= 1;
        let o = s.sub(&script, Some(&input)).await.unwrap();
        assert_eq!(o.rc, 1);
        assert!(String::from_utf8_lossy(&o.stderr).contains("SHA-256 mismatch"));
        assert_eq!(&std::fs::read(&p).unwrap(), contents.last().unwrap());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temp file was left");
        // And the session goes on.
        let o = s.call("echo ok", None).await.unwrap();
        assert_eq!(o.stdout, b"ok\n");
    }

    #[tokio::test]
    async fn library_writes_read_exactly_their_input_and_the_loop_stays_in_step() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let attrs = Attrs {
            mode: Some(0o640),
            ..Attrs::default()
        };
        let pwned = format!("{d}/pwned");
        // Content that reads as a request if the loop took it for its stream.
        let cmd = format!("touch {pwned}");
        let forged = format!(
            "{} 0 0123456789abcdef i\n{cmd}0123456789abcdef",
            cmd.len() + 16
        );
        let big: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for sh in shells() {
            let mut s = start(sh, "").await;
            let write = |path: &str, c: &[u8]| {
                let script = ssh_script::write_script(path, &attrs, false, c.len(), None).unwrap();
                let line = library_call(&script, ssh_script::library())
                    .unwrap()
                    .to_string();
                (line, ssh_script::write_stream(c))
            };
            let p = format!("{d}/f");
            for c in [b"".to_vec(), forged.clone().into_bytes(), big.clone()] {
                let (line, input) = write(&p, &c);
                let o = call_lib(&mut s, &line, &input).await;
                assert_eq!(o.rc, 0, "{sh}: {}", String::from_utf8_lossy(&o.stderr));
                assert_eq!(std::fs::read(&p).unwrap(), c, "{sh}");
                assert!(o.stdout.starts_with(b"castellan-stat 81a0 "), "{sh}");
                // The directory's flush is left to the client, which was told.
                assert!(ssh_script::sync_deferred(&o.stdout), "{sh}");
                assert!(ssh_script::written_state(&o.stdout).is_some(), "{sh}");
            }
            // With a backup: its name still parses after the line that says so.
            let names = crate::connection::backup::Suffixes::now();
            let script = ssh_script::write_script(&p, &attrs, false, 3, Some(&names)).unwrap();
            let line = library_call(&script, ssh_script::library()).unwrap();
            let o = call_lib(&mut s, line, &ssh_script::write_stream(b"bak")).await;
            assert_eq!(o.rc, 0, "{sh}");
            assert_eq!(
                ssh_script::backup_made(&o.stdout),
                Some(format!("{p}{}", names.usual)),
                "{sh}"
            );
            std::fs::remove_file(format!("{p}{}", names.usual)).unwrap();
            std::fs::write(&p, &big).unwrap();
            // The flush of them all: one call, no input read.
            let sync = ssh_script::sync_script(&[d.to_string(), format!("{d}/none")]).unwrap();
            let line = library_call(&sync, ssh_script::library()).unwrap();
            let o = call(&mut s.w, &mut s.r, line, None, Runs::Library)
                .await
                .unwrap();
            assert_eq!((o.rc, o.stdout.len(), o.stderr.len()), (0, 0, 0), "{sh}");
            // Failures before the content is read (no directory, a bad digest after it) read it
            // all the same: the forged request in it never runs, the next request is in step.
            let (line, input) = write(&format!("{d}/none/f"), forged.as_bytes());
            let o = call_lib(&mut s, &line, &input).await;
            assert_eq!(o.rc, 1, "{sh}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("does not exist"),
                "{sh}"
            );
            let (line, mut input) = write(&p, forged.as_bytes());
            let n = input.len();
            input[n - 2] ^= 1;
            let o = call_lib(&mut s, &line, &input).await;
            assert_eq!(o.rc, 1, "{sh}");
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("SHA-256"),
                "{sh}"
            );
            assert_eq!(std::fs::read(&p).unwrap(), big, "{sh}");
            let o = s.sub("echo ok", None).await.unwrap();
            assert_eq!(o.stdout, b"ok\n", "{sh}");
            assert!(!std::path::Path::new(&pwned).exists(), "{sh}");
            let left = std::fs::read_dir(d).unwrap().count();
            assert_eq!(left, 1, "{sh}: a temp file was left");
            // Any other exit status: the stream may be out of step, the loop ends after its
            // reply, and the next request runs nothing.
            let o = call(&mut s.w, &mut s.r, "exit 3", None, Runs::Library)
                .await
                .unwrap();
            assert_eq!(o.rc, 3, "{sh}");
            assert!(matches!(
                s.sub("echo no", None).await,
                Err(SessionError::NotRun(_))
            ));
            // A multi-line script is no library call.
            assert_eq!(library_call("a\nb", "a"), None);
            assert!(request("a\nb", None, Runs::Library).is_err());
        }
    }

    #[tokio::test]
    async fn a_loop_without_a_directory_for_commands_refuses_them_and_goes_on() {
        for sh in shells() {
            let mut s = start_with(sh, "", &[("TMPDIR", "/nonexistent-castellan-tmp")]).await;
            let e = s
                .call("echo no", Some(b"input that is read and dropped"))
                .await;
            assert_eq!(e.unwrap_err(), SessionError::Refused, "{sh}");
            let e = s.call("echo no", None).await;
            assert_eq!(e.unwrap_err(), SessionError::Refused, "{sh}");
            let o = s.sub("cat", Some(b"still in step")).await.unwrap();
            assert_eq!(o.stdout, b"still in step", "{sh}");
        }
    }

    async fn call_lib(s: &mut Local, line: &str, input: &[u8]) -> ExecOutput {
        call(&mut s.w, &mut s.r, line, Some(input), Runs::Library)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn subshell_requests_stream_exact_output_and_stay_in_step() {
        let dir = tempfile::tempdir().unwrap();
        for sh in shells() {
            let mut s = start(sh, "junk\n").await;
            for i in 0..50 {
                let o = s
                    .sub(&format!("printf 'a\\0b%s' {i}; exit {}", i % 7), None)
                    .await
                    .unwrap();
                assert_eq!(o.stdout, format!("a\0b{i}").as_bytes(), "{sh}");
                assert_eq!(o.rc, i % 7, "{sh}");
            }
            // An end line with another nonce, newlines at the end, stderr: all exact.
            let o = s
                .sub(
                    "printf '\\ncastellan-end 0123456789abcdef 0 0\\n\\n\\n'; printf 'é ü x\\n\\n' >&2; false",
                    None,
                )
                .await
                .unwrap();
            assert_eq!(
                (o.rc, o.stdout.as_slice(), o.stderr.as_slice()),
                (
                    1,
                    &b"\ncastellan-end 0123456789abcdef 0 0\n\n\n"[..],
                    "é ü x\n\n".as_bytes()
                ),
                "{sh}"
            );
            // Stderr is counted in bytes whatever the locale (multi-byte characters above), and
            // the session is still in step after it.
            let o = s.sub("echo next", None).await.unwrap();
            assert_eq!(o.stdout, b"next\n", "{sh}");
            // None of the loop's variables; the login umask; what the script changes stays in
            // its subshell; a syntax error fails the request, not the session.
            let o = s
                .sub(
                    "echo \"[${__castellan_e-}${__castellan_s-}${__castellan_t-}${__castellan_u-}${__castellan_h-}]\"; umask; x=1; cd /",
                    None,
                )
                .await
                .unwrap();
            let here = std::process::Command::new(sh)
                .args(["-c", "umask"])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                format!("[]\n{}", String::from_utf8_lossy(&here.stdout)),
                "{sh}"
            );
            let o = s.sub("echo \"[${x-}]\"; pwd", None).await.unwrap();
            let cwd = std::env::current_dir().unwrap();
            assert_eq!(o.stdout, format!("[]\n{}\n", cwd.display()).as_bytes());
            assert_ne!(s.sub("if then", None).await.unwrap().rc, 0, "{sh}");
            // Input read in part, or not at all (with and without newlines): drained.
            s.input_is_drained(Runs::Subshell, sh).await;
            for unread in [&b"no newline at all"[..], b"x\n", b"\n\n\nrest"] {
                let o = s.sub("exit 4", Some(unread)).await.unwrap();
                assert_eq!(o.rc, 4, "{sh}");
                assert_eq!(
                    s.sub("echo in step", None).await.unwrap().stdout,
                    b"in step\n"
                );
            }
            let big = s.sub("head -c 3000000 /dev/urandom", None).await.unwrap();
            assert_eq!(big.stdout.len(), 3_000_000, "{sh}");
            // Both kinds of request on one session.
            let f = dir.path().join("f");
            let o = s
                .call(&format!("printf x > {}; echo own", f.display()), None)
                .await
                .unwrap();
            assert_eq!(o.stdout, b"own\n");
            let o = s.sub(&format!("cat {}", f.display()), None).await.unwrap();
            assert_eq!(o.stdout, b"x");
            drop(s.w);
            let st = s.child.wait().await.unwrap();
            assert!(st.success(), "{sh}: {st}");
        }
    }

    #[tokio::test]
    async fn a_subshell_reply_cut_short_is_lost() {
        let mut s = start("/bin/sh", "").await;
        let e = s
            .sub(
                &format!("printf partial; kill -9 {}; sleep 0.2", s.pid),
                None,
            )
            .await;
        assert!(matches!(e, Err(SessionError::Lost(_))), "{e:?}");
    }

    #[tokio::test]
    async fn a_killed_loop_or_a_cut_stream_is_an_error_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let mut s = start("/bin/sh", "").await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let _ = s.child.wait().await;
        let e = s
            .call(&format!("touch {}", flag.display()), None)
            .await
            .unwrap_err();
        assert!(matches!(e, SessionError::NotRun(_)), "{e:?}");
        assert!(!flag.exists());

        // A request cut short: the loop exits without running it.
        let mut s = start("/bin/sh", "").await;
        let (bytes, _) =
            request(&format!("touch {}", flag.display()), None, Runs::OwnShell).unwrap();
        s.w.write_all(&bytes[..bytes.len() - 3]).await.unwrap();
        drop(s.w);
        let st = s.child.wait().await.unwrap();
        assert!(!st.success());
        assert!(!flag.exists());
        let mut rest = Vec::new();
        s.r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    #[tokio::test]
    async fn a_script_killed_mid_request_is_lost_not_not_run() {
        let mut s = start("/bin/sh", "").await;
        let e = s.call(&format!("kill -9 {}; sleep 0.2", s.pid), None).await;
        // The loop is killed while the script runs: no reply.
        assert!(matches!(e, Err(SessionError::Lost(_))), "{e:?}");
    }

    #[test]
    fn requests_refuse_nul_and_carry_lengths() {
        assert_eq!(request("a\0", None, Runs::OwnShell).unwrap_err().offset, 1);
        let (b, n) = request("echo", Some(b"xyz"), Runs::OwnShell).unwrap();
        let text = String::from_utf8_lossy(&b).into_owned();
        assert_eq!(text, format!("20 3 {n} x\necho{n}xyz"));
        let (b, n) = request("echo", None, Runs::Subshell).unwrap();
        assert_eq!(b, format!("20 0 {n} i\necho{n}").as_bytes());
    }
}
