//! Ansible's `version` test (alias `version_compare`): loose (distutils LooseVersion, the
//! default), strict (StrictVersion), semver/semantic and pep440 comparisons, with the
//! operators `== = eq != <> ne < lt <= le > gt >= ge`.
use std::cmp::Ordering;

/// One LooseVersion component: a number, or any other run of text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Num(u64),
    Text(String),
}

fn loose(v: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut kind = 0u8; // 0 none, 1 digits, 2 lowercase letters, 3 other
    let flush = |cur: &mut String, kind: u8, parts: &mut Vec<Part>| {
        if !cur.is_empty() {
            parts.push(match (kind, cur.parse::<u64>()) {
                (1, Ok(n)) => Part::Num(n),
                _ => Part::Text(cur.clone()),
            });
            cur.clear();
        }
    };
    for c in v.chars() {
        let k = if c.is_ascii_digit() {
            1
        } else if c.is_ascii_lowercase() {
            2
        } else if c == '.' {
            0
        } else {
            3
        };
        if k != kind || k == 0 {
            flush(&mut cur, kind, &mut parts);
        }
        kind = k;
        if k != 0 {
            cur.push(c);
        }
    }
    flush(&mut cur, kind, &mut parts);
    parts
}

fn cmp_loose(a: &[Part], b: &[Part]) -> Result<Ordering, String> {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Part::Num(p), Part::Num(q)) => p.cmp(q),
            (Part::Text(p), Part::Text(q)) => p.cmp(q),
            (Part::Text(_), Part::Num(_)) => {
                return Err("'<' not supported between instances of 'str' and 'int'".into())
            }
            (Part::Num(_), Part::Text(_)) => {
                return Err("'<' not supported between instances of 'int' and 'str'".into())
            }
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// StrictVersion: `N.N[.N][{a|b}N]`.
/// (major, minor, patch) and the `a1`/`b2` prerelease.
type Strict = ([u64; 3], Option<(char, u64)>);

fn strict(v: &str) -> Result<Strict, String> {
    let bad = || format!("invalid version number '{v}'");
    let (core, pre) = match v.find(['a', 'b']) {
        Some(i) => (&v[..i], Some(&v[i..])),
        None => (v, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if !(2..=3).contains(&nums.len()) {
        return Err(bad());
    }
    let mut t = [0u64; 3];
    for (i, n) in nums.iter().enumerate() {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t[i] = n.parse().map_err(|_| bad())?;
    }
    let pre = match pre {
        Some(p) => {
            let (l, n) = p.split_at(1);
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Some((
                l.chars().next().unwrap_or('a'),
                n.parse().map_err(|_| bad())?,
            ))
        }
        None => None,
    };
    Ok((t, pre))
}

fn cmp_strict(a: &str, b: &str) -> Result<Ordering, String> {
    let (x, y) = (strict(a)?, strict(b)?);
    Ok(x.0.cmp(&y.0).then(match (&x.1, &y.1) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => p.cmp(q),
    }))
}

fn semver(v: &str) -> Result<([u64; 3], Vec<String>), String> {
    let bad = || format!("invalid semantic version '{v}'");
    let v2 = v.split_once('+').map_or(v, |(a, _)| a);
    let (core, pre) = v2.split_once('-').map_or((v2, None), |(c, p)| (c, Some(p)));
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() != 3 {
        return Err(bad());
    }
    let mut t = [0u64; 3];
    for (i, n) in nums.iter().enumerate() {
        if n.is_empty()
            || !n.bytes().all(|b| b.is_ascii_digit())
            || (n.len() > 1 && n.starts_with('0'))
        {
            return Err(bad());
        }
        t[i] = n.parse().map_err(|_| bad())?;
    }
    let pre: Vec<String> = match pre {
        Some(p) => {
            let ids: Vec<String> = p.split('.').map(str::to_string).collect();
            if ids
                .iter()
                .any(|i| i.is_empty() || !i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(bad());
            }
            ids
        }
        None => Vec::new(),
    };
    Ok((t, pre))
}

fn cmp_semver(a: &str, b: &str) -> Result<Ordering, String> {
    let (x, y) = (semver(a)?, semver(b)?);
    let core = x.0.cmp(&y.0);
    if core != Ordering::Equal {
        return Ok(core);
    }
    Ok(match (x.1.is_empty(), y.1.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            for (p, q) in x.1.iter().zip(&y.1) {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            x.1.len().cmp(&y.1.len())
        }
    })
}

/// A PEP 440 version as a sortable key: (epoch, release without trailing zeros, pre, post, dev).
type Pep = (u64, Vec<u64>, (i8, u64), (i8, u64), (i8, u64));

fn pep440(v: &str) -> Result<Pep, String> {
    let bad = || format!("Invalid version: '{v}'");
    let s = v.trim().to_lowercase();
    let s = s.strip_prefix('v').unwrap_or(&s);
    let s = s.split_once('+').map_or(s, |(a, _)| a);
    let (epoch, s) = match s.split_once('!') {
        Some((e, r)) => (e.parse().map_err(|_| bad())?, r),
        None => (0, s),
    };
    let rel_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let rel_txt = s[..rel_end].trim_end_matches('.');
    let mut rest = &s[rel_txt.len()..];
    let mut release: Vec<u64> = rel_txt
        .split('.')
        .map(|n| n.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let take_num = |r: &mut &str| -> u64 {
        let t = r.trim_start_matches(['.', '-', '_']);
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n = t[..end].parse().unwrap_or(0);
        *r = &t[end..];
        n
    };
    let mut pre = None;
    let mut post = None;
    let mut dev = None;
    loop {
        let r = rest.trim_start_matches(['.', '-', '_']);
        if r.is_empty() {
            break;
        }
        let words: &[(&str, i8)] = &[
            ("alpha", 0),
            ("a", 0),
            ("beta", 1),
            ("b", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("c", 2),
        ];
        if let Some((w, k)) = words
            .iter()
            .find(|(w, _)| r.starts_with(w))
            .filter(|_| pre.is_none() && post.is_none() && dev.is_none())
        {
            rest = &r[w.len()..];
            pre = Some((*k, take_num(&mut rest)));
        } else if let Some(w) = ["post", "rev", "r"]
            .iter()
            .find(|w| r.starts_with(*w))
            .filter(|_| post.is_none() && dev.is_none())
        {
            rest = &r[w.len()..];
            post = Some(take_num(&mut rest));
        } else if r.starts_with("dev") && dev.is_none() {
            rest = &r[3..];
            dev = Some(take_num(&mut rest));
        } else {
            return Err(bad());
        }
    }
    let pre_key = match (pre, post, dev) {
        (None, None, Some(_)) => (-1, 0),
        (None, _, _) => (3, 0),
        (Some((k, n)), _, _) => (k, n),
    };
    let post_key = post.map_or((-1, 0), |n| (0, n));
    let dev_key = dev.map_or((1, 0), |n| (0, n));
    Ok((epoch, release, pre_key, post_key, dev_key))
}

/// `value is version(version, operator='eq', strict=False, version_type=None)`.
pub fn compare(
    value: &str,
    version: &str,
    operator: &str,
    strict_flag: bool,
    version_type: Option<&str>,
) -> Result<bool, String> {
    if value.is_empty() {
        return Err("Input version value cannot be empty".into());
    }
    if version.is_empty() {
        return Err("Version parameter to compare against cannot be empty".into());
    }
    let op = match operator {
        "==" | "=" | "eq" => "eq",
        "<" | "lt" => "lt",
        "<=" | "le" => "le",
        ">" | "gt" => "gt",
        ">=" | "ge" => "ge",
        "!=" | "<>" | "ne" => "ne",
        other => return Err(format!("Invalid operator type ({other})")),
    };
    let kind = if strict_flag {
        "strict"
    } else {
        version_type.unwrap_or("loose")
    };
    let ord = match kind {
        "loose" => {
            let (a, b) = (loose(value), loose(version));
            // LooseVersion's == compares the component lists, never raising.
            if op == "eq" || op == "ne" {
                return Ok((a == b) == (op == "eq"));
            }
            cmp_loose(&a, &b)
        }
        "strict" => cmp_strict(value, version),
        "semver" | "semantic" => cmp_semver(value, version),
        "pep440" => pep440(value).and_then(|a| pep440(version).map(|b| a.cmp(&b))),
        other => {
            return Err(format!(
                "Invalid version type ({other}). Must be one of loose, pep440, semantic, semver, strict"
            ))
        }
    }
    .map_err(|e| format!("Version comparison failed: {e}"))?;
    Ok(match op {
        "eq" => ord == Ordering::Equal,
        "ne" => ord != Ordering::Equal,
        "lt" => ord == Ordering::Less,
        "le" => ord != Ordering::Greater,
        "gt" => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_ansible_version_test() {
        // ansible-core 2.19: {{ a is version(b, op, ...) }}
        assert_eq!(compare("1.2.10", "1.2.9", ">", false, None), Ok(true));
        assert_eq!(compare("1.2.10", "1.2.9", "lt", false, None), Ok(false));
        assert_eq!(compare("9.6", "10", "<", false, None), Ok(true));
        assert_eq!(
            compare("1.0.0-rc1", "1.0.0", "<", false, Some("semver")),
            Ok(true)
        );
        assert_eq!(
            compare("1.0rc1", "1.0", "<", false, Some("pep440")),
            Ok(true)
        );
        assert_eq!(compare("1.0a", "1.0", ">", false, Some("loose")), Ok(true));
        assert_eq!(compare("1.0", "1.0.0", "==", false, None), Ok(false));
        assert_eq!(compare("1.0", "1.0.0", "==", true, None), Ok(true));
        assert_eq!(compare("2.19.1", "2.9", ">=", false, None), Ok(true));
        assert!(compare("a", "1", ">", false, None)
            .unwrap_err()
            .contains("not supported between"));
        assert!(compare("1", "2", "~", false, None).is_err());
    }
}
