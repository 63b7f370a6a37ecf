//! The PKI directory on disk: its layout, a lock, and all-or-nothing writes.
//!
//! Writes go through a [`Txn`]: each file is written to a temporary file in its destination
//! directory (created with its final mode, 0600 for private files, before a byte is written),
//! flushed, and renamed over the destination. A replaced file is first hard-linked to a backup, so
//! that dropping the transaction without [`Txn::commit`] puts back the very same files (same
//! bytes, same mtime) and removes what it created, directories included.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

use super::{CertKind, PkiError, Result};

/// Mode of private files (keys).
pub const PRIVATE_MODE: u32 = 0o600;
/// Mode of public files (certificates, CRL, index).
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of the directories we create.
pub const DIR_MODE: u32 = 0o700;

/// The layout of a PKI directory.
#[derive(Clone, Debug)]
pub struct PkiDir {
    root: PathBuf,
}

impl PkiDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PkiDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }
    pub fn crl(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }
    /// The CA made by phase 1 of a CA rollover, trusted but not signing yet (`ca-next.crt`).
    pub fn ca_next_cert(&self) -> PathBuf {
        self.root.join("ca-next.crt")
    }
    /// Its private key (`ca-next.key`, 0600).
    pub fn ca_next_key(&self) -> PathBuf {
        self.root.join("ca-next.key")
    }
    /// The link certificate of a CA rollover (`ca-link.crt`): the new CA's key certified by the
    /// old CA (RFC 4210's NewWithOld), sent after a server's certificate while clients may still
    /// trust only the old CA.
    pub fn ca_link(&self) -> PathBuf {
        self.root.join("ca-link.crt")
    }
    /// Where CAs replaced by a rollover are kept (`retired/`), to sign their CRL until their
    /// last certificate expires.
    pub fn retired_dir(&self) -> PathBuf {
        self.root.join("retired")
    }
    /// The directory of one retired CA, named after its certificate's SHA-256 (16 hex digits).
    pub fn retired(&self, sha256: &str) -> PathBuf {
        self.retired_dir().join(&sha256[..sha256.len().min(16)])
    }
    /// The record of the CA rollover (`rollover.json`): the phase reached.
    pub fn rollover(&self) -> PathBuf {
        self.root.join("rollover.json")
    }
    pub fn kind_dir(&self, kind: CertKind) -> PathBuf {
        self.root.join(kind.as_str())
    }
    pub fn leaf_dir(&self, kind: CertKind, name: &str) -> PathBuf {
        self.kind_dir(kind).join(name)
    }
    pub fn leaf_cert(&self, kind: CertKind, name: &str) -> PathBuf {
        self.leaf_dir(kind, name)
            .join(format!("{}.crt", kind.as_str()))
    }
    pub fn leaf_key(&self, kind: CertKind, name: &str) -> PathBuf {
        self.leaf_dir(kind, name)
            .join(format!("{}.key", kind.as_str()))
    }
    /// The PKCS#8 DER key (`client.pk8`); only client certificates have one.
    pub fn leaf_pk8(&self, kind: CertKind, name: &str) -> Option<PathBuf> {
        self.leaf_file(kind, name, LeafFile::Pk8)
    }
    /// The PKCS#8 PEM key (`client.pem.pk8`); only client certificates have one.
    pub fn leaf_pem_pk8(&self, kind: CertKind, name: &str) -> Option<PathBuf> {
        self.leaf_file(kind, name, LeafFile::PemPk8)
    }
    /// The PKCS#12 bundle (`client.pfx`); only client certificates have one.
    pub fn leaf_pfx(&self, kind: CertKind, name: &str) -> Option<PathBuf> {
        self.leaf_file(kind, name, LeafFile::Pfx)
    }
    /// The copy of the CA certificate (`root.crt`); only client directories hold one.
    pub fn leaf_root(&self, kind: CertKind, name: &str) -> Option<PathBuf> {
        self.leaf_file(kind, name, LeafFile::Root)
    }
    /// The path of `file` in the directory of `kind`/`name`, when that kind has such a file.
    pub fn leaf_file(&self, kind: CertKind, name: &str, file: LeafFile) -> Option<PathBuf> {
        LeafFile::of(kind)
            .contains(&file)
            .then(|| self.leaf_dir(kind, name).join(file.file_name(kind)))
    }
    /// Every file of the directory of `kind`/`name`, in [`LeafFile::of`] order.
    pub fn leaf_files(&self, kind: CertKind, name: &str) -> Vec<(LeafFile, PathBuf)> {
        let dir = self.leaf_dir(kind, name);
        LeafFile::of(kind)
            .iter()
            .map(|f| (*f, dir.join(f.file_name(kind))))
            .collect()
    }
}

/// A file of a leaf directory (`server/NAME/`, `client/NAME/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeafFile {
    /// `server.crt` / `client.crt`: the certificate, PEM.
    Cert,
    /// `server.key` / `client.key`: the private key, PKCS#8 PEM.
    Key,
    /// `client.pk8`: the private key, PKCS#8 DER (JDBC).
    Pk8,
    /// `client.pem.pk8`: the private key, PKCS#8 PEM (the same bytes as `client.key`).
    PemPk8,
    /// `client.pfx`: PKCS#12 with the certificate, the key and the CA certificate (.NET).
    Pfx,
    /// `root.crt`: a copy of the CA certificate (`ca.crt`), PEM.
    Root,
}

impl LeafFile {
    const SERVER: [LeafFile; 2] = [LeafFile::Cert, LeafFile::Key];
    const CLIENT: [LeafFile; 6] = [
        LeafFile::Cert,
        LeafFile::Key,
        LeafFile::Pk8,
        LeafFile::PemPk8,
        LeafFile::Pfx,
        LeafFile::Root,
    ];

    /// The files a directory of `kind` holds, certificate and key first.
    pub fn of(kind: CertKind) -> &'static [LeafFile] {
        match kind {
            CertKind::Server => &Self::SERVER,
            CertKind::Client => &Self::CLIENT,
        }
    }

    /// The file name in a directory of `kind` (`client.crt`, `server.key`, `root.crt`...).
    pub fn file_name(self, kind: CertKind) -> String {
        let stem = kind.as_str();
        match self {
            LeafFile::Cert => format!("{stem}.crt"),
            LeafFile::Key => format!("{stem}.key"),
            LeafFile::Pk8 => format!("{stem}.pk8"),
            LeafFile::PemPk8 => format!("{stem}.pem.pk8"),
            LeafFile::Pfx => format!("{stem}.pfx"),
            LeafFile::Root => "root.crt".to_string(),
        }
    }

    /// True for the files that hold the private key.
    pub fn is_private(self) -> bool {
        matches!(
            self,
            LeafFile::Key | LeafFile::Pk8 | LeafFile::PemPk8 | LeafFile::Pfx
        )
    }

    /// The mode the PKI directory gives it: 0600 for key material, 0644 for certificates.
    pub fn mode(self) -> u32 {
        if self.is_private() {
            PRIVATE_MODE
        } else {
            PUBLIC_MODE
        }
    }
}

/// Reads a file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path, e)),
    }
}

/// An exclusive lock on the PKI directory (flock on the directory itself, so no lock file is
/// left behind). Serialises concurrent `ensure_*` calls, from threads or processes.
pub(crate) struct DirLock {
    _lock: Flock<File>,
}

pub(crate) fn lock(dir: &Path) -> Result<DirLock> {
    let f = File::open(dir).map_err(|e| PkiError::io("open", dir, e))?;
    let lock = Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, errno)| PkiError::io("lock", dir, std::io::Error::from(errno)))?;
    Ok(DirLock { _lock: lock })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn side_name(path: &Path, tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{file}.{tag}.{}.{n}", std::process::id()))
}

enum Undo {
    Created(PathBuf),
    Replaced { path: PathBuf, backup: PathBuf },
    Dir(PathBuf),
}

/// A set of file writes that all happen or, when the transaction is dropped without
/// [`Txn::commit`], are all undone.
#[must_use = "a transaction is rolled back unless committed"]
pub(crate) struct Txn {
    undo: Vec<Undo>,
    committed: bool,
}

impl Txn {
    pub fn new() -> Self {
        Txn {
            undo: Vec::new(),
            committed: false,
        }
    }

    /// Creates `dir` and its missing parents with mode 0700.
    pub fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut p = Some(dir);
        while let Some(d) = p {
            if d.as_os_str().is_empty() || fs::symlink_metadata(d).is_ok() {
                break;
            }
            missing.push(d.to_path_buf());
            p = d.parent();
        }
        for d in missing.into_iter().rev() {
            match DirBuilder::new().mode(DIR_MODE).create(&d) {
                Ok(()) => self.undo.push(Undo::Dir(d)),
                // Another thread or process created it meanwhile (hosts ensuring the same CA
                // concurrently): it is theirs to keep, not ours to roll back.
                Err(e) if e.kind() == ErrorKind::AlreadyExists && d.is_dir() => {}
                Err(e) => return Err(PkiError::io("create directory", &d, e)),
            }
        }
        Ok(())
    }

    /// Writes `bytes` to `path` atomically with `mode` (the parent directory must exist).
    pub fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let tmp = side_name(path, "tmp");
        let result = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)?;
            // The umask may have removed bits; set exactly the mode asked for, still before
            // writing anything.
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(PkiError::io("write", &tmp, e));
        }
        let undo = match fs::symlink_metadata(path) {
            Ok(_) => {
                let backup = side_name(path, "bak");
                if let Err(e) = fs::hard_link(path, &backup) {
                    let _ = fs::remove_file(&tmp);
                    return Err(PkiError::io("back up", path, e));
                }
                Undo::Replaced {
                    path: path.to_path_buf(),
                    backup,
                }
            }
            Err(_) => Undo::Created(path.to_path_buf()),
        };
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            if let Undo::Replaced { backup, .. } = &undo {
                let _ = fs::remove_file(backup);
            }
            return Err(PkiError::io("rename into", path, e));
        }
        self.undo.push(undo);
        Ok(())
    }

    /// Removes `path` if it exists (put back when the transaction is dropped uncommitted).
    pub fn remove(&mut self, path: &Path) -> Result<()> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let backup = side_name(path, "bak");
        fs::rename(path, &backup).map_err(|e| PkiError::io("remove", path, e))?;
        self.undo.push(Undo::Replaced {
            path: path.to_path_buf(),
            backup,
        });
        Ok(())
    }

    /// Keeps every write and removes the backups.
    pub fn commit(mut self) {
        self.committed = true;
        for u in self.undo.drain(..) {
            if let Undo::Replaced { backup, .. } = u {
                let _ = fs::remove_file(backup);
            }
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for u in self.undo.drain(..).rev() {
            match u {
                Undo::Created(p) => {
                    let _ = fs::remove_file(p);
                }
                Undo::Replaced { path, backup } => {
                    let _ = fs::rename(backup, path);
                }
                Undo::Dir(d) => {
                    let _ = fs::remove_dir(d);
                }
            }
        }
    }
}

/// Checks a certificate name (it becomes a directory name).
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(PkiError::InvalidName {
            name: name.to_string(),
            why: why.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it starts with '.' or '-'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("it contains characters other than letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn rollback_restores_files_and_removes_new_ones() {
        let t = tempfile::tempdir().unwrap();
        let old = t.path().join("old");
        fs::write(&old, b"before").unwrap();
        let mtime = fs::metadata(&old).unwrap().mtime_nsec();
        let ino = fs::metadata(&old).unwrap().ino();
        {
            let mut txn = Txn::new();
            let sub = t.path().join("a/b");
            txn.create_dir_all(&sub).unwrap();
            txn.write(&sub.join("new"), b"x", PRIVATE_MODE).unwrap();
            txn.write(&old, b"after", PUBLIC_MODE).unwrap();
            assert_eq!(fs::read(&old).unwrap(), b"after");
        }
        assert_eq!(fs::read(&old).unwrap(), b"before");
        assert_eq!(fs::metadata(&old).unwrap().mtime_nsec(), mtime);
        assert_eq!(fs::metadata(&old).unwrap().ino(), ino);
        assert!(!t.path().join("a").exists());
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn removal_is_undone_unless_committed() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("key");
        fs::write(&f, b"k").unwrap();
        {
            let mut txn = Txn::new();
            txn.remove(&f).unwrap();
            txn.remove(&t.path().join("absent")).unwrap();
            assert!(!f.exists());
        }
        assert_eq!(fs::read(&f).unwrap(), b"k");
        let mut txn = Txn::new();
        txn.remove(&f).unwrap();
        txn.commit();
        assert!(!f.exists());
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "no backup left");
    }

    #[test]
    fn commit_keeps_writes_with_modes() {
        let t = tempfile::tempdir().unwrap();
        let mut txn = Txn::new();
        let d = t.path().join("d");
        txn.create_dir_all(&d).unwrap();
        txn.write(&d.join("k"), b"key", PRIVATE_MODE).unwrap();
        txn.write(&d.join("k"), b"key2", PRIVATE_MODE).unwrap();
        txn.commit();
        assert_eq!(fs::read(d.join("k")).unwrap(), b"key2");
        assert_eq!(fs::metadata(d.join("k")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no backups left");
    }

    #[test]
    fn lock_is_exclusive_between_threads() {
        let t = tempfile::tempdir().unwrap();
        let first = lock(t.path()).unwrap();
        let p = t.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            let _l = lock(&p).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        h.join().unwrap();
    }
}
