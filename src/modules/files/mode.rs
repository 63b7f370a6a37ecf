//! File modes as Ansible takes them: octal (`0644`, `"644"`, `420` from YAML 1.1) or symbolic
//! (`u=rw,g=r,o=`, `u+x`, `a-w`, `X`), and `preserve` (copy).

/// A parsed `mode:` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSpec {
    Octal(u32),
    Symbolic(Vec<Clause>),
    Preserve,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

impl ModeSpec {
    pub fn parse(s: &str) -> Result<ModeSpec, String> {
        let s = s.trim();
        if s == "preserve" {
            return Ok(ModeSpec::Preserve);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return u32::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(ModeSpec::Octal)
                .ok_or_else(|| format!("`{s}` is not an octal file mode"));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            let op_at = part
                .find(['=', '+', '-'])
                .ok_or_else(|| format!("bad symbolic mode `{s}`: `{part}` has no =, + or -"))?;
            let (who_s, rest) = part.split_at(op_at);
            let mut who = 0;
            for c in who_s.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(format!("bad symbolic mode `{s}`: unknown class `{c}`")),
                };
            }
            if who == 0 {
                who = 0o7777;
            }
            let mut chars = rest.chars();
            let op = chars.next().unwrap_or('=');
            let perms: String = chars.collect();
            if let Some(bad) = perms.chars().find(|c| !"rwxXst".contains(*c)) {
                return Err(format!(
                    "bad symbolic mode `{s}`: unknown permission `{bad}`"
                ));
            }
            clauses.push(Clause { who, op, perms });
        }
        Ok(ModeSpec::Symbolic(clauses))
    }

    /// The mode to set, given the current mode (0 for a new path) and whether it is a directory.
    /// `None` for `preserve` (the caller keeps the source's mode).
    pub fn apply(&self, current: u32, is_dir: bool) -> Option<u32> {
        match self {
            ModeSpec::Octal(m) => Some(*m),
            ModeSpec::Preserve => None,
            ModeSpec::Symbolic(clauses) => {
                let mut mode = current & 0o7777;
                for c in clauses {
                    let mut bits = 0;
                    for p in c.perms.chars() {
                        bits |= match p {
                            'r' => 0o444,
                            'w' => 0o222,
                            'x' => 0o111,
                            'X' if is_dir || mode & 0o111 != 0 => 0o111,
                            's' => 0o6000,
                            't' => 0o1000,
                            _ => 0,
                        };
                    }
                    let bits = bits & c.who;
                    match c.op {
                        '+' => mode |= bits,
                        '-' => mode &= !bits,
                        _ => mode = (mode & !(c.who & 0o777 | (c.who & 0o7000))) | bits,
                    }
                }
                Some(mode)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_forms() {
        assert_eq!(
            ModeSpec::parse("0644").unwrap().apply(0, false),
            Some(0o644)
        );
        assert_eq!(
            ModeSpec::parse("600").unwrap().apply(0o777, false),
            Some(0o600)
        );
        assert!(ModeSpec::parse("0999").is_err());
    }

    #[test]
    fn symbolic_forms() {
        let m = |s: &str, cur: u32, dir: bool| ModeSpec::parse(s).unwrap().apply(cur, dir).unwrap();
        assert_eq!(m("u=rw,g=r,o=", 0o777, false), 0o640);
        assert_eq!(m("u+x", 0o644, false), 0o744);
        assert_eq!(m("a-w", 0o666, false), 0o444);
        assert_eq!(m("go-rwx", 0o755, false), 0o700);
        assert_eq!(m("a+X", 0o644, true), 0o755);
        assert_eq!(m("a+X", 0o644, false), 0o644);
        assert_eq!(m("u=rwx,g=rx,o=rx", 0, true), 0o755);
        assert!(ModeSpec::parse("u=rwq").is_err());
        assert!(ModeSpec::parse("z=r").is_err());
    }
}
