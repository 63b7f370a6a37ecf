//! Scripts that travel over stdin, never on a command line: the text of a `shell`/`command`
//! task (which may hold a `no_log` secret) must not show in `ps`, in `/proc/PID/cmdline` or in
//! sudo's log, on the host or on the control node.
//!
//! # Framing
//!
//! The command line is always the same: `SHELL -c BOOTSTRAP` (wrapped in `sudo`/`runuser` for
//! become), where [`BOOTSTRAP`] holds no task text. Its stdin is, in one stream:
//!
//! ```text
//! N NONCE\n          header line: N = bytes that follow for the script, NONCE = 16 random hex
//! SCRIPT NONCE        N bytes: the script, then the nonce again
//! STDIN...            the command's own stdin, if any
//! ```
//!
//! The bootstrap reads the header line with `read` (shells read a pipe a byte at a time, so
//! nothing past the line is taken), then exactly N bytes with `head -c` (coreutils reads no
//! further than asked), checks that they end with the nonce (a stream cut short never runs a
//! partial script: exit [`INCOMPLETE_RC`] with a message, nothing run), and `eval`s the script,
//! whose commands then read the rest of stdin, the command's own input, exactly as they would
//! have read all of it. Still one round trip; the cost is one `head` process: measured here
//! (2 shared cores), about 0.8 ms more CPU per command, and `exec(true)` over SSH at 3.8-4.3 ms
//! p50 instead of 3.2-3.5 ms in the quietest rounds.
//!
//! The script runs in the bootstrap shell: `$0` is the shell, there are no positional
//! parameters, `exit` ends it, as with `sh -c SCRIPT`. The shell must be POSIX (`/bin/sh`, or
//! the `executable` of a `shell` task: bash, dash, ksh, zsh).
use super::quote::QuoteError;

/// Exit status when the script did not arrive whole (nothing of it ran).
pub const INCOMPLETE_RC: i32 = 125;

/// The whole command that runs a framed script (see the module documentation).
pub const BOOTSTRAP: &str = "IFS=' ' read -r __castellan_n __castellan_e || exit 125
__castellan_s=$(head -c \"$__castellan_n\") || exit 125
case $__castellan_s in
*\"$__castellan_e\") __castellan_s=${__castellan_s%\"$__castellan_e\"} ;;
*) printf 'castellan: the script arrived incomplete; nothing was run\\n' >&2; exit 125 ;;
esac
unset __castellan_n __castellan_e
eval \"unset __castellan_s
$__castellan_s\"";

/// 16 hex digits from the system's random generator (a clock-based fallback if it fails).
fn nonce() -> String {
    crate::entropy::hex_or_clock(8)
}

/// The stdin that carries `script` to [`BOOTSTRAP`], then `stdin`. A script cannot hold a NUL
/// byte (no shell can): that is refused, as on a command line.
pub fn frame(script: &str, stdin: Option<&[u8]>) -> Result<Vec<u8>, QuoteError> {
    if let Some(offset) = script.bytes().position(|b| b == 0) {
        return Err(QuoteError { offset });
    }
    let nonce = nonce();
    let n = script.len() + nonce.len();
    let mut out = format!("{n} {nonce}\n").into_bytes();
    out.reserve(n + stdin.map_or(0, <[u8]>::len));
    out.extend_from_slice(script.as_bytes());
    out.extend_from_slice(nonce.as_bytes());
    if let Some(s) = stdin {
        out.extend_from_slice(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Run the bootstrap with `shell` and this stdin; (rc, stdout, stderr).
    fn run(shell: &str, input: &[u8]) -> (i32, Vec<u8>, String) {
        let mut child = Command::new(shell)
            .args(["-c", BOOTSTRAP])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut w = child.stdin.take().unwrap();
        let data = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        (
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn shells() -> Vec<&'static str> {
        [
            "/bin/sh",
            "/bin/bash",
            "/bin/dash",
            "/usr/bin/zsh",
            "/bin/ksh",
        ]
        .into_iter()
        .filter(|s| std::path::Path::new(s).exists())
        .collect()
    }

    #[test]
    fn the_command_line_holds_no_task_text() {
        let f = frame("echo secret-text", None).unwrap();
        assert!(!BOOTSTRAP.contains("secret-text"));
        assert!(String::from_utf8_lossy(&f).contains("echo secret-text"));
    }

    #[test]
    fn script_runs_and_the_rest_of_stdin_is_the_commands_input() {
        for sh in shells() {
            // The script reads its stdin twice, and ends with newlines that matter (a here-doc).
            let script = "read -r first; printf '[%s]' \"$first\"; cat\ncat <<EOF\nend\nEOF\n";
            let (rc, out, err) = run(sh, &frame(script, Some(b"one\ntwo\n\xff")).unwrap());
            assert_eq!((rc, err.as_str()), (0, ""), "{sh}");
            assert_eq!(out, b"[one]two\n\xffend\n", "{sh}");
            // Without stdin the commands see end of file at once.
            let (rc, out, _) = run(sh, &frame("cat; echo \"$#:$0\"", None).unwrap());
            assert_eq!(rc, 0, "{sh}");
            assert_eq!(String::from_utf8_lossy(&out), format!("0:{sh}\n"), "{sh}");
        }
    }

    #[test]
    fn exit_status_syntax_errors_and_our_variables() {
        for sh in shells() {
            let (rc, _, _) = run(sh, &frame("exit 7", None).unwrap());
            assert_eq!(rc, 7, "{sh}");
            let (rc, out, _) = run(sh, &frame("false", None).unwrap());
            assert_eq!((rc, out.is_empty()), (1, true), "{sh}");
            let (rc, _, err) = run(sh, &frame("echo ok; if then", None).unwrap());
            assert_ne!(rc, 0, "{sh}: {err}");
            // The script sees none of the bootstrap's variables.
            let (rc, out, _) = run(
                sh,
                &frame(
                    "echo \"${__castellan_s-}${__castellan_n-}${__castellan_e-}\"",
                    None,
                )
                .unwrap(),
            );
            assert_eq!((rc, out.as_slice()), (0, &b"\n"[..]), "{sh}");
        }
    }

    #[test]
    fn a_stream_cut_short_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let script = format!("touch {}; echo more", flag.display());
        let full = frame(&script, None).unwrap();
        let header = full.iter().position(|&b| b == b'\n').unwrap() + 1;
        for cut in [0, 3, header, header + 5, full.len() - 1] {
            let (rc, _, err) = run("/bin/sh", &full[..cut]);
            assert_eq!(rc, INCOMPLETE_RC, "cut at {cut}: {err}");
            assert!(!flag.exists(), "cut at {cut}: part of the script ran");
        }
        let (rc, _, _) = run("/bin/sh", &full);
        assert_eq!(rc, 0);
        assert!(flag.exists());
    }

    #[test]
    fn nul_bytes_are_refused_and_nonces_differ() {
        assert_eq!(frame("a\0b", None).unwrap_err().offset, 1);
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 16);
    }
}
