//! Running one module task on the hosts of a batch (concurrently, up to `forks`; `run_once` on
//! the first), then applying each host's outcome: stats, facts, the registered result, failure,
//! handlers owed. What happens on one host is in [`super::host_task`].
use futures::stream::{self, StreamExt};

use super::notify::notify_after;
use super::results::Outcome;
use super::{PlayCtx, Runner};
use crate::playbook::Task;
use crate::report::{HostResult, Status};

impl Runner<'_> {
    /// Run a module task on `hosts` and apply the outcomes.
    pub(super) async fn run_module_task(
        &mut self,
        pc: &PlayCtx<'_>,
        task: &Task,
        hosts: &[String],
        handler: bool,
    ) {
        if hosts.is_empty() {
            return;
        }
        self.reporter.task_start(
            &task.display_name(),
            task.module_name(),
            handler,
            hosts.len(),
        );
        let mut targets: Vec<String> = if task.run_once {
            hosts.iter().take(1).cloned().collect()
        } else {
            hosts.to_vec()
        };
        self.pool.holders_first(&mut targets).await;
        let forks = self.opts.forks.max(1);
        let this = &*self;
        let mut outcomes: Vec<Outcome> = stream::iter(targets.iter())
            .map(|h| async move {
                let out = this.run_on_host(pc, task, h, hosts).await;
                this.reporter.host_result(&out.result);
                out
            })
            .buffer_unordered(forks)
            .collect()
            .await;
        // A module's `warnings` (a CN without SAN, a certificate outliving its CA...) are shown
        // as warnings, as Ansible does, once per host that ran the task.
        for o in &outcomes {
            for w in result_warnings(&o.result.detail) {
                self.reporter.warn(&format!("{}: {w}", o.host));
            }
        }
        if task.run_once {
            if let Some(first) = outcomes.first() {
                let copies: Vec<Outcome> =
                    hosts.iter().skip(1).map(|h| copy_for(first, h)).collect();
                outcomes.extend(copies);
            }
        }
        let mut dropped_out = Vec::new();
        for o in outcomes {
            let host = o.host.clone();
            self.apply_outcome(task, o, handler);
            self.remember(pc, &host);
            if self
                .hosts
                .get(&host)
                .is_some_and(|s| s.failed || s.unreachable)
            {
                dropped_out.push(host);
            }
        }
        // A host out of the play gives its connection back (room under --max-connections).
        self.pool.release(&dropped_out).await;
    }

    fn apply_outcome(&mut self, task: &Task, o: Outcome, handler: bool) {
        let interrupted = self.interrupted();
        let status = o.result.status;
        self.stats.record(&o.host, status, o.result.ignored);
        let Some(hs) = self.hosts.get_mut(&o.host) else {
            return;
        };
        notify_after(hs, task, &o, handler, interrupted);
        match status {
            Status::Failed if !o.result.ignored => hs.failed = true,
            Status::Unreachable => hs.unreachable = true,
            _ => {}
        }
        hs.facts.extend(o.facts);
        hs.backups.extend(o.backups);
        if let (Some(name), Some(v)) = (&task.register, o.register) {
            hs.facts.insert(name.clone(), v);
        }
    }
}

/// The results of a `run_once` task apply to every host of the batch.
fn copy_for(first: &Outcome, host: &str) -> Outcome {
    Outcome {
        host: host.to_string(),
        result: HostResult {
            host: host.to_string(),
            ..first.result.clone()
        },
        register: first.register.clone(),
        facts: first.facts.clone(),
        changed: first.changed,
        applied: first.applied,
        // The backups are on the host that ran the task.
        backups: Vec::new(),
    }
}

/// The `warnings` of a result, and of each item's result in a loop.
fn result_warnings(detail: &serde_json::Value) -> Vec<String> {
    let of = |v: &serde_json::Value| -> Vec<String> {
        v.get("warnings")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = of(detail);
    if let Some(items) = detail.get("results").and_then(serde_json::Value::as_array) {
        for item in items {
            out.extend(of(item));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_of_a_result_and_of_its_items() {
        let v = serde_json::json!({
            "warnings": ["a"],
            "results": [{"warnings": ["b", 3]}, {"changed": true}],
        });
        assert_eq!(result_warnings(&v), vec!["a", "b"]);
        assert!(result_warnings(&serde_json::json!({"changed": false})).is_empty());
    }
}
