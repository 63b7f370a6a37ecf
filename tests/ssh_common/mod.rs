//! Shared by the SSH integration tests: a private test fleet (tests/fleet/up.sh with its own
//! address block and state dir, so it does not collide with other fleets), up while any test
//! of the binary holds it. Needs root.
#![allow(dead_code)]
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use castellan::connection::ssh::SshParams;
use castellan::connection::ExecRequest;

pub const NET: &str = "7";
pub const DIR: &str = "/tmp/castellan-ssh-test-fleet";
pub const HOSTS: usize = 3;

/// The fleet, up while any test holds it; the last one out brings it down.
pub struct Fleet {
    pub dir: PathBuf,
}

static FLEET: Mutex<Weak<Fleet>> = Mutex::new(Weak::new());

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fleet")
        .join(name)
}

pub fn fleet_cmd(name: &str, args: &[&str]) {
    let out = Command::new(script(name))
        .args(args)
        .env("CASTELLAN_FLEET_NET", NET)
        .env("CASTELLAN_FLEET_DIR", DIR)
        .output()
        .expect("run fleet script");
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn fleet() -> Arc<Fleet> {
    let mut g = FLEET.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = g.upgrade() {
        return f;
    }
    fleet_cmd("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);
    let f = Arc::new(Fleet {
        dir: PathBuf::from(DIR),
    });
    *g = Arc::downgrade(&f);
    f
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let g = FLEET.lock().unwrap_or_else(|e| e.into_inner());
        // Another test started a new fleet meanwhile: leave it up for that one.
        if g.upgrade().is_none() {
            fleet_cmd("down.sh", &[]);
        }
    }
}

impl Fleet {
    /// Connection parameters of dbK, read from the inventory up.sh wrote, through from_vars.
    pub fn params(&self, k: usize) -> SshParams {
        let inv: serde_json::Value =
            serde_yaml::from_str(&fs::read_to_string(self.dir.join("inventory.yml")).unwrap())
                .unwrap();
        let fleet = &inv["all"]["children"]["fleet"];
        let mut vars = fleet["vars"].as_object().unwrap().clone();
        let name = format!("db{k}");
        for (key, v) in fleet["hosts"][&name].as_object().unwrap() {
            vars.insert(key.clone(), v.clone());
        }
        let mut p = SshParams::from_vars(&name, &vars).unwrap();
        assert_eq!(p.host, format!("127.{NET}.1.{k}"));
        p.control_dir = Some(self.dir.join("ctl"));
        p
    }

    /// A fresh empty directory under dbK's fleet_root.
    pub fn workdir(&self, k: usize, name: &str) -> PathBuf {
        let d = self.dir.join(format!("hosts/db{k}/root/{name}"));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }
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
