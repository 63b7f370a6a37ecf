//! The shell scripts `pki_csr` runs on a host as the key's owner, with the `openssl` command-line
//! tool and POSIX sh + coreutils only: a certificate signing request made from the key there
//! (reads the key, writes nothing), a new key made under `umask 077` at a temporary name beside
//! the key with its request, putting that key in place (the old one kept as a hard-link backup),
//! and discarding it. No script prints a key: what comes back is a request, a path, a name.
use crate::connection::backup::Suffixes;
use crate::connection::quote::quote_str;
use crate::pki::KeyType;

/// The exit code of a script that found no openssl command-line tool (EX_UNAVAILABLE; 127 is
/// what connections take for a missing shell).
pub const NO_OPENSSL: i32 = 69;

/// Prefix of the temporary name a new key gets beside the key.
const TMP_PREFIX: &str = ".castellan-key.";

/// What the scripts work on.
#[derive(Clone, Debug)]
pub struct KeyScripts {
    /// The openssl program (`openssl`, or a path).
    pub openssl: String,
    /// The key's path on the host.
    pub key: String,
    /// OpenSSL-style subject of the request (`/CN=db1.example.com`).
    pub subject: String,
    pub key_type: KeyType,
    /// Group to give a new key (its owner is whoever runs the script).
    pub group: Option<String>,
}

fn q(s: &str) -> Result<String, String> {
    quote_str(s).map_err(|e| e.to_string())
}

/// The directory of a path (`.` for a bare name).
fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

impl KeyScripts {
    /// `o=...` and the check that it is there: exit [`NO_OPENSSL`] with a message when not.
    fn prelude(&self) -> Result<String, String> {
        Ok(format!(
            "o={}\ncommand -v \"$o\" >/dev/null 2>&1 || {{ printf '%s\\n' \"no openssl command-line tool ($o) on this host\" >&2; exit {NO_OPENSSL}; }}\n",
            q(&self.openssl)?
        ))
    }

    fn req(&self, key: &str) -> Result<String, String> {
        Ok(format!(
            "\"$o\" req -new -key {key} -subj {} -utf8 -sha256",
            q(&self.subject)?
        ))
    }

    fn genpkey(&self) -> String {
        match self.key_type {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let bits = match self.key_type {
                    KeyType::Rsa2048 => 2048,
                    KeyType::Rsa3072 => 3072,
                    _ => 4096,
                };
                format!("-algorithm RSA -pkeyopt rsa_keygen_bits:{bits}")
            }
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => format!(
                "-algorithm EC -pkeyopt ec_paramgen_curve:{} -pkeyopt ec_param_enc:named_curve",
                if self.key_type == KeyType::EcdsaP256 {
                    "P-256"
                } else {
                    "P-384"
                }
            ),
        }
    }

    /// The request of the existing key, PEM on stdout. Reads only.
    pub fn request(&self) -> Result<String, String> {
        Ok(format!(
            "{}exec {}\n",
            self.prelude()?,
            self.req(&q(&self.key)?)?
        ))
    }

    /// A new key at a temporary name beside the key (mode 0600 from its creation: umask 077,
    /// mktemp), then its request. Prints `@@tmp` and the path, `@@csr` and the request.
    pub fn generate(&self) -> Result<String, String> {
        let mut s = self.prelude()?;
        s.push_str("umask 077\n");
        s.push_str(&format!(
            "tmp=$(mktemp {}) || exit 1\n",
            q(&format!("{}/{TMP_PREFIX}XXXXXX", dir_of(&self.key)))?
        ));
        s.push_str(&format!(
            "if ! err=$(\"$o\" genpkey {} -out \"$tmp\" 2>&1 >/dev/null); then rm -f \"$tmp\"; printf '%s\\n' \"$err\" >&2; exit 1; fi\n",
            self.genpkey()
        ));
        if let Some(g) = &self.group {
            s.push_str(&format!(
                "chgrp {} \"$tmp\" || {{ rm -f \"$tmp\"; exit 1; }}\n",
                q(g)?
            ));
        }
        s.push_str(&format!(
            "csr=$({}) || {{ rm -f \"$tmp\"; exit 1; }}\n",
            self.req("\"$tmp\"")?
        ));
        s.push_str("echo @@tmp; printf '%s\\n' \"$tmp\"\necho @@csr; printf '%s\\n' \"$csr\"\n");
        Ok(s)
    }

    /// Whether `tmp` is a name [`KeyScripts::generate`] makes for this key.
    pub fn is_tmp(&self, tmp: &str) -> bool {
        tmp.strip_prefix(dir_of(&self.key))
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_prefix(TMP_PREFIX))
            .is_some_and(|r| !r.is_empty() && !r.contains('/'))
    }

    /// Puts the new key `tmp` in place; with `backup`, the old key lives on as a hard link
    /// (Ansible's name, else a random one), printed after `@@backup`.
    pub fn promote(&self, tmp: &str, backup: Option<&Suffixes>) -> Result<String, String> {
        let (key, tmp) = (q(&self.key)?, q(tmp)?);
        let mut s = format!(
            "[ -f {tmp} ] || {{ printf '%s\\n' \"the new key {tmp} is gone\" >&2; exit 1; }}\n"
        );
        if let Some(b) = backup {
            s.push_str(&format!(
                "if [ -e {key} ] || [ -L {key} ]; then\n  b={key}{}\n  ln -P {key} \"$b\" 2>/dev/null || {{ b={key}{}; ln -P {key} \"$b\"; }} || exit 1\n  echo @@backup; printf '%s\\n' \"$b\"\nfi\n",
                q(&b.usual)?,
                q(&b.fallback)?
            ));
        }
        s.push_str(&format!("mv -f {tmp} {key}\n"));
        Ok(s)
    }

    /// Removes the new key `tmp` (a step after it failed).
    pub fn discard(&self, tmp: &str) -> Result<String, String> {
        Ok(format!("rm -f {}\n", q(tmp)?))
    }
}

/// The message of a script that exited [`NO_OPENSSL`].
pub fn no_openssl(host: &str, openssl: &str) -> String {
    format!(
        "{host} has no openssl command-line tool ({openssl} is not found): the key is made on the \
         host with it; install it (Debian/Ubuntu: apt-get install openssl; RHEL: dnf install \
         openssl), or set `openssl` to its path"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn scripts(dir: &std::path::Path, key_type: KeyType) -> KeyScripts {
        KeyScripts {
            openssl: "openssl".into(),
            key: dir.join("server.key").display().to_string(),
            subject: "/O=Example/CN=db1.example.com".into(),
            key_type,
            group: None,
        }
    }

    fn sh(script: &str) -> (i32, String, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn section<'a>(out: &'a str, name: &str) -> &'a str {
        let start = out.find(&format!("@@{name}\n")).unwrap() + name.len() + 3;
        let rest = &out[start..];
        rest.find("\n@@").map_or(rest, |i| &rest[..i]).trim_end()
    }

    #[test]
    fn a_key_is_made_0600_beside_the_old_one_then_put_in_place_with_a_backup() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let s = scripts(t.path(), KeyType::EcdsaP256);
        std::fs::write(&s.key, "old key\n").unwrap();
        let (rc, out, err) = sh(&s.generate().unwrap());
        assert_eq!(rc, 0, "{err}");
        let tmp = section(&out, "tmp");
        assert!(s.is_tmp(tmp), "{tmp}");
        let mode = std::fs::metadata(tmp).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let csr = crate::pki::read_csr(section(&out, "csr")).unwrap();
        assert_eq!(csr.subject, "/O=Example/CN=db1.example.com");
        assert_eq!(csr.key_type, KeyType::EcdsaP256);
        assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"));
        let sfx = Suffixes {
            usual: ".bak~".into(),
            fallback: ".bak2~".into(),
        };
        let (rc, out, err) = sh(&s.promote(tmp, Some(&sfx)).unwrap());
        assert_eq!(rc, 0, "{err}");
        assert_eq!(section(&out, "backup"), format!("{}.bak~", s.key));
        assert_eq!(
            std::fs::read_to_string(format!("{}.bak~", s.key)).unwrap(),
            "old key\n"
        );
        let key = std::fs::read_to_string(&s.key).unwrap();
        assert!(crate::pki::csr::csr_matches_key(&csr, &key));
        // The request of the key in place: same key, read only.
        let (rc, out, _) = sh(&s.request().unwrap());
        assert_eq!(rc, 0);
        assert_eq!(
            crate::pki::read_csr(&out).unwrap().public_key,
            csr.public_key
        );
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 2);
    }

    #[test]
    fn rsa_keys_have_the_size_asked() {
        let t = tempfile::tempdir().unwrap();
        let s = scripts(t.path(), KeyType::Rsa2048);
        let (rc, out, err) = sh(&s.generate().unwrap());
        assert_eq!(rc, 0, "{err}");
        assert_eq!(
            crate::pki::read_csr(section(&out, "csr")).unwrap().key_type,
            KeyType::Rsa2048
        );
        let (rc, _, _) = sh(&s.discard(section(&out, "tmp")).unwrap());
        assert_eq!(rc, 0);
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_openssl_says_so() {
        let t = tempfile::tempdir().unwrap();
        let mut s = scripts(t.path(), KeyType::EcdsaP256);
        s.openssl = "/nonexistent/openssl".into();
        for script in [s.generate().unwrap(), s.request().unwrap()] {
            let (rc, _, err) = sh(&script);
            assert_eq!(rc, NO_OPENSSL);
            assert!(err.contains("no openssl command-line tool"), "{err}");
        }
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        assert!(no_openssl("db1", "openssl").contains("apt-get install openssl"));
    }

    #[test]
    fn temporary_names_are_recognised() {
        let s = KeyScripts {
            openssl: "openssl".into(),
            key: "/etc/pg/server.key".into(),
            subject: "/CN=x".into(),
            key_type: KeyType::EcdsaP256,
            group: None,
        };
        assert!(s.is_tmp("/etc/pg/.castellan-key.AbC123"));
        assert!(!s.is_tmp("/etc/pg/server.key"));
        assert!(!s.is_tmp("/tmp/.castellan-key.AbC123"));
        assert!(!s.is_tmp("/etc/pg/.castellan-key."));
        assert_eq!(dir_of("server.key"), ".");
        assert_eq!(dir_of("/server.key"), "/");
    }
}
