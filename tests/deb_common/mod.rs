//! Real Debian packages for the package tests, built with `dpkg-deb --build` (no network): a
//! control file, the files the package ships, and maintainer scripts when given.
#![allow(dead_code)]
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A package to build.
pub struct Deb<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// (path inside the package, content, mode).
    pub files: Vec<(&'a str, String, u32)>,
    /// (maintainer script name, content): `postrm`, `prerm`...
    pub scripts: Vec<(&'a str, String)>,
}

impl<'a> Deb<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Self {
        Deb {
            name,
            version,
            files: Vec::new(),
            scripts: Vec::new(),
        }
    }

    /// Build `NAME_VERSION_all.deb` in `out`; returns its path.
    pub fn build(&self, out: &Path) -> PathBuf {
        let root = out.join(format!("build-{}-{}", self.name, self.version));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("DEBIAN")).unwrap();
        fs::write(
            root.join("DEBIAN/control"),
            format!(
                "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: castellan tests <tests@castellan.invalid>\n\
                 Section: misc\nPriority: optional\nDescription: castellan test package\n \
                 Built by castellan's tests; safe to remove.\n",
                self.name, self.version
            ),
        )
        .unwrap();
        let doc = (
            format!("usr/share/doc/{}/VERSION", self.name),
            format!("{} {}\n", self.name, self.version),
            0o644,
        );
        let files = self
            .files
            .iter()
            .map(|(p, c, m)| (p.to_string(), c.clone(), *m))
            .chain(std::iter::once(doc));
        for (path, content, mode) in files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        for (name, content) in &self.scripts {
            let p = root.join("DEBIAN").join(name);
            fs::write(&p, content).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let deb = out.join(format!("{}_{}_all.deb", self.name, self.version));
        let o = Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .expect("run dpkg-deb");
        assert!(
            o.status.success(),
            "dpkg-deb --build: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        fs::remove_dir_all(&root).unwrap();
        deb
    }
}

/// The installed version of a package (`None`: not installed), from dpkg itself.
pub fn installed(name: &str) -> Option<String> {
    let o = Command::new("dpkg-query")
        .args(["-W", "--showformat=${db:Status-Abbrev}\t${Version}", name])
        .output()
        .expect("run dpkg-query");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (status, version) = out.split_once('\t')?;
    (status.as_bytes().get(1) == Some(&b'i')).then(|| version.to_string())
}

/// Remove a test package completely (purge), whatever state it is in.
pub fn purge(name: &str) {
    let _ = Command::new("dpkg").args(["--purge", name]).output();
}
