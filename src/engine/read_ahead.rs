//! Reading ahead (issue 15): when a host first gets a connection in a play's batch, the paths
//! that this and the play's later module tasks will stat on it are read in one round trip per
//! become user ([`crate::connection::prefetch`] answers the tasks' stats from them, and drops
//! what a change or a command may have made stale).
//!
//! Each later task is looked at with the host's variables as they are now: its `when`, its loop
//! list and its arguments rendered (a task that reads a variable not yet registered, or whose
//! `when` is false now, is left out). What the engine reads ahead is only ever a guess made
//! early: a task's own stat of a path that was not read ahead, or was read differently, goes to
//! the host as before.
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tera::Context;

use super::host_task::become_on;
use super::loops::item_vars;
use super::tags::selected;
use super::{PlayCtx, Runner};
use crate::connection::{is_local, Connection, Want};
use crate::playbook::{Action, Task};

/// The module tasks of a play in the order the linear strategy meets them (blocks and their
/// `always`, includes; not `rescue`, which runs only on failure, nor handlers).
pub(super) fn module_tasks<'t>(tasks: &'t [Task], out: &mut Vec<&'t Task>) {
    for t in tasks {
        match &t.action {
            Action::Module { .. } => out.push(t),
            Action::Block { block, always, .. } => {
                module_tasks(block, out);
                module_tasks(always, out);
            }
            Action::Include { tasks } => module_tasks(tasks, out),
            _ => {}
        }
    }
}

/// The paths to read as one become user (`None`: the login user).
type UserReads = (Option<String>, Vec<(String, Want)>);

/// Reads grouped by become user, each (path, want) once.
#[derive(Default)]
struct Reads(Vec<UserReads>);

impl Reads {
    fn add(&mut self, user: Option<String>, path: String, want: Want) {
        let i = match self.0.iter().position(|(u, _)| *u == user) {
            Some(i) => i,
            None => {
                self.0.push((user, Vec::new()));
                self.0.len() - 1
            }
        };
        let list = &mut self.0[i].1;
        if !list.iter().any(|(p, w)| {
            *p == path
                && w.follow == want.follow
                && w.content == want.content
                && w.checksum == want.checksum
        }) {
            list.push((path, want));
        }
    }
}

impl Runner<'_> {
    /// Read ahead for `host`, once per connection and batch: what `task` and the play's module
    /// tasks after it will stat.
    pub(super) async fn read_ahead(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
        conn: &Arc<dyn Connection>,
    ) {
        if !conn.batches_reads() || read_ahead_off() {
            return;
        }
        {
            // Once per connection: a host whose connection was closed to make room under
            // --max-connections reads ahead again on its new one.
            let id = Arc::as_ptr(conn).cast::<()>() as usize;
            let mut done = pc.read_ahead.lock().unwrap_or_else(|e| e.into_inner());
            if done.insert(host.to_string(), id) == Some(id) {
                return;
            }
        }
        let mut all = Vec::new();
        for section in [&pc.play.pre_tasks, &pc.play.tasks, &pc.play.post_tasks] {
            module_tasks(section, &mut all);
        }
        let Some(start) = all.iter().position(|t| std::ptr::eq(*t, task)) else {
            return;
        };
        let mut reads = Reads::default();
        for t in &all[start..] {
            self.reads_of(pc, t, host, active, &mut reads);
        }
        for (user, list) in reads.0 {
            if list.is_empty() {
                continue;
            }
            // A failure here is no failure: each task reads for itself and reports its errors.
            if let Err(e) = conn.prefetch(&list, user.as_deref()).await {
                if self.opts.verbosity >= 1 {
                    eprintln!("castellan: {host}: reading ahead {} paths: {e}", list.len());
                }
            }
        }
    }

    /// What one later task will read on `host`, as far as can be told now.
    fn reads_of(
        &self,
        pc: &PlayCtx<'_>,
        t: &Task,
        host: &str,
        active: &[String],
        reads: &mut Reads,
    ) {
        let Action::Module { module, args } = &t.action else {
            return;
        };
        if t.delegate_to.is_some()
            || module.runs_on_control_node()
            || !selected(&t.tags, &self.opts.tags, &self.opts.skip_tags)
        {
            return;
        }
        let Ok(vars) = self.task_vars(pc, t, host, active) else {
            return;
        };
        if is_local(host, &vars) {
            return;
        }
        let on = become_on(pc, t, &vars);
        let mut contexts = Vec::new();
        match &t.loop_ {
            None => contexts.extend(Context::from_value(Value::Object(vars.clone())).ok()),
            Some(items) => {
                let Ok(ctx) = Context::from_value(Value::Object(vars.clone())) else {
                    return;
                };
                let Ok(Value::Array(list)) = self.templar.render_value(items, &ctx) else {
                    return;
                };
                for i in 0..list.len() {
                    contexts.extend(
                        Context::from_value(Value::Object(item_vars(t, &vars, &list, i))).ok(),
                    );
                }
            }
        }
        for ctx in contexts {
            if self.eval_all(&t.when, &ctx) != Ok(true) {
                continue;
            }
            let Ok(a) = self.render_args_of(t, *module, args, &ctx) else {
                continue;
            };
            let user = self.become_user_of(pc, t, on, &ctx);
            for (path, want) in module.reads(&a) {
                reads.add(user.clone(), path, want);
            }
        }
    }
}

/// `CASTELLAN_READ_AHEAD=off`: no reading ahead (each task reads for itself: the baseline of
/// the benchmark, and a way out should a guess ever cost more than it saves).
pub const READ_AHEAD_ENV: &str = "CASTELLAN_READ_AHEAD";

fn read_ahead_off() -> bool {
    std::env::var(READ_AHEAD_ENV)
        .ok()
        .and_then(|v| crate::boolean::parse(&v))
        == Some(false)
}

/// The hosts already read ahead for in a batch, with the connection it was read on.
pub(super) type ReadAheadDone = std::sync::Mutex<HashMap<String, usize>>;
