//! The keywords a play and a task accept (everything else on a task is its module).

pub const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "serial",
    "max_fail_percentage",
    "any_errors_fatal",
    "become",
    "become_user",
    "become_method",
    "gather_facts",
    "check_mode",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "tags",
    "strategy",
    "collections",
    "ignore_errors",
    "no_log",
];

pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "when",
    "loop",
    "with_items",
    "with_list",
    "loop_control",
    "register",
    "notify",
    "listen",
    "tags",
    "become",
    "become_user",
    "become_method",
    "run_once",
    "delegate_to",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "no_log",
    "check_mode",
    "diff",
    "until",
    "retries",
    "delay",
    "vars",
    "args",
    "any_errors_fatal",
    "collections",
];

/// Keys that make a task something other than a module call.
pub const ACTION_KEYWORDS: &[&str] = &[
    "block",
    "rescue",
    "always",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "meta",
];

/// Built-in variables every task may read.
pub const MAGIC_VARS: &[&str] = &[
    "inventory_hostname",
    "inventory_hostname_short",
    "group_names",
    "groups",
    "hostvars",
    "playbook_dir",
    "role_path",
    "role_name",
    "inventory_dir",
    "inventory_file",
    "ansible_check_mode",
    "ansible_diff_mode",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_batch",
    "ansible_play_name",
    "ansible_loop_var",
    "ansible_index_var",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_limit",
    "ansible_verbosity",
    "ansible_version",
    "omit",
    "castellan_backups",
];

/// The value `{{ omit }}` renders to: an argument with this value is dropped.
pub const OMIT: &str = "__omit_place_holder__castellan";

/// Strip a collection prefix from a keyword-like action name (`ansible.builtin.include_tasks`).
pub fn short_action(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}
