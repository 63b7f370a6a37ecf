//! A private test fleet (tests/fleet/README.md) for one test binary: its own address block
//! (`CASTELLAN_FLEET_NET`) and state dir, so suites running at once never collide. Needs root.
//! Nets in use: 5 mtls_fleet, 7 ssh_connection/ssh_close_all, 8 fleet_playbook, 9 benches,
//! 11 faults_files, 12 secret_leak, 13 faults_signals, 14 malformed_corpus/ssh_known_hosts_untouched,
//! 15 unreachable_read, 17 cast_imaging, 18 patroni_tls (tests/fleet/patroni.sh), 19 pem_models,
//! 20 vault, 21 packages_services_fleet, 22 cap_upgrade, 23 certs_status, 24 rotation,
//! 31 ssh_session, 32 max_connections, 33 read_ahead.
#![allow(dead_code)]
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Weak};

use castellan::connection::ssh::SshParams;

pub struct FleetDef {
    /// Second octet of the host addresses: dbK is 127.NET.1.K (K <= 254).
    pub net: &'static str,
    /// State dir: keys, sshd configs, inventory.yml, hosts/dbK/.
    pub dir: &'static str,
}

impl FleetDef {
    /// Run `tests/fleet/NAME ARGS` for this fleet; panics with its output when it fails.
    pub fn script(&self, name: &str, args: &[&str]) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fleet")
            .join(name);
        let out = Command::new("bash")
            .arg(path)
            .args(args)
            .env("CASTELLAN_FLEET_NET", self.net)
            .env("CASTELLAN_FLEET_DIR", self.dir)
            .output()
            .expect("run fleet script");
        assert!(
            out.status.success(),
            "{name} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// A guard that brings the fleet down when dropped (also when the test panics).
    pub fn down_on_drop(&'static self) -> Down {
        Down(self)
    }

    pub fn dir(&self) -> PathBuf {
        PathBuf::from(self.dir)
    }

    pub fn inventory(&self) -> String {
        format!("{}/inventory.yml", self.dir)
    }

    /// dbK's address.
    pub fn addr(&self, k: usize) -> String {
        format!("127.{}.1.{k}", self.net)
    }

    /// A fresh empty directory under dbK's root (`fleet_root`), enterable by other users.
    pub fn workdir(&self, k: usize, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir().join(format!("hosts/db{k}/root/{name}"));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    /// Connection parameters of dbK, read from the inventory up.sh wrote, through from_vars, with
    /// the control directory inside the fleet dir.
    pub fn params(&self, k: usize) -> SshParams {
        let inv: serde_json::Value =
            serde_yaml::from_str(&fs::read_to_string(self.inventory()).unwrap()).unwrap();
        let fleet = &inv["all"]["children"]["fleet"];
        let mut vars = fleet["vars"].as_object().unwrap().clone();
        let name = format!("db{k}");
        for (key, v) in fleet["hosts"][&name].as_object().unwrap() {
            vars.insert(key.clone(), v.clone());
        }
        let mut p = SshParams::from_vars(&name, &vars).unwrap();
        assert_eq!(p.host, self.addr(k));
        p.control_dir = Some(self.dir().join("ctl"));
        p
    }
}

/// Brings its fleet down when dropped.
pub struct Down(&'static FleetDef);

impl Drop for Down {
    fn drop(&mut self) {
        self.0.script("down.sh", &[]);
    }
}

/// A fleet shared by the tests of one binary: up while any test holds it, down when the last
/// one lets go (a test that starts later brings it up again).
pub struct Shared {
    def: &'static FleetDef,
    up_args: &'static [&'static str],
    slot: Mutex<Weak<Held>>,
}

/// A hold on a [`Shared`] fleet.
pub struct Held {
    pub def: &'static FleetDef,
    shared: &'static Shared,
}

impl Shared {
    pub const fn new(def: &'static FleetDef, up_args: &'static [&'static str]) -> Self {
        Shared {
            def,
            up_args,
            slot: Mutex::new(Weak::new()),
        }
    }

    pub fn get(&'static self) -> Arc<Held> {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = g.upgrade() {
            return held;
        }
        self.def.script("up.sh", self.up_args);
        let held = Arc::new(Held {
            def: self.def,
            shared: self,
        });
        *g = Arc::downgrade(&held);
        held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let g = self.shared.slot.lock().unwrap_or_else(|e| e.into_inner());
        // Another test took a new hold meanwhile: leave the fleet up for it.
        if g.upgrade().is_none() {
            self.def.script("down.sh", &[]);
        }
    }
}

impl std::ops::Deref for Held {
    type Target = FleetDef;
    fn deref(&self) -> &FleetDef {
        self.def
    }
}
