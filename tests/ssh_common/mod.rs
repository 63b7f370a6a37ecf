//! Shared by the SSH integration tests: a private test fleet (tests/fleet/up.sh with its own
//! address block and state dir, so it does not collide with other fleets), up while any test
//! of the binary holds it. Needs root.
#![allow(dead_code)]
use std::fs;
use std::path::Path;
use std::sync::Arc;

use castellan::connection::ExecRequest;

pub use crate::fleet_common::{FleetDef, Held, Shared};

pub const NET: &str = "7";
pub const HOSTS: usize = 3;
pub static DEF: FleetDef = FleetDef {
    net: NET,
    dir: "/tmp/castellan-ssh-test-fleet",
};
static FLEET: Shared = Shared::new(&DEF, &["3", "--no-postgres"]);

/// The fleet, up while any test holds it; the last one out brings it down.
pub fn fleet() -> Arc<Held> {
    FLEET.get()
}

pub fn fleet_cmd(name: &str, args: &[&str]) {
    DEF.script(name, args);
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A user other than root for ownership and become tests.
pub fn other_user() -> &'static str {
    if nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .is_some()
    {
        "postgres"
    } else {
        "nobody"
    }
}

pub fn argv(args: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: args.iter().map(|s| s.to_string()).collect(),
        ..ExecRequest::default()
    }
}

/// Pids of `ssh` processes whose command line mentions `needle`.
pub fn ssh_processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if comm.trim() == "ssh" && String::from_utf8_lossy(&cmd).contains(needle) {
            found.push(pid);
        }
    }
    found
}
