//! The Ansible-like text stream: play and task headers, one line per host, the recap.
use std::io::Write;
use std::sync::Mutex;

use super::progress::Progress;
use super::{secret, HostResult, Reporter, Stats, Status};

pub struct TextReporter {
    out: Mutex<Box<dyn Write + Send>>,
    color: bool,
    verbose: u8,
    progress: Progress,
}

impl TextReporter {
    /// `color` and `progress` are for terminals: the caller decides from `is_terminal`.
    pub fn new(out: Box<dyn Write + Send>, color: bool, verbose: u8, progress: Progress) -> Self {
        TextReporter {
            out: Mutex::new(out),
            color,
            verbose,
            progress,
        }
    }

    /// Print one line; every known secret value in it is masked, whatever part of the report it
    /// comes from (a task name, a message, a result, a diff).
    fn line(&self, s: &str) {
        let s = secret::mask(s);
        self.progress.suspend(|| {
            if let Ok(mut o) = self.out.lock() {
                let _ = writeln!(o, "{s}");
                let _ = o.flush();
            }
        });
    }

    fn paint(&self, s: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn header(title: &str) -> String {
    let stars = 79usize.saturating_sub(title.len() + 1).max(3);
    format!("\n{title} {}", "*".repeat(stars))
}

fn status_word(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Ok => ("ok", "32"),
        Status::Changed => ("changed", "33"),
        Status::Failed => ("fatal", "31"),
        Status::Skipped => ("skipping", "36"),
        Status::Unreachable => ("fatal", "31"),
    }
}

impl Reporter for TextReporter {
    fn play_start(&self, name: &str) {
        self.line(&header(&format!("PLAY [{name}]")));
    }

    fn task_start(&self, name: &str, _module: &str, handler: bool, hosts: usize) {
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        self.line(&header(&format!("{kind} [{name}]")));
        self.progress.task(&secret::mask(name), hosts);
    }

    fn host_result(&self, r: &HostResult) {
        if let Some(d) = &r.diff {
            self.line(d.trim_end());
        }
        let host = match &r.delegated {
            Some(d) => format!("[{} -> {d}]", r.host),
            None => format!("[{}]", r.host),
        };
        for (label, st, msg, diff) in &r.items {
            if let Some(d) = diff {
                self.line(d.trim_end());
            }
            let (word, code) = status_word(*st);
            let mut s = format!("{word}: {host} => (item={label})");
            if let (Status::Failed, Some(m)) = (st, msg) {
                s.push_str(&format!(" => {}", serde_json::json!({"msg": m})));
            }
            self.line(&self.paint(&s, code));
        }
        let (word, code) = status_word(r.status);
        let line = match r.status {
            Status::Failed => format!(
                "{word}: {host}: FAILED! => {}",
                serde_json::json!({"changed": false, "msg": r.msg.clone().unwrap_or_default()})
            ),
            Status::Unreachable => format!(
                "{word}: {host}: UNREACHABLE! => {}",
                serde_json::json!({"changed": false, "msg": r.msg.clone().unwrap_or_default(), "unreachable": true})
            ),
            _ => {
                let mut s = format!("{word}: {host}");
                if r.show {
                    // `debug` shows only what it was asked to show, like Ansible.
                    let shown: serde_json::Map<String, serde_json::Value> = r
                        .detail
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter(|(k, _)| !matches!(k.as_str(), "changed" | "failed"))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let text = serde_json::to_string_pretty(&shown).unwrap_or_default();
                    s.push_str(&format!(" => {text}"));
                } else if self.verbose > 0 && !r.detail.is_null() {
                    s.push_str(&format!(" => {}", r.detail));
                }
                s
            }
        };
        if r.items.is_empty() || r.status == Status::Failed {
            self.line(&self.paint(&line, code));
        }
        if r.ignored {
            self.line(&self.paint("...ignoring", "36"));
        }
        self.progress
            .host_done(matches!(r.status, Status::Failed | Status::Unreachable) && !r.ignored);
    }

    fn warn(&self, msg: &str) {
        self.line(&self.paint(&format!("[WARNING]: {msg}"), "35"));
    }

    fn finish(&self, stats: &Stats, _check: bool, duration: std::time::Duration) {
        self.progress.clear();
        self.line(&header("PLAY RECAP"));
        let width = stats
            .hosts
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(20);
        for (host, h) in &stats.hosts {
            let code = if h.failed > 0 || h.unreachable > 0 {
                "31"
            } else if h.changed > 0 {
                "33"
            } else {
                "32"
            };
            self.line(&format!(
                "{} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4}",
                self.paint(&format!("{host:<width$}"), code),
                h.ok,
                h.changed,
                h.unreachable,
                h.failed,
                h.skipped,
                h.rescued,
                h.ignored
            ));
        }
        self.line(&format!("\nfinished in {:.2}s", duration.as_secs_f64()));
    }
}
