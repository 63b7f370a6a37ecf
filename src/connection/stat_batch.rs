//! Several stats in one round trip, in a few processes (see [`stat_many_script`]), and the
//! parser that splits the reply. Used to read ahead the paths a play's
//! later tasks will read ([`super::prefetch`]).
//!
//! Framing: three sections first (the shared `stat` records, NUL-separated, of paths read as
//! they are and through links; the checksums), each ended by a `\n<boundary> TAG` line; then after
//! each path's output (content, a link's target, or the one-path script's whole output) a line
//! `\n<boundary> <index> <exit code> <p|m|s> <length> <canonical path>` (`p`: the metadata is in
//! the shared records; `m`: certainly missing; `s`: the output is the one-path script's); the boundary is 32 random hex
//! digits chosen per request, so no file content can forge it. The canonical path (the path with
//! every directory symlink resolved, by the shell builtins `cd -P` and `pwd -P`: no extra process)
//! is empty when it cannot be told: a relative path, a final component that is itself a symbolic
//! link, `.` or `..`, or a directory that does not exist.
use std::collections::HashMap;

use super::quote::{quote_str, QuoteError};
use super::ssh_script::{parse_stat, stat_script, STAT_FIELDS, STAT_TAG};
use super::{FileKind, FileState, Want};

/// One path's answer: its state, and its canonical path when the host could tell it.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub state: FileState,
    pub real: Option<String>,
}

/// A fresh boundary: 32 random hex digits.
pub fn boundary() -> Result<String, String> {
    let mut b = [0u8; 16];
    crate::entropy::fill(&mut b)?;
    Ok(hex::encode(b))
}

/// The script that stats `reqs` in order (see the module's documentation for the framing).
///
/// Few processes, whatever the number of paths: the paths that exist (told by the shell's `test`)
/// are stat'ed by one `stat` per kind (through links or not), their checksums by one `sha256sum`
/// and one `sha1sum`; a path's content costs a `cat`, a link's target a `readlink`. A path that
/// does not exist in a directory that does costs nothing more ([`MISSING`]); any other path that
/// cannot be looked at runs the one-path [`stat_script`], which tells "missing" from an error
/// exactly as a single stat does.
pub fn stat_many_script(reqs: &[(String, Want)], boundary: &str) -> Result<String, QuoteError> {
    let b = boundary;
    let q: Vec<String> = reqs
        .iter()
        .map(|(p, _)| quote_str(p))
        .collect::<Result<_, _>>()?;
    let mut s = format!("LC_ALL=C; export LC_ALL\nF='{STAT_FIELDS} %n\\0'\n{MISSING}");
    for (i, (_, want)) in reqs.iter().enumerate() {
        let test = if want.follow {
            format!("[ -e {p} ]", p = q[i])
        } else {
            format!("[ -e {p} ] || [ -L {p} ]", p = q[i])
        };
        s.push_str(&format!("x{i}=0; if {test}; then x{i}=1; fi\n"));
    }
    let group = |s: &mut String, pick: &dyn Fn(&Want) -> bool, extra: &str| {
        s.push_str("set --\n");
        for (i, (_, want)) in reqs.iter().enumerate() {
            if pick(want) {
                s.push_str(&format!(
                    "[ $x{i} = 0 ]{extra} || set -- \"$@\" {p}\n",
                    p = q[i]
                ));
            }
        }
    };
    group(&mut s, &|w| !w.follow, "");
    s.push_str("[ $# -eq 0 ] || stat --printf \"$F\" -- \"$@\" 2>/dev/null\n");
    s.push_str(&format!("printf '\\n%s m\\n' {b}\n"));
    group(&mut s, &|w| w.follow, "");
    s.push_str("[ $# -eq 0 ] || stat -L --printf \"$F\" -- \"$@\" 2>/dev/null\n");
    s.push_str(&format!("printf '\\n%s M\\n' {b}\n"));
    // Checksums of the regular files that want them without their content.
    s.push_str("set --\n");
    for (i, (_, want)) in reqs.iter().enumerate() {
        if want.checksum && !want.content {
            let file = if want.follow {
                format!("[ -f {p} ]", p = q[i])
            } else {
                format!("[ -f {p} ] && [ ! -L {p} ]", p = q[i])
            };
            s.push_str(&format!(
                "if [ $x{i} = 1 ] && {file}; then set -- \"$@\" {p}; fi\n",
                p = q[i]
            ));
        }
    }
    s.push_str(&format!(
        "[ $# -eq 0 ] || {{ sha256sum -- \"$@\"; printf '%s s\\n' {b}; sha1sum -- \"$@\"; }} 2>/dev/null\n"
    ));
    s.push_str(&format!("printf '\\n%s C\\n' {b}\n"));
    for (i, (path, want)) in reqs.iter().enumerate() {
        let p = &q[i];
        let mut present = String::new();
        if !want.follow {
            present.push_str(&format!("  if [ -L {p} ]; then readlink -- {p}; el"));
        } else {
            present.push_str("  ");
        }
        if want.content {
            present.push_str(&format!("if [ -f {p} ]; then cat -- {p}; fi\n"));
        } else {
            present.push_str("if :; then :; fi\n");
        }
        let one = stat_script(path, *want)?;
        s.push_str(&format!(
            r#"if [ $x{i} = 1 ]; then
{present}  r=$? k=p
elif [ ! -L {p} ] && m {p}; then
  r=0 k=m
else
  (
{one}) 2>&1
  r=$? k=s
fi
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
printf '\n%s %d %d %s %d %s\n' {b} {i} "$r" "$k" "${{#d}}" "$d"
"#
        ));
    }
    Ok(s)
}

/// `m PATH`: PATH (which neither exists nor is a link) is certainly missing: an absolute path, not
/// too long, whose first missing component (a name of at most 255 bytes) is in a directory that
/// exists and can be searched, so its stat could only fail with "No such file or directory" (the
/// files of a directory a play is about to make cost no process each). Anything else runs the
/// one-path script, which tells exactly.
const MISSING: &str = r#"m() {
  case $1 in /*) ;; *) return 1 ;; esac
  [ ${#1} -lt 4000 ] || return 1
  mq=$1
  while :; do
    md=${mq%/*}; mb=${mq##*/}
    [ -n "$mb" ] && [ ${#mb} -le 255 ] || return 1
    if [ -d "${md:-/}" ]; then [ -x "${md:-/}" ]; return; fi
    if [ -e "$md" ] || [ -L "$md" ]; then return 1; fi
    mq=$md
  done
}
"#;

fn bad(msg: &str) -> String {
    format!("unexpected output from the remote stat-many script: {msg}")
}

/// The `stat --printf` records of one section: name -> the 14 fields [`parse_stat`] reads.
fn records(section: &[u8]) -> HashMap<&[u8], &[u8]> {
    let mut m = HashMap::new();
    for rec in section.split(|&b| b == 0) {
        // 14 fields separated by single spaces (the two times hold two spaces each), then the name.
        let mut spaces = 0;
        if let Some(k) = rec.iter().position(|&b| {
            spaces += usize::from(b == b' ');
            spaces == 14
        }) {
            m.insert(&rec[k + 1..], &rec[..k]);
        }
    }
    m
}

/// `sha256sum`/`sha1sum` lines: name -> hex digest (GNU escapes a name holding `\` or a newline
/// and marks the line with a leading `\`).
fn digests(section: &[u8], len: usize) -> HashMap<Vec<u8>, String> {
    let mut m = HashMap::new();
    for line in section.split(|&b| b == b'\n') {
        let (escaped, line) = match line.strip_prefix(b"\\") {
            Some(l) => (true, l),
            None => (false, line),
        };
        if line.len() < len + 2 || !line[..len].iter().all(u8::is_ascii_hexdigit) {
            continue;
        }
        let name = &line[len + 2..];
        let name = if escaped {
            let mut out = Vec::with_capacity(name.len());
            let mut it = name.iter();
            while let Some(&c) = it.next() {
                match (c, it.as_slice().first()) {
                    (b'\\', Some(b'\\')) => {
                        out.push(b'\\');
                        it.next();
                    }
                    (b'\\', Some(b'n')) => {
                        out.push(b'\n');
                        it.next();
                    }
                    _ => out.push(c),
                }
            }
            out
        } else {
            name.to_vec()
        };
        m.insert(name, String::from_utf8_lossy(&line[..len]).into_owned());
    }
    m
}

/// Parse the reply of [`stat_many_script`] for `reqs` (in order). The outer error is a reply
/// that does not frame; a path that could not be read is an inner error with the host's message.
pub fn parse_stat_many(
    out: &[u8],
    reqs: &[(String, Want)],
    boundary: &str,
) -> Result<Vec<Result<Fetched, String>>, String> {
    let cut = |from: usize, tag: &str| -> Result<(usize, usize), String> {
        let m = format!("\n{boundary} {tag}\n");
        find(&out[from..], m.as_bytes())
            .map(|k| (from + k, from + k + m.len()))
            .ok_or_else(|| bad(&format!("no `{tag}` section")))
    };
    let (m_end, m_next) = cut(0, "m")?;
    let (f_end, f_next) = cut(m_next, "M")?;
    let (c_end, mut pos) = cut(f_next, "C")?;
    let plain = records(&out[..m_end]);
    let followed = records(&out[m_next..f_end]);
    let sums = &out[f_next..c_end];
    let s_mark = format!("{boundary} s\n");
    let (s256, s1) = match find(sums, s_mark.as_bytes()) {
        Some(k) => (
            digests(&sums[..k], 64),
            digests(&sums[k + s_mark.len()..], 40),
        ),
        None => (HashMap::new(), HashMap::new()),
    };
    let mut res = Vec::with_capacity(reqs.len());
    for (i, (path, want)) in reqs.iter().enumerate() {
        let marker = format!("\n{boundary} {i} ");
        let at = find(&out[pos..], marker.as_bytes())
            .map(|k| pos + k)
            .ok_or_else(|| bad(&format!("no end marker for path {i}")))?;
        let item = &out[pos..at];
        let line_end = out[at + marker.len()..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|k| at + marker.len() + k)
            .ok_or_else(|| bad("truncated marker"))?;
        // rc, kind, length, then the canonical path (which may hold spaces and newlines).
        let head = std::str::from_utf8(&out[at + marker.len()..line_end])
            .map_err(|_| bad("marker is not UTF-8"))?;
        let mut w = head.splitn(4, ' ');
        let (rc, kind, len) = match (w.next(), w.next(), w.next()) {
            (Some(r), Some(k), Some(l)) => (
                r.parse::<i64>().map_err(|_| bad("exit code"))?,
                k,
                l.parse::<usize>().map_err(|_| bad("length"))?,
            ),
            _ => return Err(bad("marker fields")),
        };
        // The canonical path starts after "rc kind len " and may hold newlines: by its length.
        let skip: usize = head.splitn(4, ' ').take(3).map(|x| x.len() + 1).sum();
        let real_start = at + marker.len() + skip;
        let real_end = real_start + len;
        if out.get(real_end) != Some(&b'\n') {
            return Err(bad("canonical path does not end the marker"));
        }
        let real = std::str::from_utf8(&out[real_start..real_end])
            .ok()
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        pos = real_end + 1;
        let r = match (rc, kind) {
            (0, "m") => Ok(FileState::default()),
            (0, "s") => parse_stat(item, *want),
            (0, "p") => {
                let recs = if want.follow { &followed } else { &plain };
                match recs.get(path.as_bytes()) {
                    None => Err(format!("cannot stat {path}: it went away while being read")),
                    Some(fields) => {
                        let mut text = format!("{STAT_TAG} ").into_bytes();
                        text.extend_from_slice(fields);
                        text.push(b'\n');
                        text.extend_from_slice(item);
                        let only_meta = Want {
                            checksum: want.checksum && want.content,
                            ..*want
                        };
                        parse_stat(&text, only_meta).and_then(|mut st| {
                            if want.checksum && !want.content && st.kind == FileKind::File {
                                let key = path.as_bytes().to_vec();
                                match (s256.get(&key), s1.get(&key)) {
                                    (Some(a), Some(b)) => {
                                        st.sha256 = Some(a.clone());
                                        st.sha1 = Some(b.clone());
                                    }
                                    _ => return Err(format!("cannot checksum {path}")),
                                }
                            }
                            Ok(st)
                        })
                    }
                }
            }
            _ => Err(String::from_utf8_lossy(item).trim().to_string()),
        };
        res.push(r.map(|state| Fetched { state, real }));
    }
    Ok(res)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::FileKind;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    fn find_all(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

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
        let got = parse_stat_many(&out, &reqs, &b).unwrap();
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
        let got = parse_stat_many(&out, &reqs, &b).unwrap();
        let e = got[0].as_ref().unwrap_err();
        assert!(e.contains("cannot stat"), "{e}");
        assert_eq!(got[1].as_ref().unwrap().state.size, 2);
    }

    #[test]
    fn a_reply_cut_short_is_an_error_not_a_guess() {
        let b = "00ff";
        let reqs = vec![
            ("/x".to_string(), Want::default()),
            ("/y".to_string(), Want::default()),
        ];
        let head = "\n00ff m\n\n00ff M\n\n00ff C\n";
        let one = format!("{head}castellan-stat missing\n\n00ff 0 0 s 0 \n");
        assert!(parse_stat_many(one.as_bytes(), &reqs, b).is_err());
        let bad_len = format!("{head}castellan-stat missing\n\n00ff 0 0 s 9 /x\n");
        assert!(parse_stat_many(bad_len.as_bytes(), &reqs[..1], b).is_err());
        assert!(parse_stat_many(b"castellan-stat missing\n", &reqs[..1], b).is_err());
        let ok = parse_stat_many(one.as_bytes(), &reqs[..1], b).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].as_ref().unwrap().real, None);
        assert_eq!(ok[0].as_ref().unwrap().state.kind, FileKind::Missing);
    }

    #[test]
    fn checksums_links_and_odd_names_match_the_one_path_script() {
        use crate::connection::ssh_script::parse_stat;
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap();
        let odd = root.join("a\\b\nc d.key");
        fs::write(&odd, b"secret\n").unwrap();
        let plain = root.join("plain.crt");
        fs::write(&plain, b"cert\n").unwrap();
        symlink(&plain, root.join("ln")).unwrap();
        symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        let sum = Want {
            checksum: true,
            ..Want::default()
        };
        let all = [
            Want::default(),
            sum,
            Want {
                follow: true,
                ..sum
            },
            Want {
                content: true,
                follow: true,
                checksum: true,
            },
            Want {
                content: true,
                ..Want::default()
            },
        ];
        let mut reqs = Vec::new();
        for p in [
            &odd,
            &plain,
            &root.join("ln"),
            &root.join("dangling"),
            &root.join("none"),
        ] {
            for w in all {
                reqs.push((p.display().to_string(), w));
            }
        }
        let b = boundary().unwrap();
        let out = run(&stat_many_script(&reqs, &b).unwrap());
        let got = parse_stat_many(&out, &reqs, &b).unwrap();
        // Only the 2 wants that follow the dangling link ran the one-path script: the others came
        // from the shared stat, or were missing in a directory that exists ("none").
        assert_eq!(find_all(&out, b"castellan-stat "), 2);
        for ((path, want), g) in reqs.iter().zip(&got) {
            let single = run(&stat_script(path, *want).unwrap());
            let one = parse_stat(&single, *want).unwrap();
            let g = &g.as_ref().unwrap().state;
            let what = format!("{path:?} {want:?}");
            assert_eq!(g.kind, one.kind, "{what}");
            assert_eq!(g.mode, one.mode, "{what}");
            assert_eq!(g.size, one.size, "{what}");
            assert_eq!(g.owner, one.owner, "{what}");
            assert_eq!(g.mtime, one.mtime, "{what}");
            assert_eq!(g.link_target, one.link_target, "{what}");
            assert_eq!(g.sha256, one.sha256, "{what}");
            assert_eq!(g.sha1, one.sha1, "{what}");
            assert_eq!(g.content, one.content, "{what}");
        }
    }

    #[test]
    fn paths_in_directories_that_do_not_exist_are_missing_without_a_stat_each() {
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap().display().to_string();
        fs::write(format!("{root}/file"), "x").unwrap();
        let long = "n".repeat(300);
        let paths = [
            format!("{root}/new/a.conf"),
            format!("{root}/new/deeper/b"),
            format!("{root}/file/x"),
            format!("{root}/{long}/x"),
        ];
        let reqs: Vec<(String, Want)> =
            paths.iter().map(|p| (p.clone(), Want::default())).collect();
        let b = "0123456789abcdef0123456789abcdef";
        let out = run(&stat_many_script(&reqs, b).unwrap());
        // Told missing by the shell (`m`), not by a stat of their own.
        for i in 0..2 {
            assert_eq!(
                find_all(&out, format!("\n{b} {i} 0 m ").as_bytes()),
                1,
                "{i}"
            );
        }
        // Under a regular file, or a name too long: the one-path script tells.
        for i in 2..4 {
            assert_eq!(find_all(&out, format!("\n{b} {i} ").as_bytes()), 1, "{i}");
            assert_eq!(
                find_all(&out, format!("\n{b} {i} 0 m ").as_bytes()),
                0,
                "{i}"
            );
        }
        let got = parse_stat_many(&out, &reqs, b).unwrap();
        for r in &got[..3] {
            assert!(!r.as_ref().unwrap().state.exists());
        }
        assert!(
            got[3].is_err(),
            "{:?}",
            got[3].as_ref().map(|f| f.state.kind)
        );
    }

    #[test]
    fn the_script_runs_few_processes_whatever_the_number_of_paths() {
        let reqs: Vec<(String, Want)> = (0..20)
            .map(|i| {
                (
                    format!("/etc/p{i}"),
                    Want {
                        checksum: true,
                        ..Want::default()
                    },
                )
            })
            .collect();
        let s = stat_many_script(&reqs, "00").unwrap();
        assert_eq!(s.matches("stat --printf").count(), 1);
        assert_eq!(s.matches("stat -L --printf").count(), 1);
        assert_eq!(s.matches("sha256sum -- \"$@\"").count(), 1);
    }
}
