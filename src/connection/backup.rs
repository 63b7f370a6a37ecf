//! Backups (`backup: yes`): the file being replaced lives on under a new name beside it.
//!
//! A backup is a hard link to the old file, made just before the new content is renamed over
//! the path (every write is a rename, so the old inode survives under the backup name only). A
//! hard link (`link(2)`, `ln -P`) never follows a symbolic link and fails when the name exists:
//! a name planted in the directory by whoever can write there (postgres, for its configuration
//! directory) is never written through, chmodded or chowned. The backup is the old inode, so it
//! keeps the old mode and owner (a backup of a 0600 key is 0600). A replaced symbolic link is
//! backed up as the link.
//!
//! The name is Ansible's, `path.PID.YYYY-MM-DD@HH:MM:SS~`; when that name is taken, the backup
//! goes to `path.PID.YYYY-MM-DD@HH:MM:SS.RANDOM~` instead (64 random bits), so a planted name
//! cannot block it either.
use std::path::{Path, PathBuf};

/// The two name suffixes a backup of a path may take: Ansible's, then an unpredictable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suffixes {
    pub usual: String,
    pub fallback: String,
}

impl Suffixes {
    /// Suffixes for a backup made now by this process.
    pub fn now() -> Suffixes {
        let now = time::OffsetDateTime::now_utc();
        let fmt =
            time::macros::format_description!("[year]-[month]-[day]@[hour]:[minute]:[second]");
        let stamp = now.format(&fmt).unwrap_or_else(|_| "backup".into());
        let pid = std::process::id();
        Suffixes {
            usual: format!(".{pid}.{stamp}~"),
            fallback: format!(".{pid}.{stamp}.{}~", crate::entropy::hex_or_clock(8)),
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Hard-link `path` (not following a link) to its backup name; returns the name used.
pub fn link(path: &Path, names: &Suffixes) -> std::io::Result<PathBuf> {
    let usual = with_suffix(path, &names.usual);
    match std::fs::hard_link(path, &usual) {
        Ok(()) => Ok(usual),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let other = with_suffix(path, &names.fallback);
            std::fs::hard_link(path, &other)?;
            Ok(other)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_taken_name_is_never_written_through() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        fs::write(&p, "old").unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, "victim").unwrap();
        let names = Suffixes::now();
        assert!(names.usual.ends_with('~') && names.fallback.ends_with('~'));
        assert_ne!(names.fallback, Suffixes::now().fallback);
        std::os::unix::fs::symlink(&victim, with_suffix(&p, &names.usual)).unwrap();
        let b = link(&p, &names).unwrap();
        assert_eq!(b, with_suffix(&p, &names.fallback));
        assert_eq!(fs::read(&victim).unwrap(), b"victim");
        assert_eq!(
            fs::metadata(&b).unwrap().ino(),
            fs::metadata(&p).unwrap().ino()
        );
        // Both names taken: a clear error, nothing written.
        let e = link(&p, &names).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&victim).unwrap(), b"victim");
        // A link is backed up as the link.
        let l = t.path().join("l");
        std::os::unix::fs::symlink("victim", &l).unwrap();
        let b = link(&l, &Suffixes::now()).unwrap();
        assert_eq!(fs::read_link(&b).unwrap(), Path::new("victim"));
    }
}
