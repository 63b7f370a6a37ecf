//! `--tags` / `--skip-tags` selection, with Ansible's special tags `always`, `never`,
//! `tagged`, `untagged` and `all`.

/// Should a task with these tags run?
pub fn selected(task_tags: &[String], only: &[String], skip: &[String]) -> bool {
    let has = |t: &str| task_tags.iter().any(|x| x == t);
    let skip_hit = skip.iter().any(|s| match s.as_str() {
        "all" => true,
        "tagged" => !task_tags.is_empty(),
        "untagged" => task_tags.is_empty(),
        s => has(s),
    });
    if skip_hit {
        return false;
    }
    if has("always") {
        return true;
    }
    if only.is_empty() || only.iter().any(|t| t == "all") {
        return !has("never");
    }
    only.iter().any(|t| match t.as_str() {
        "tagged" => !task_tags.is_empty() && !has("never"),
        "untagged" => task_tags.is_empty(),
        t => has(t),
    })
}

#[cfg(test)]
mod tests {
    use super::selected;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn ansible_tag_rules() {
        assert!(selected(&v(&[]), &v(&[]), &v(&[])));
        assert!(!selected(&v(&["never"]), &v(&[]), &v(&[])));
        assert!(selected(&v(&["never", "debug"]), &v(&["debug"]), &v(&[])));
        assert!(selected(&v(&["always"]), &v(&["x"]), &v(&[])));
        assert!(!selected(&v(&["always"]), &v(&[]), &v(&["always"])));
        assert!(!selected(&v(&["a"]), &v(&["b"]), &v(&[])));
        assert!(selected(&v(&["a"]), &v(&["tagged"]), &v(&[])));
        assert!(selected(&v(&[]), &v(&["untagged"]), &v(&[])));
        assert!(!selected(&v(&["a", "b"]), &v(&["a"]), &v(&["b"])));
    }
}
