//! What a host owes: the handlers its changes notified (owed already before a change that may
//! be cut short) and the backups a rollback restores, written to the play's pending state the
//! moment they change (see [`super::pending`]).
use super::host::HostState;
use super::pending::Owed;
use super::results::Outcome;
use super::{PlayCtx, Runner};
use crate::connection::Backup;
use crate::playbook::Task;
use crate::report::Status;

/// Notify what a task's outcome on a host owes: its handlers when it changed the host. Cut
/// short (host gone, run interrupted), what may have changed still owes its handlers, and a
/// handler that did not finish is still owed.
pub(super) fn notify_after(
    hs: &mut HostState,
    task: &Task,
    o: &Outcome,
    handler: bool,
    interrupted: bool,
) {
    let status = o.result.status;
    if o.changed && status != Status::Failed && status != Status::Unreachable {
        for n in &task.notify {
            hs.notify(n);
        }
    }
    let cut = status == Status::Unreachable || (status == Status::Failed && interrupted);
    if cut && handler {
        if let Some(n) = task
            .name
            .clone()
            .or_else(|| super::play::handler_names(task).into_iter().next())
        {
            hs.notify(&n);
        }
    } else if cut && o.applied {
        for n in &task.notify {
            hs.notify(n);
        }
    }
}

impl Runner<'_> {
    /// Write what `host` owes now (handlers not run, backups) to the play's pending state.
    pub(super) fn remember(&self, pc: &PlayCtx<'_>, host: &str) {
        self.remember_with(pc, host, &[]);
    }

    /// Before a task with `notify` changes `host`: record its handlers as owed already.
    pub(super) fn owe_ahead(&self, pc: &PlayCtx<'_>, task: &Task, host: &str) {
        self.remember_with(pc, host, &task.notify);
    }

    /// Write what `host` owes, and the handlers `more`; a failure is a warning (the run goes
    /// on).
    fn remember_with(&self, pc: &PlayCtx<'_>, host: &str, more: &[String]) {
        let Some(s) = self.hosts.get(host) else {
            return;
        };
        let mut handlers = s.owed_handlers();
        for n in more {
            if !handlers.contains(n) {
                handlers.push(n.clone());
            }
        }
        let owed = Owed {
            handlers,
            backups: s.backups.clone(),
        };
        if let Err(e) = pc.book.record(host, owed.clone()) {
            self.reporter.warn(&format!(
                "{host}: could not record pending handlers {:?} under {}: {e}",
                owed.handlers,
                pc.book.location().display()
            ));
        }
    }

    /// The backups known for `host`: those of earlier tasks (and runs), then `more`.
    pub(super) fn backups_of(&self, host: &str, more: &[Backup]) -> Vec<Backup> {
        let mut all = self
            .hosts
            .get(host)
            .map(|s| s.backups.clone())
            .unwrap_or_default();
        all.extend(more.iter().cloned());
        all
    }
}
