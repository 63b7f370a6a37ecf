//! A process-table watcher, as `ps -eo args` run in a loop would be: every command line of every
//! process on the machine (the control node and the fleet's hosts alike), read from `/proc`
//! every 5 ms in a thread.
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Every command line in the process table, arguments separated by NUL as in `/proc`.
pub fn cmdlines() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            if !c.is_empty() {
                v.push(c);
            }
        }
    }
    v
}

pub struct PsWatch {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(HashSet<Vec<u8>>, usize)>>,
}

/// What the watcher saw.
pub struct Seen {
    /// Distinct command lines.
    pub lines: Vec<Vec<u8>>,
    /// Snapshots of the whole table taken.
    pub snapshots: usize,
}

impl Seen {
    /// Did some process run with exactly these arguments?
    pub fn saw(&self, args: &[&str]) -> bool {
        let want: Vec<u8> = args
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        self.lines.contains(&want)
    }

    /// All command lines, one per line, arguments separated by spaces (as `ps -eo args`).
    pub fn text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.extend(l.iter().map(|&b| if b == 0 { b' ' } else { b }));
            out.push(b'\n');
        }
        out
    }
}

impl PsWatch {
    pub fn start() -> PsWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut seen = HashSet::new();
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                seen.extend(cmdlines());
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (seen, n)
        });
        PsWatch {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let (seen, snapshots) = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Seen {
            lines: seen.into_iter().collect(),
            snapshots,
        }
    }
}

impl Drop for PsWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
