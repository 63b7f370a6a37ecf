//! A progress bar on a terminal (current task, hosts done/total, failures so far, elapsed);
//! nothing at all when stderr is not a terminal, so CI logs stay plain lines.
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
    failures: Mutex<u32>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress {
            bar: Mutex::new(None),
            enabled,
            failures: Mutex::new(0),
        }
    }

    /// Show stderr's bar only when stderr is a terminal.
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        Progress::new(std::io::stderr().is_terminal())
    }

    /// A new task starts on `hosts` hosts.
    pub fn task(&self, name: &str, hosts: usize) {
        if !self.enabled {
            return;
        }
        let Ok(mut slot) = self.bar.lock() else {
            return;
        };
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = ProgressBar::with_draw_target(Some(hosts as u64), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} {wide_msg} [{pos}/{len} hosts] {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(self.message(name));
        bar.enable_steady_tick(Duration::from_millis(120));
        *slot = Some(bar);
    }

    fn message(&self, name: &str) -> String {
        let failed = self.failures.lock().map_or(0, |f| *f);
        if failed > 0 {
            format!("{name} ({failed} failed)")
        } else {
            name.to_string()
        }
    }

    /// One host finished the current task.
    pub fn host_done(&self, failed: bool) {
        if !self.enabled {
            return;
        }
        if failed {
            if let Ok(mut f) = self.failures.lock() {
                *f += 1;
            }
        }
        if let Ok(slot) = self.bar.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.inc(1);
            }
        }
    }

    /// Print something without tearing the bar.
    pub fn suspend<F: FnOnce()>(&self, f: F) {
        match self.bar.lock() {
            Ok(slot) => match slot.as_ref() {
                Some(bar) => bar.suspend(f),
                None => f(),
            },
            Err(_) => f(),
        }
    }

    pub fn clear(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}
