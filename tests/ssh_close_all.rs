//! `close_all` closes every SSH connection of the process, so it gets a test binary of its own.
use std::path::Path;
use std::time::{Duration, Instant};

use castellan::connection::ssh::{close_all, SshConnection};
use castellan::connection::{ConnError, Connection};

mod fleet_common;
mod ssh_common;
use ssh_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_close_all_stop_every_master() {
    let f = fleet();
    let a = SshConnection::connect(f.params(3)).await.unwrap();
    let b = SshConnection::connect(f.params(3)).await.unwrap();
    let lazy = SshConnection::new(f.params(3)); // never used: nothing to stop
    let ctl_a = a.control_path().await.unwrap();
    let ctl_b = b.control_path().await.unwrap();
    let pid_a = a.master_pid().await.unwrap();
    a.close().await;
    assert!(!Path::new(&format!("/proc/{pid_a}")).exists());
    assert!(ssh_processes_with(&ctl_a.to_string_lossy()).is_empty());
    assert!(!ctl_a.parent().unwrap().exists());
    assert!(matches!(
        a.exec(&argv(&["true"])).await,
        Err(ConnError::Unreachable(_))
    ));
    assert_eq!(ssh_processes_with(&ctl_b.to_string_lossy()).len(), 1);
    close_all().await;
    assert!(ssh_processes_with(&ctl_b.to_string_lossy()).is_empty());
    assert!(!ctl_b.parent().unwrap().exists());
    assert!(lazy.control_path().await.is_none());
    // Concurrency above MaxSessions is queued, not refused.
    let c = SshConnection::connect(f.params(3)).await.unwrap();
    let req = argv(&["sleep", "0.1"]);
    let runs = (0..30).map(|_| c.exec(&req));
    for r in futures::future::join_all(runs).await {
        assert_eq!(r.unwrap().rc, 0);
    }
    // Dropping without close kills the master too.
    let ctl = c.control_path().await.unwrap();
    drop(c);
    let t = Instant::now();
    while !ssh_processes_with(&ctl.to_string_lossy()).is_empty()
        && t.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ssh_processes_with(&ctl.to_string_lossy()).is_empty());
}
