//! Several stats in one round trip: the script that runs [`stat_script`] for each path in a
//! subshell of its own, and the parser that splits the reply. Used to read ahead the paths a play's
//! later tasks will read ([`super::prefetch`]).
//!
//! Framing: after each path's output the script prints a line
//! `\n<boundary> <index> <exit code> <length> <canonical path>`; the boundary is 32 random hex
//! digits chosen per request, so no file content can forge it. The canonical path (the path with
//! every directory symlink resolved, by the shell builtins `cd -P` and `pwd -P`: no extra process)
//! is empty when it cannot be told: a relative path, a final component that is itself a symbolic
//! link, `.` or `..`, or a directory that does not exist.
use super::quote::{quote_str, QuoteError};
use super::ssh_script::{parse_stat, stat_script};
use super::{FileState, Want};

/// One path's answer: its state, and its canonical path when the host could tell it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub state: FileState,
    pub real: Option<String>,
}

/// A fresh boundary: 32 random hex digits.
pub fn boundary() -> Result<String, String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no random bytes available".to_string())?;
    Ok(hex::encode(b))
}

/// The script that stats `reqs` in order (see the module's documentation for the framing).
pub fn stat_many_script(reqs: &[(String, Want)], boundary: &str) -> Result<String, QuoteError> {
    let mut s = String::from("LC_ALL=C; export LC_ALL\n");
    for (i, (path, want)) in reqs.iter().enumerate() {
        let one = stat_script(path, *want)?;
        s.push_str(&format!(
            r#"(
{one}) 2>&1
r=$?
p={p}
d=
case $p in
/*) case ${{p##*/}} in
    ''|.|..) ;;
    *) if [ ! -L "$p" ]; then
         d=$(cd -P -- "${{p%/*}}/" 2>/dev/null && pwd -P) && d=${{d%/}}/${{p##*/}} || d=
       fi ;;
    esac ;;
esac
printf '\n%s %d %d %d %s\n' {boundary} {i} "$r" "${{#d}}" "$d"
"#,
            p = quote_str(path)?
        ));
    }
    Ok(s)
}

fn bad(msg: &str) -> String {
    format!("unexpected output from the remote stat-many script: {msg}")
}

/// Parse the reply of [`stat_many_script`] for `wants` (one per path, in order). The outer error
/// is a reply that does not frame; a path that could not be read is an inner error with the
/// host's message.
pub fn parse_stat_many(
    out: &[u8],
    wants: &[Want],
    boundary: &str,
) -> Result<Vec<Result<Fetched, String>>, String> {
    let mut res = Vec::with_capacity(wants.len());
    let mut pos = 0;
    for (i, want) in wants.iter().enumerate() {
        let marker = format!("\n{boundary} {i} ");
        let at = find(&out[pos..], marker.as_bytes())
            .map(|k| pos + k)
            .ok_or_else(|| bad(&format!("no end marker for path {i}")))?;
        let item = &out[pos..at];
        let mut cur = at + marker.len();
        let mut field = || -> Result<i64, String> {
            let sp = out[cur..]
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("truncated marker"))?;
            let n = std::str::from_utf8(&out[cur..cur + sp])
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| bad("marker field is not a number"))?;
            cur += sp + 1;
            Ok(n)
        };
        let rc = field()?;
        let len = usize::try_from(field()?).map_err(|_| bad("negative length"))?;
        let real_end = cur + len;
        if out.get(real_end) != Some(&b'\n') {
            return Err(bad("canonical path does not end the marker"));
        }
        let real = std::str::from_utf8(&out[cur..real_end])
            .ok()
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        pos = real_end + 1;
        res.push(if rc == 0 {
            parse_stat(item, *want).map(|state| Fetched { state, real })
        } else {
            Err(String::from_utf8_lossy(item).trim().to_string())
        });
    }
    Ok(res)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::FileKind;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    fn run(script: &str) -> Vec<u8> {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn many_paths_in_one_script_each_with_its_state_content_and_canonical_path() {
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap();
        let real = root.join("real dir $x `y`");
        fs::create_dir(&real).unwrap();
        symlink(&real, root.join("alias")).unwrap();
        let f = real.join("a.conf");
        // Content that ends without a newline and holds what a marker looks like.
        fs::write(&f, b"x = 1\n0123 0 0 0 \nno newline").unwrap();
        symlink(&f, root.join("link.conf")).unwrap();
        let via_alias = root.join("alias").join("a.conf");
        let content = Want {
            content: true,
            checksum: true,
            follow: true,
        };
        let reqs = vec![
            (via_alias.display().to_string(), content),
            (root.join("missing").display().to_string(), Want::default()),
            (
                root.join("link.conf").display().to_string(),
                Want::default(),
            ),
            (real.display().to_string(), Want::default()),
            ("relative/path".to_string(), Want::default()),
            (
                root.join("no-such-dir/x").display().to_string(),
                Want::default(),
            ),
        ];
        let b = boundary().unwrap();
        let out = run(&stat_many_script(&reqs, &b).unwrap());
        let wants: Vec<Want> = reqs.iter().map(|r| r.1).collect();
        let got = parse_stat_many(&out, &wants, &b).unwrap();
        assert_eq!(got.len(), 6);
        let a = got[0].as_ref().unwrap();
        assert_eq!(a.state.kind, FileKind::File);
        assert_eq!(
            a.state.content.as_deref(),
            Some(&b"x = 1\n0123 0 0 0 \nno newline"[..])
        );
        assert!(a.state.sha256.is_some());
        assert_eq!(a.real.as_deref(), Some(f.to_str().unwrap()));
        let m = got[1].as_ref().unwrap();
        assert_eq!(m.state.kind, FileKind::Missing);
        assert_eq!(m.real, Some(root.join("missing").display().to_string()));
        let l = got[2].as_ref().unwrap();
        assert_eq!(l.state.kind, FileKind::Link);
        assert_eq!(
            l.real, None,
            "a final link has no canonical path of its own"
        );
        assert_eq!(got[3].as_ref().unwrap().state.kind, FileKind::Directory);
        assert_eq!(got[3].as_ref().unwrap().real.as_deref(), real.to_str());
        assert_eq!(got[4].as_ref().unwrap().real, None);
        assert_eq!(got[5].as_ref().unwrap().state.kind, FileKind::Missing);
        assert_eq!(got[5].as_ref().unwrap().real, None);
    }

    #[test]
    fn a_path_that_cannot_be_read_is_its_own_error_and_the_rest_still_parse() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        fs::write(&f, "ok").unwrap();
        // A path through a regular file: "Not a directory" is "missing"; a loop is an error.
        let lp = t.path().join("loop");
        symlink(&lp, &lp).unwrap();
        let reqs = vec![
            (
                lp.display().to_string(),
                Want {
                    follow: true,
                    ..Want::default()
                },
            ),
            (f.display().to_string(), Want::default()),
        ];
        let b = boundary().unwrap();
        let out = run(&stat_many_script(&reqs, &b).unwrap());
        let got = parse_stat_many(&out, &[reqs[0].1, reqs[1].1], &b).unwrap();
        let e = got[0].as_ref().unwrap_err();
        assert!(e.contains("cannot stat"), "{e}");
        assert_eq!(got[1].as_ref().unwrap().state.size, 2);
    }

    #[test]
    fn a_reply_cut_short_is_an_error_not_a_guess() {
        let b = "00ff";
        let wants = [Want::default(), Want::default()];
        let one = b"castellan-stat missing\n\n00ff 0 0 0 \n";
        assert!(parse_stat_many(one, &wants, b).is_err());
        let bad_len = b"castellan-stat missing\n\n00ff 0 0 9 /x\n";
        assert!(parse_stat_many(bad_len, &wants[..1], b).is_err());
        let ok = parse_stat_many(one, &wants[..1], b).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].as_ref().unwrap().real, None);
    }
}
