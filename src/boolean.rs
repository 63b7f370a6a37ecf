//! The one yes/no parser: Ansible's boolean words (`ansible.module_utils.parsing.convert_bool`,
//! `BOOLEANS_TRUE` / `BOOLEANS_FALSE`), case-insensitive. Used for module arguments, the `bool`
//! filter, playbook keywords and connection variables alike, so they never disagree.
//!
//! Not here: YAML 1.1's own boolean scalars (`crate::yaml`, a typing rule of the parser) and
//! PostgreSQL's (`crate::postgres::conf`, the server's rule for its settings).

/// Ansible's true words.
pub const TRUE: [&str; 6] = ["y", "yes", "on", "1", "true", "t"];
/// Ansible's false words.
pub const FALSE: [&str; 6] = ["n", "no", "off", "0", "false", "f"];

/// `Some(b)` for one of Ansible's boolean words in any case (`Yes`, `ON`, `t`, `0`...), else
/// `None`. No trimming: callers that accept surrounding blanks trim first.
pub fn parse(s: &str) -> Option<bool> {
    if TRUE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn ansible_words_in_any_case() {
        for s in [
            "y", "Y", "yes", "Yes", "YES", "on", "On", "1", "true", "True", "TRUE", "t", "T",
        ] {
            assert_eq!(parse(s), Some(true), "{s}");
        }
        for s in [
            "n", "N", "no", "No", "off", "OFF", "0", "false", "False", "f", "F",
        ] {
            assert_eq!(parse(s), Some(false), "{s}");
        }
        for s in [
            "", " yes", "yes ", "2", "-1", "ye", "tru", "enable", "none", "null", "1.0",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
    }
}
