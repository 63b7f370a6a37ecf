//! Interrupts: SIGINT and SIGTERM stop a run the same way, and leave nothing behind.
//!
//! The first signal stops the engine from starting anything new (no task, loop item, retry or
//! handler; no new command on any connection), ends the commands in flight (local process groups;
//! on every SSH connection the other sessions of that connection, see
//! [`crate::connection::ssh::interrupt_all`]) and lets the tasks in flight finish, so their
//! results and notifications are recorded as usual. A second signal, or [`GRACE`] without an end,
//! stops waiting: the futures in flight are dropped (their local children are killed with their
//! process group), the remote sweep runs once more and the connections are closed. Either way
//! the handlers still owed stay in `.castellan/pending/` (written the moment they were
//! notified, see [`super::pending`]), the report is printed, and the exit code is 130 (SIGINT)
//! or 143 (SIGTERM).
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Runner;
use crate::playbook::Playbook;
use crate::report::Stats;

/// How long the tasks in flight get to finish after their commands were stopped.
pub const GRACE: Duration = Duration::from_secs(10);

/// The signals a run has received: the first one decides the exit code, a second one stops
/// waiting for the tasks in flight.
#[derive(Debug)]
pub struct Interrupt {
    tx: watch::Sender<(i32, u32)>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            tx: watch::channel((0, 0)).0,
        }
    }
}

impl Interrupt {
    pub fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt::default())
    }

    /// A signal arrived (its number: 2 for SIGINT, 15 for SIGTERM).
    pub fn deliver(&self, signal: i32) {
        self.tx.send_modify(|(first, count)| {
            if *first == 0 {
                *first = signal;
            }
            *count += 1;
        });
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        let (first, _) = *self.tx.borrow();
        (first != 0).then_some(first)
    }

    pub fn is_set(&self) -> bool {
        self.signal().is_some()
    }

    /// The exit code of an interrupted run: 128 + the signal (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> Option<i32> {
        self.signal().map(|s| 128 + s)
    }

    /// Resolves once `n` signals have arrived.
    pub async fn received(&self, n: u32) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|(_, count)| *count >= n).await;
    }

    /// Sleep, cut short by an interrupt. True when the whole time passed.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.received(1) => false,
        }
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// Forward SIGINT and SIGTERM to `intr` for the rest of the process (they no longer kill it).
/// Needs a tokio runtime; install it before the first host is contacted.
pub fn install(intr: &Arc<Interrupt>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let intr = Arc::clone(intr);
    tokio::spawn(async move {
        loop {
            let sig = tokio::select! {
                Some(()) = int.recv() => 2,
                Some(()) = term.recv() => 15,
                else => break,
            };
            intr.deliver(sig);
        }
    });
    Ok(())
}

/// End the commands in flight on every connection (local and SSH).
async fn stop_commands() -> Vec<String> {
    let (local, remote) = tokio::join!(
        crate::connection::children::interrupt_all(),
        crate::connection::ssh::interrupt_all()
    );
    let mut problems = local;
    problems.extend(remote);
    problems
}

/// Run `books` with `runner`, stopping cleanly on an interrupt. Returns the stats and the exit
/// code.
pub async fn run(runner: &mut Runner<'_>, books: &[Playbook]) -> (Stats, i32) {
    let intr = Arc::clone(&runner.interrupt);
    if intr.is_set() {
        // Interrupted while loading: no host was contacted.
        runner.reporter.warn(&format!(
            "interrupted by {} before any host was contacted",
            name(intr.signal().unwrap_or(0))
        ));
        let stats = runner.close_and_report().await;
        return (stats, intr.exit_code().unwrap_or(130));
    }
    let mut fut = Box::pin(runner.run_books(books));
    let done = tokio::select! {
        () = &mut fut => true,
        () = intr.received(1) => false,
    };
    let mut forced = false;
    let mut problems = Vec::new();
    if !done {
        // The run goes on being driven meanwhile: its commands end and it records what they
        // did.
        let stop = stop_commands();
        tokio::pin!(stop);
        let mut finished = false;
        loop {
            tokio::select! {
                () = &mut fut, if !finished => finished = true,
                p = &mut stop => {
                    problems = p;
                    break;
                }
            }
        }
        if !finished {
            finished = tokio::select! {
                () = &mut fut => true,
                () = intr.received(2) => false,
                () = tokio::time::sleep(GRACE) => false,
            };
        }
        forced = !finished;
    }
    // Whatever is still in flight is dropped here: local children die with their process
    // group (see connection/children.rs); remote ones are swept once more.
    drop(fut);
    if forced {
        problems.extend(stop_commands().await);
    }
    if let Some(sig) = intr.signal() {
        let how = if forced {
            "the tasks in flight were abandoned"
        } else {
            "the tasks in flight were stopped"
        };
        let mut msg = format!(
            "interrupted by {}: {how}, no new task was started",
            name(sig)
        );
        if !runner.opts.check {
            msg.push_str(
                "; handlers still owed are kept in .castellan/pending/ and run on the next run",
            );
        }
        if !problems.is_empty() {
            msg.push_str(&format!(
                "; could not stop everything: {}",
                problems.join("; ")
            ));
        }
        runner.reporter.warn(&msg);
    }
    let stats = runner.close_and_report().await;
    let code = intr.exit_code().unwrap_or_else(|| stats.exit_code());
    (stats, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_signal_decides_the_code_and_sleep_is_cut_short() {
        let i = Interrupt::new();
        assert_eq!(i.exit_code(), None);
        let t = std::time::Instant::now();
        let sleeper = {
            let i = Arc::clone(&i);
            tokio::spawn(async move { i.sleep(Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        i.deliver(15);
        assert!(!sleeper.await.unwrap());
        assert!(t.elapsed() < Duration::from_secs(5));
        i.deliver(2);
        assert_eq!(i.exit_code(), Some(143));
        // Two signals arrived: waiting for the second returns at once.
        i.received(2).await;
    }
}
