//! Host keys of the YAML inventory: `name`, `name:port`, and ranges `db[01:03]`, `db[1:9:2]`,
//! `web-[a:c]`, expanded exactly as Ansible's `expand_hostname_range` does.

/// Split an optional `:port` off a host key, as Ansible's `parse_address(allow_ranges=True)`.
/// `db1:2222` -> (`db1`, 2222); `db[1:3]` and IPv6 addresses keep their colons.
pub(super) fn split_port(key: &str) -> (&str, Option<i64>) {
    // `[v6addr]:port`
    if let Some(rest) = key.strip_prefix('[') {
        if let Some((addr, port)) = rest.split_once("]:") {
            if addr.contains(':') && is_port(port) {
                return (addr, port.parse().ok());
            }
        }
    }
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in key.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    if let [i] = colons[..] {
        let (host, port) = (&key[..i], &key[i + 1..]);
        if !host.is_empty() && is_port(port) {
            return (host, port.parse().ok());
        }
    }
    (key, None)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Most host names one pattern may expand to: `db[0:99999999]` is a typo, not a fleet, and would
/// take gigabytes.
pub(super) const MAX_RANGE_HOSTS: usize = 65_536;

fn too_many(line: &str) -> String {
    format!("host pattern `{line}` expands to more than {MAX_RANGE_HOSTS} hosts")
}

/// Expand every `[begin:end(:step)]` range in a host name; a name without `[` is returned as is.
pub(super) fn expand(name: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(name, &mut out)?;
    Ok(out)
}

fn expand_into(line: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = line.find('[') else {
        out.push(line.to_string());
        return Ok(());
    };
    let head = &line[..open];
    let after = &line[open + 1..];
    let close = after
        .find(']')
        .ok_or_else(|| format!("host range in `{line}` has no closing `]`"))?;
    let nrange = &after[..close];
    let tail = &after[close + 1..];
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(format!(
            "host range `[{nrange}]` must be begin:end or begin:end:step"
        ));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(format!("host range `[{nrange}]` must specify an end value"));
    }
    let step: usize = match bounds.get(2) {
        None => 1,
        Some(s) => s
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("host range step `{s}` must be a positive integer"))?,
    };
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err(format!(
                "host range `[{nrange}]` must have begin and end of equal length"
            ));
        }
        beg.len()
    } else {
        0
    };
    let items: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end)) {
        (Some(ib), Some(ie)) => {
            if ib > ie {
                return Err(format!("host range `[{nrange}]` must have begin <= end"));
            }
            LETTERS[ib..=ie]
                .chars()
                .step_by(step)
                .map(|c| format!("{c:0>width$}"))
                .collect()
        }
        _ => {
            let parse = |s: &str| {
                s.trim().parse::<i64>().map_err(|_| {
                    format!("host range `[{nrange}]`: `{s}` is not a number or a letter")
                })
            };
            let (b, e) = (parse(beg)?, parse(end)?);
            // Ansible silently expands a backwards range to no host at all; a typo such as
            // `db[10:01]` would then drop hosts from the run without a word.
            if b > e {
                return Err(format!("host range `[{nrange}]` must have begin <= end"));
            }
            let count = (i128::from(e) - i128::from(b)) / step as i128 + 1;
            if count > (MAX_RANGE_HOSTS - out.len().min(MAX_RANGE_HOSTS)) as i128 {
                return Err(format!(
                    "host range `[{nrange}]` expands to more than {MAX_RANGE_HOSTS} hosts"
                ));
            }
            (b..=e)
                .step_by(step)
                .map(|n| {
                    if width > 0 && n >= 0 {
                        format!("{n:0width$}")
                    } else {
                        n.to_string()
                    }
                })
                .collect()
        }
    };
    for item in items {
        expand_into(&format!("{head}{item}{tail}"), out)?;
        if out.len() > MAX_RANGE_HOSTS {
            return Err(too_many(line));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ranges_keep_zero_padding_and_step() {
        assert_eq!(expand("db[01:03]").unwrap(), ["db01", "db02", "db03"]);
        assert_eq!(expand("db[1:10:4]").unwrap(), ["db1", "db5", "db9"]);
        assert_eq!(expand("db[:2]").unwrap(), ["db0", "db1", "db2"]);
        assert_eq!(
            expand("db[08:10]-x").unwrap(),
            ["db08-x", "db09-x", "db10-x"]
        );
    }

    #[test]
    fn alphabetic_and_nested_ranges() {
        assert_eq!(expand("web-[a:c]").unwrap(), ["web-a", "web-b", "web-c"]);
        assert_eq!(expand("[y:B]").unwrap(), ["y", "z", "A", "B"]);
        assert_eq!(
            expand("r[1:2]n[a:b]").unwrap(),
            ["r1na", "r1nb", "r2na", "r2nb"]
        );
    }

    /// Found by the inventory fuzz target: `db[0:999999999]` made a billion host names and
    /// took every byte of memory. A host key expands to at most MAX_RANGE_HOSTS names.
    #[test]
    fn huge_ranges_are_refused_before_expansion() {
        for key in [
            "db[0:999999999]",
            "db[1:9223372036854775807]",
            "a[0:99]b[0:99]c[0:99]",
        ] {
            let e = expand(key).unwrap_err();
            assert!(e.contains("more than"), "{key}: {e}");
        }
        assert_eq!(expand("db[1:10000]").unwrap().len(), 10_000);
        assert_eq!(
            expand("db[-9223372036854775808:-9223372036854775807]")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn bad_ranges_are_errors() {
        assert!(expand("db[1]").is_err());
        assert!(expand("db[1:]").is_err());
        assert!(expand("db[01:100]").is_err());
        assert!(expand("db[1:3").is_err());
        assert!(expand("db[c:a]").is_err());
        assert!(expand("db[1:3:0]").is_err());
        // Ansible expands these to no host silently; here they are mistakes.
        assert!(expand("db[10:01]").is_err());
        assert!(expand("db[3:1]").is_err());
    }

    #[test]
    fn huge_ranges_are_refused_before_they_are_built() {
        let e = expand("db[0:99999999]").unwrap_err();
        assert!(e.contains("more than 65536 hosts"), "{e}");
        assert!(expand("r[0:999]n[0:999]").is_err());
        assert_eq!(expand("db[1:65536]").unwrap().len(), 65_536);
    }

    #[test]
    fn ports_are_split_off() {
        assert_eq!(split_port("db1:2222"), ("db1", Some(2222)));
        assert_eq!(split_port("db[1:3]"), ("db[1:3]", None));
        assert_eq!(split_port("db[1:3]:22"), ("db[1:3]", Some(22)));
        assert_eq!(split_port("::1"), ("::1", None));
        assert_eq!(split_port("[::1]:22"), ("::1", Some(22)));
        assert_eq!(split_port("db1"), ("db1", None));
    }
}
