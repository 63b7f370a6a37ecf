//! `--output json`: one document on stdout when the run ends (DESIGN.md, "JSON report").
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::progress::Progress;
use super::{secret, HostResult, Reporter, Stats};

#[derive(Default)]
struct Doc {
    plays: Vec<Value>,
    warnings: Vec<String>,
}

/// The document goes to stdout at the end; a progress bar goes to stderr when it is a terminal.
pub struct JsonReporter {
    doc: Mutex<Doc>,
    progress: Progress,
}

impl Default for JsonReporter {
    fn default() -> Self {
        JsonReporter {
            doc: Mutex::new(Doc::default()),
            progress: Progress::for_stderr(),
        }
    }
}

impl JsonReporter {
    pub fn new() -> Self {
        Self::default()
    }
}

fn last_task(doc: &mut Doc) -> Option<&mut Map<String, Value>> {
    doc.plays
        .last_mut()?
        .get_mut("tasks")?
        .as_array_mut()?
        .last_mut()?
        .as_object_mut()
}

impl Reporter for JsonReporter {
    fn play_start(&self, name: &str) {
        if let Ok(mut d) = self.doc.lock() {
            d.plays.push(json!({"name": name, "tasks": []}));
        }
    }

    fn task_start(&self, name: &str, module: &str, handler: bool, hosts: usize) {
        self.progress.task(&secret::mask(name), hosts);
        if let Ok(mut d) = self.doc.lock() {
            if let Some(tasks) = d
                .plays
                .last_mut()
                .and_then(|p| p.get_mut("tasks"))
                .and_then(Value::as_array_mut)
            {
                let mut t = json!({"name": name, "module": module, "results": {}});
                if handler {
                    t["handler"] = json!(true);
                }
                tasks.push(t);
            }
        }
    }

    fn host_result(&self, r: &HostResult) {
        self.progress.host_done(
            matches!(r.status, super::Status::Failed | super::Status::Unreachable) && !r.ignored,
        );
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut entry = json!({"status": r.status});
        if let Some(m) = &r.msg {
            entry["msg"] = json!(m);
        }
        if let Some(d) = &r.diff {
            entry["diff"] = json!(d);
        }
        if r.ignored {
            entry["ignored"] = json!(true);
        }
        if !r.items.is_empty() {
            entry["items"] = Value::Array(
                r.items
                    .iter()
                    .map(|(label, st, msg, diff)| json!({"item": label, "status": st, "msg": msg, "diff": diff}))
                    .collect(),
            );
        }
        if let Some(d) = &r.delegated {
            entry["delegated_to"] = json!(d);
        }
        if !r.detail.is_null() {
            entry["result"] = r.detail.clone();
        }
        entry["finished_at"] = json!(started);
        if let Ok(mut d) = self.doc.lock() {
            if let Some(results) = last_task(&mut d)
                .and_then(|t| t.get_mut("results"))
                .and_then(Value::as_object_mut)
            {
                results.insert(r.host.clone(), entry);
            }
        }
    }

    fn warn(&self, msg: &str) {
        self.progress
            .suspend(|| eprintln!("[WARNING]: {}", secret::mask(msg)));
        if let Ok(mut d) = self.doc.lock() {
            d.warnings.push(msg.to_string());
        }
    }

    fn finish(&self, stats: &Stats, check_mode: bool, duration: std::time::Duration) {
        self.progress.clear();
        let Ok(d) = self.doc.lock() else { return };
        let mut hosts = Map::new();
        for (h, s) in &stats.hosts {
            hosts.insert(h.clone(), json!(s));
        }
        // Every string of the document, the last time: no known secret value is printed.
        let doc = secret::mask_value(&json!({
            "version": env!("CARGO_PKG_VERSION"),
            "check_mode": check_mode,
            "duration_s": (duration.as_secs_f64() * 1000.0).round() / 1000.0,
            "plays": d.plays,
            "stats": hosts,
            "warnings": d.warnings,
        }));
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
}
