//! Variables in the engine, through the library on a local host: which variables a task reads
//! is a property of the loaded task (not of the address it happens to live at), and the layers
//! of `vars.rs` follow Ansible's precedence.
use std::fs;
use std::path::Path;
use std::sync::Mutex;

use castellan::cli::playbook::{load_and_check, Loaded};
use castellan::cli::{Output, PlaybookArgs};
use castellan::engine::{RunOptions, Runner};
use castellan::playbook::Task;
use castellan::report::{HostResult, Reporter, Stats, Status};

/// Keeps every host result with the name of its task.
#[derive(Default)]
struct Collect {
    current: Mutex<String>,
    results: Mutex<Vec<(String, HostResult)>>,
}

impl Reporter for Collect {
    fn play_start(&self, _name: &str) {}
    fn task_start(&self, name: &str, _module: &str, _handler: bool, _hosts: usize) {
        *self.current.lock().unwrap() = name.to_string();
    }
    fn host_result(&self, r: &HostResult) {
        let name = self.current.lock().unwrap().clone();
        self.results.lock().unwrap().push((name, r.clone()));
    }
    fn warn(&self, _msg: &str) {}
    fn finish(&self, _stats: &Stats, _check_mode: bool, _duration: std::time::Duration) {}
}

const INVENTORY: &str = "all:\n  hosts:\n    h1:\n      ansible_connection: local\n";

/// Write `files` under `dir` and load `playbook` with the inventory and extra vars.
fn load(dir: &Path, files: &[(&str, &str)], playbook: &str, extra: &[&str]) -> Loaded {
    load_with(dir, INVENTORY, files, playbook, extra)
}

/// [`load`] with an inventory of its own.
fn load_with(
    dir: &Path,
    inventory: &str,
    files: &[(&str, &str)],
    playbook: &str,
    extra: &[&str],
) -> Loaded {
    for (name, text) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    let inv = dir.join("inventory.yml");
    fs::write(&inv, inventory).unwrap();
    let args = PlaybookArgs {
        playbooks: vec![dir.join(playbook)],
        inventory: vec![inv],
        limit: None,
        tags: Vec::new(),
        skip_tags: Vec::new(),
        check: false,
        diff: false,
        extra_vars: extra.iter().map(|s| s.to_string()).collect(),
        forks: 5,
        max_connections: 256,
        output: Output::Json,
        syntax_check: false,
        accept_new_host_keys: false,
        verbose: 0,
        vault: Default::default(),
    };
    let (e, locs) = castellan::cli::extra_vars::parse_located(&args.extra_vars).unwrap();
    load_and_check(&args, &e, &locs).unwrap_or_else(|e| panic!("{playbook} does not load: {e}"))
}

/// Run the loaded playbooks once with a fresh runner; the host results in order.
fn run(loaded: &Loaded, extra: &[&str]) -> Vec<(String, HostResult)> {
    let (extra_vars, _) = castellan::cli::extra_vars::parse_located(
        &extra.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .unwrap();
    let opts = RunOptions {
        extra_vars,
        ..RunOptions::default()
    };
    let reporter = Collect::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut runner = Runner::new(&loaded.inventory, &opts, &loaded.templar, &reporter);
        runner.run(&loaded.playbooks).await;
    });
    reporter.results.into_inner().unwrap()
}

/// The one task of the first play of a loaded playbook, taken out of it.
fn take_task(loaded: &mut Loaded) -> Task {
    loaded.playbooks[0].plays[0].tasks.remove(0)
}

fn msg(r: &HostResult) -> String {
    match &r.detail["msg"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A task that reads `groups` put where a task that did not read it was run before (the same
/// address): it gets `groups`. The old engine cached "what a task reads" by the task's address,
/// so the new task read the old one's text and failed on an undefined `groups`.
#[test]
fn a_task_at_a_reused_address_reads_its_own_variables() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let plain = "- hosts: all\n  tasks:\n    - name: plain\n      debug: {msg: plain}\n";
    let groups = "- hosts: all\n  tasks:\n    - name: reads groups\n      debug: {msg: \"{{ groups['all'] | length }}\"}\n";
    let mut a = load(d, &[("a.yml", plain)], "a.yml", &[]);
    let first = run(&a, &[]);
    assert_eq!(first[0].1.status, Status::Ok, "{first:?}");
    assert_eq!(msg(&first[0].1), "plain");

    let mut b = load(d, &[("b.yml", groups)], "b.yml", &[]);
    // The task of b takes the very place of a's task: same address, other text.
    let slot: *const Task = &a.playbooks[0].plays[0].tasks[0];
    a.playbooks[0].plays[0].tasks[0] = take_task(&mut b);
    assert_eq!(slot, &a.playbooks[0].plays[0].tasks[0] as *const Task);
    let second = run(&a, &[]);
    assert_eq!(second[0].0, "reads groups");
    assert_eq!(
        second[0].1.status,
        Status::Ok,
        "the task at a reused address did not get `groups`: {:?}",
        second[0].1.msg
    );
    assert_eq!(msg(&second[0].1), "1");
}

/// The other way round: a variable that cannot be rendered fails only the tasks that read it,
/// also when a task that read it lived at the same address before.
#[test]
fn a_broken_variable_fails_only_the_tasks_that_read_it_whatever_their_address() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let vars = "  vars:\n    d: {}\n    broken: \"{{ d.missing }}\"\n";
    let reads = format!(
        "- hosts: all\n{vars}  tasks:\n    - name: reads broken\n      debug: {{msg: \"{{{{ broken }}}}\"}}\n      ignore_errors: true\n"
    );
    let other =
        format!("- hosts: all\n{vars}  tasks:\n    - name: does not\n      debug: {{msg: fine}}\n");
    let mut a = load(d, &[("a.yml", &reads)], "a.yml", &[]);
    let first = run(&a, &[]);
    assert_eq!(first[0].1.status, Status::Failed, "{first:?}");
    assert!(
        first[0]
            .1
            .msg
            .as_deref()
            .unwrap_or_default()
            .contains("`broken`"),
        "{:?}",
        first[0].1.msg
    );

    let mut b = load(d, &[("b.yml", &other)], "b.yml", &[]);
    a.playbooks[0].plays[0].tasks[0] = take_task(&mut b);
    let second = run(&a, &[]);
    assert_eq!(
        second[0].1.status,
        Status::Ok,
        "a task that does not read `broken` failed: {:?}",
        second[0].1.msg
    );
    assert_eq!(msg(&second[0].1), "fine");
}

/// What a template file reads counts as read by its task: `groups`, even behind a default.
#[test]
fn a_template_file_that_reads_groups_gets_them() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = d.join("out.txt");
    let play = format!(
        "- hosts: all\n  tasks:\n    - name: render\n      template: {{src: t.j2, dest: {}}}\n",
        out.display()
    );
    let loaded = load(
        d,
        &[
            (
                "templates/t.j2",
                "{{ groups['all'] | default(value=[]) | length }} hosts\n",
            ),
            ("p.yml", &play),
        ],
        "p.yml",
        &[],
    );
    let results = run(&loaded, &[]);
    assert_eq!(results[0].1.status, Status::Changed, "{results:?}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "1 hosts\n");
}

/// The layers, as Ansible orders them (lowest first): role defaults < inventory < play vars <
/// vars_files < role vars < block vars < task vars < set_fact/registered < role params <
/// include params (the `vars:` of include_tasks/include_role and the items of a looped
/// include) < extra vars.
#[test]
fn include_params_role_params_set_fact_and_extra_vars_in_ansible_order() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let play = r#"
- hosts: all
  vars:
    pv: play
  pre_tasks:
    - set_fact: {sf_vs_ip: set_fact, sf_vs_rp: set_fact, ip_vs_ex: set_fact, lv: set_fact, sf_vs_block: set_fact, sf_only: only}
    - name: a variable only set_fact sets is known before the run
      debug: {msg: "{{ sf_only }}"}
  roles:
    - role: r
      sf_vs_rp: role_param
      rp_vs_ip: role_param
  tasks:
    - include_tasks: inc.yml
      vars:
        sf_vs_ip: include_param
        task_vs_ip: include_param
        ip_vs_ex: include_param
    - include_tasks: looped.yml
      loop: [item_value]
      loop_control: {loop_var: lv}
    - include_role: {name: plain}
      vars:
        sf_vs_ip: include_role_param
    - block:
        - name: block vars lose to set_fact
          debug: {msg: "{{ sf_vs_block }}"}
      vars:
        sf_vs_block: block
"#;
    let loaded = load(
        d,
        &[
            ("p.yml", play),
            (
                "inc.yml",
                "- name: include params\n  debug: {msg: \"{{ sf_vs_ip }} {{ task_vs_ip }} {{ ip_vs_ex }}\"}\n  vars:\n    task_vs_ip: task\n",
            ),
            (
                "looped.yml",
                "- name: a looped include's item\n  debug: {msg: \"{{ lv }}\"}\n",
            ),
            (
                "roles/r/tasks/main.yml",
                "- name: role params\n  debug: {msg: \"{{ sf_vs_rp }}\"}\n- include_tasks: more.yml\n  vars:\n    rp_vs_ip: include_param\n",
            ),
            (
                "roles/r/tasks/more.yml",
                "- name: include params beat role params\n  debug: {msg: \"{{ rp_vs_ip }}\"}\n",
            ),
            ("roles/plain/vars/main.yml", "sf_vs_ip: role_var\n"),
            (
                "roles/plain/tasks/main.yml",
                "- name: include_role params\n  debug: {msg: \"{{ sf_vs_ip }}\"}\n",
            ),
        ],
        "p.yml",
        &["ip_vs_ex=extra"],
    );
    let results = run(&loaded, &["ip_vs_ex=extra"]);
    let got = |name: &str| -> String {
        let (_, r) = results
            .iter()
            .find(|(n, _)| n.ends_with(name))
            .unwrap_or_else(|| panic!("no result for `{name}` in {results:#?}"));
        assert_eq!(r.status, Status::Ok, "{name}: {:?}", r.msg);
        msg(r)
    };
    assert_eq!(
        got("role params"),
        "role_param",
        "role params beat set_fact"
    );
    assert_eq!(
        got("include params beat role params"),
        "include_param",
        "include params beat role params"
    );
    assert_eq!(
        got("include params"),
        "include_param include_param extra",
        "include params beat set_fact and task vars; extra vars beat them"
    );
    assert_eq!(
        got("a looped include's item"),
        "item_value",
        "a looped include's item beats set_fact"
    );
    assert_eq!(
        got("include_role params"),
        "include_role_param",
        "include_role's vars beat set_fact and role vars"
    );
    assert_eq!(got("block vars lose to set_fact"), "set_fact");
    assert_eq!(got("only set_fact sets is known before the run"), "only");
}

/// `hostvars[H].x` is rendered with H's variables, not the reader's: a group variable
/// `bin: "/usr/lib/postgresql/{{ ver }}/bin"` of db host h2 (ver 17) reads as h2's directory
/// from h1 (ver 13: the old engine rendered 13 there) and from h3 (no ver: it failed there with
/// "`hostvars` could not be rendered"). A variable that h2 itself cannot render is undefined.
#[test]
fn hostvars_of_a_host_are_rendered_with_that_hosts_variables() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let inventory = "all:\n  vars:\n    ansible_connection: local\n  children:\n    db:\n      vars:\n        \
                     bin: \"/usr/lib/postgresql/{{ ver }}/bin\"\n        broken: \"{{ nowhere }}\"\n      \
                     hosts:\n        h2: {ver: 17}\n    other:\n      hosts:\n        h1: {ver: 13}\n        h3: {}\n";
    let play = "- hosts: h1:h3\n  gather_facts: false\n  tasks:\n    - name: h2's bin\n      \
                debug: {msg: \"{{ hostvars['h2'].bin }}\"}\n    - name: h2's broken\n      \
                debug: {msg: \"{{ hostvars['h2'].broken | default(value='undefined') }}\"}\n";
    let loaded = load_with(d, inventory, &[("p.yml", play)], "p.yml", &[]);
    let results = run(&loaded, &[]);
    let of = |task: &str, host: &str| {
        results
            .iter()
            .find(|(t, r)| t == task && r.host == host)
            .unwrap_or_else(|| panic!("no result of {task} on {host}: {results:?}"))
            .1
            .clone()
    };
    for host in ["h1", "h3"] {
        let r = of("h2's bin", host);
        assert_eq!(r.status, Status::Ok, "{host}: {r:?}");
        assert_eq!(msg(&r), "/usr/lib/postgresql/17/bin", "{host}");
        let r = of("h2's broken", host);
        assert_eq!(r.status, Status::Ok, "{host}: {r:?}");
        assert_eq!(msg(&r), "undefined", "{host}");
    }
}
