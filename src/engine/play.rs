//! Plays: host selection, serial batches, the linear strategy over task lists, blocks with
//! rescue/always, includes, handlers, and the failure budget.
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::tags::selected;
use super::{PlayCtx, Runner};
use crate::playbook::{Action, Play, Serial, Task};
use crate::report::{HostResult, Status};

/// Split the play's hosts into `serial` batches (the last size repeats).
pub fn batches(hosts: &[String], serial: &[Serial]) -> Vec<Vec<String>> {
    if serial.is_empty() || hosts.is_empty() {
        return vec![hosts.to_vec()];
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut step = 0;
    while i < hosts.len() {
        let spec = serial[step.min(serial.len() - 1)];
        let size = match spec {
            Serial::Count(n) => n,
            Serial::Percent(p) => ((hosts.len() as f64) * p / 100.0).floor() as usize,
        }
        .max(1);
        let end = (i + size).min(hosts.len());
        out.push(hosts[i..end].to_vec());
        i = end;
        step += 1;
    }
    out
}

type Boxed<'f> = Pin<Box<dyn Future<Output = ()> + 'f>>;

/// The names a handler answers to: its `listen` topics, its name and `ROLE : name`.
pub fn handler_names(h: &Task) -> Vec<String> {
    let mut names: Vec<String> = h.listen.clone();
    if let Some(n) = &h.name {
        names.push(n.clone());
        if let Some(r) = &h.scope.role {
            names.push(format!("{} : {n}", r.name));
        }
    }
    names
}

impl Runner<'_> {
    /// Run one play; returns false when the run must stop (a fatal error).
    pub(super) async fn run_play(&mut self, play: &Play, playbook_dir: &Path) -> bool {
        self.reporter.play_start(&play.name);
        let hosts = match self
            .inv
            .select_limited(&play.hosts, self.opts.limit.as_deref())
        {
            Ok(h) => h,
            Err(e) => {
                self.reporter.warn(&format!("{}: {e}", play.loc));
                return true;
            }
        };
        for h in &hosts {
            self.ensure_host(h);
        }
        let hosts: Vec<String> = hosts
            .into_iter()
            .filter(|h| {
                self.hosts
                    .get(h)
                    .is_some_and(|s| !s.failed && !s.unreachable)
            })
            .collect();
        if hosts.is_empty() {
            self.reporter.warn(&format!(
                "no hosts matched `{}` (or all of them failed earlier): skipping play",
                play.hosts
            ));
            return true;
        }
        let book = super::pending::Book::new(playbook_dir, &play.name, !self.opts.check);
        for h in &hosts {
            let owed = book.load(h);
            if !owed.handlers.is_empty() {
                self.reporter.warn(&format!(
                    "{h}: handlers notified by an earlier run that did not finish will run: {}",
                    owed.handlers.join(", ")
                ));
            }
            if let Some(s) = self.hosts.get_mut(h) {
                s.ended = false;
                s.owed = owed.handlers;
                // The earlier run's backups come first: a rollback restores the state before it.
                let mut backups = owed.backups;
                for b in std::mem::take(&mut s.backups) {
                    if !backups.contains(&b) {
                        backups.push(b);
                    }
                }
                s.backups = backups;
            }
            self.stats.host(h);
        }
        for batch in batches(&hosts, &play.serial) {
            if self.interrupted() {
                return false;
            }
            let mut pc = PlayCtx {
                play,
                playbook_dir,
                all_hosts: hosts.clone(),
                batch: batch.clone(),
                aborted: false,
                book: &book,
                read_ahead: Default::default(),
            };
            for (i, section) in [&play.pre_tasks, &play.tasks, &play.post_tasks]
                .into_iter()
                .enumerate()
            {
                self.run_list(&mut pc, section, &batch).await;
                if pc.aborted || self.interrupted() {
                    break;
                }
                if i == 1 {
                    // The handlers an earlier run still owed run with those of the tasks.
                    for h in &batch {
                        if let Some(s) = self.hosts.get_mut(h).filter(|s| s.active()) {
                            for n in std::mem::take(&mut s.owed) {
                                s.notify(&n);
                            }
                        }
                    }
                }
                self.flush_handlers(&mut pc, &batch).await;
                if pc.aborted || self.interrupted() {
                    break;
                }
            }
            for h in &batch {
                self.remember(&pc, h);
            }
            if pc.aborted || self.interrupted() {
                return false;
            }
        }
        true
    }

    fn active(&self, hosts: &[String]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| self.hosts.get(*h).is_some_and(|s| s.active()))
            .cloned()
            .collect()
    }

    /// The failure budget: `any_errors_fatal`, `max_fail_percentage`, or no host left.
    fn check_budget(&mut self, pc: &mut PlayCtx<'_>) {
        let n = pc.batch.len().max(1);
        let failed = pc
            .batch
            .iter()
            .filter(|h| {
                self.hosts
                    .get(*h)
                    .is_some_and(|s| s.failed || s.unreachable)
            })
            .count();
        if failed == 0 {
            return;
        }
        if pc.play.any_errors_fatal {
            self.reporter
                .warn("any_errors_fatal: a host failed, stopping the play");
            pc.aborted = true;
        } else if let Some(max) = pc.play.max_fail_percentage {
            let pct = failed as f64 * 100.0 / n as f64;
            if pct > max {
                self.reporter.warn(&format!(
                    "{failed} of {n} hosts in this batch failed ({pct:.0}% > max_fail_percentage {max}): stopping the play"
                ));
                pc.aborted = true;
            }
        } else if failed == n && !pc.play.serial.is_empty() {
            // Every host of a serial batch failed: Ansible stops the play here.
            pc.aborted = true;
        }
    }

    fn run_list<'s>(
        &'s mut self,
        pc: &'s mut PlayCtx<'_>,
        tasks: &'s [Task],
        hosts: &'s [String],
    ) -> Boxed<'s> {
        Box::pin(async move {
            for task in tasks {
                if pc.aborted || self.interrupted() {
                    return;
                }
                let active = self.active(hosts);
                if active.is_empty() {
                    return;
                }
                self.run_one(pc, task, &active).await;
            }
        })
    }

    fn run_one<'s>(
        &'s mut self,
        pc: &'s mut PlayCtx<'_>,
        task: &'s Task,
        active: &'s [String],
    ) -> Boxed<'s> {
        Box::pin(async move {
            match &task.action {
                Action::Module { .. } => {
                    if !selected(&task.tags, &self.opts.tags, &self.opts.skip_tags) {
                        return;
                    }
                    self.run_module_task(pc, task, active, false).await;
                    self.check_budget(pc);
                }
                Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    let entering = active.to_vec();
                    self.run_list(pc, block, &entering).await;
                    let failed = self.failed_in(&entering);
                    if !rescue.is_empty() && !failed.is_empty() && !pc.aborted {
                        for h in &failed {
                            if let Some(s) = self.hosts.get_mut(h) {
                                s.failed = false;
                            }
                            let st = self.stats.host(h);
                            st.failed = st.failed.saturating_sub(1);
                            st.rescued += 1;
                        }
                        pc.aborted = false;
                        self.run_list(pc, rescue, &failed).await;
                    }
                    if !always.is_empty() {
                        let still_failed = self.failed_in(&entering);
                        self.set_failed(&still_failed, false);
                        let was_aborted = pc.aborted;
                        pc.aborted = false;
                        self.run_list(pc, always, &entering).await;
                        pc.aborted |= was_aborted;
                        self.set_failed(&still_failed, true);
                    }
                    self.check_budget(pc);
                }
                Action::Include { tasks } => self.run_include(pc, task, tasks, active).await,
                Action::FlushHandlers => {
                    let batch = pc.batch.clone();
                    self.flush_handlers(pc, &batch).await;
                }
                Action::Noop => {}
                Action::EndHost | Action::EndPlay => {
                    let targets = self.hosts_where(pc, task, active);
                    for h in &targets {
                        if let Some(s) = self.hosts.get_mut(h) {
                            s.ended = true;
                        }
                    }
                    if matches!(task.action, Action::EndPlay) && !targets.is_empty() {
                        for h in active {
                            if let Some(s) = self.hosts.get_mut(h) {
                                s.ended = true;
                            }
                        }
                    }
                }
            }
        })
    }

    /// The hosts among `hosts` that failed (and are still reachable).
    fn failed_in(&self, hosts: &[String]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| {
                self.hosts
                    .get(*h)
                    .is_some_and(|s| s.failed && !s.unreachable)
            })
            .cloned()
            .collect()
    }

    fn set_failed(&mut self, hosts: &[String], failed: bool) {
        for h in hosts {
            if let Some(s) = self.hosts.get_mut(h) {
                s.failed = failed;
            }
        }
    }

    /// Hosts for which a task's `when` holds (for metas and includes without loops).
    fn hosts_where(&mut self, pc: &PlayCtx<'_>, task: &Task, active: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for h in active {
            let holds = if task.when.is_empty() {
                Ok(true)
            } else {
                self.task_ctx(pc, task, h, active)
                    .and_then(|ctx| self.eval_all(&task.when, &ctx))
            };
            match holds {
                Ok(true) => out.push(h.clone()),
                Ok(false) => {}
                Err(e) => self.fail_host(h, task, e),
            }
        }
        out
    }

    fn fail_host(&mut self, host: &str, task: &Task, msg: String) {
        let mut r = HostResult::new(host, Status::Failed);
        r.msg = Some(msg);
        self.reporter
            .task_start(&task.display_name(), task.module_name(), false, 1);
        self.reporter.host_result(&r);
        self.stats.record(host, Status::Failed, false);
        if let Some(s) = self.hosts.get_mut(host) {
            s.failed = true;
        }
    }

    async fn run_include(
        &mut self,
        pc: &mut PlayCtx<'_>,
        task: &Task,
        tasks: &[Task],
        active: &[String],
    ) {
        let Some(loop_value) = &task.loop_ else {
            // The children carry the include's `when`; nothing to decide here.
            self.run_list(pc, tasks, active).await;
            return;
        };
        // A looped include runs its tasks once per item, each host with its own items.
        let mut per_host: Vec<(String, Vec<Value>)> = Vec::new();
        for h in active {
            let items = self
                .task_ctx(pc, task, h, active)
                .and_then(|ctx| self.templar.render_value(loop_value, &ctx));
            match items {
                Ok(Value::Array(a)) => per_host.push((h.clone(), a)),
                Ok(other) => self.fail_host(h, task, format!("Invalid data passed to 'loop', it requires a list, got this instead: {other}")),
                Err(e) => self.fail_host(h, task, e),
            }
        }
        let max = per_host.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
        for i in 0..max {
            let mut hosts_i = Vec::new();
            for (h, items) in &per_host {
                if let Some(item) = items.get(i) {
                    let mut layer = Map::new();
                    layer.insert(task.loop_var.clone(), item.clone());
                    if let Some(iv) = &task.index_var {
                        layer.insert(iv.clone(), json!(i));
                    }
                    if let Some(s) = self.hosts.get_mut(h) {
                        s.include_items.push(Arc::new(layer));
                    }
                    hosts_i.push(h.clone());
                }
            }
            self.run_list(pc, tasks, &hosts_i).await;
            for h in &hosts_i {
                if let Some(s) = self.hosts.get_mut(h) {
                    s.include_items.pop();
                }
            }
        }
    }

    /// Run notified handlers, in the order they are defined, on the hosts that notified them.
    pub(super) async fn flush_handlers(&mut self, pc: &mut PlayCtx<'_>, hosts: &[String]) {
        let handlers = &pc.play.handlers;
        for _pass in 0..8 {
            let mut ran = false;
            for h in handlers.iter() {
                if self.interrupted() {
                    return;
                }
                let names = handler_names(h);
                let targets: Vec<String> = self
                    .active(hosts)
                    .into_iter()
                    .filter(|host| {
                        self.hosts
                            .get(host)
                            .is_some_and(|s| s.notified.iter().any(|n| names.contains(n)))
                    })
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                for t in &targets {
                    if let Some(s) = self.hosts.get_mut(t) {
                        s.notified.retain(|n| !names.contains(n));
                    }
                }
                ran = true;
                self.run_handler(pc, h, &targets).await;
                if pc.aborted {
                    return;
                }
            }
            if !ran {
                break;
            }
        }
    }

    async fn run_handler(&mut self, pc: &mut PlayCtx<'_>, h: &Task, targets: &[String]) {
        match &h.action {
            Action::Module { .. } => {
                self.run_module_task(pc, h, targets, true).await;
                self.check_budget(pc);
            }
            _ => self.run_one(pc, h, targets).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn serial_batches() {
        let sizes = |s: &[Serial], n| {
            batches(&hosts(n), s)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(&[], 5), vec![5]);
        assert_eq!(sizes(&[Serial::Count(2)], 5), vec![2, 2, 1]);
        assert_eq!(
            sizes(&[Serial::Count(1), Serial::Count(3)], 7),
            vec![1, 3, 3]
        );
        assert_eq!(sizes(&[Serial::Percent(30.0)], 10), vec![3, 3, 3, 1]);
        assert_eq!(sizes(&[Serial::Percent(1.0)], 10), vec![1; 10]);
    }
}
