//! The vault options: where the vault passwords come from, as `ansible-playbook` takes them.
//! `--vault-id [LABEL@]SOURCE` and `--vault-password-file FILE` (both repeatable; SOURCE is a
//! file or `prompt`), `--ask-vault-pass`, and `ANSIBLE_VAULT_PASSWORD_FILE`. A file that is
//! executable is run and its standard output is the password (a `NAME-client` script is asked
//! with `--vault-id LABEL`, as Ansible does); any other file is read, surrounding white space
//! dropped. Read once, before anything is loaded, into the process's keyring
//! ([`crate::vault::keyring`]); each password is a secret value from then on (never printed).
use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;

use crate::error::{Error, Result};
use crate::vault::{keyring, revealed, Secret};

/// The label of a password given without a vault id.
const DEFAULT_ID: &str = "default";

#[derive(Args, Debug, Clone, Default)]
pub struct VaultArgs {
    /// A file holding a vault password (repeatable); an executable file is run and its output is
    /// the password
    #[arg(
        long = "vault-password-file",
        visible_alias = "vault-pass-file",
        value_name = "FILE"
    )]
    pub password_files: Vec<PathBuf>,
    /// A vault id and its password's source: `[LABEL@]FILE` or `[LABEL@]prompt` (repeatable)
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE")]
    pub vault_ids: Vec<String>,
    /// Ask for the vault password on the terminal (not echoed)
    #[arg(long = "ask-vault-pass", visible_alias = "ask-vault-password")]
    pub ask: bool,
}

/// Where one password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Prompt,
}

/// The sources the options and the environment name, in order, with their labels.
fn sources(args: &VaultArgs, env_file: Option<String>) -> Vec<(String, Source)> {
    let mut out = Vec::new();
    for id in &args.vault_ids {
        let (label, src) = match id.split_once('@') {
            Some((l, s)) if !l.is_empty() => (l.to_string(), s),
            _ => (DEFAULT_ID.to_string(), id.as_str()),
        };
        let src = match src {
            "prompt" | "prompt_ask_vault_pass" => Source::Prompt,
            f => Source::File(PathBuf::from(f)),
        };
        out.push((label, src));
    }
    for f in &args.password_files {
        out.push((DEFAULT_ID.to_string(), Source::File(f.clone())));
    }
    if args.ask {
        out.push((DEFAULT_ID.to_string(), Source::Prompt));
    }
    if let Some(f) = env_file.filter(|f| !f.is_empty()) {
        let src = Source::File(PathBuf::from(f));
        if !out.iter().any(|(_, s)| *s == src) {
            out.push((DEFAULT_ID.to_string(), src));
        }
    }
    out
}

/// Read every password the options and `ANSIBLE_VAULT_PASSWORD_FILE` name into the keyring.
pub fn load(args: &VaultArgs) -> Result<()> {
    for (label, src) in sources(args, std::env::var("ANSIBLE_VAULT_PASSWORD_FILE").ok()) {
        let (password, source) = match &src {
            Source::File(p) => (
                from_file(p, &label)?,
                format!("password file {}", p.display()),
            ),
            Source::Prompt => (prompt(&label)?, "the prompt".to_string()),
        };
        if password.is_empty() {
            return Err(Error::invalid_noloc(format!(
                "the vault password from {source} is empty"
            )));
        }
        if let Ok(s) = std::str::from_utf8(&password) {
            revealed::register(s);
        }
        keyring::add(Secret {
            label,
            password,
            source,
        });
    }
    Ok(())
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

/// A password file: run when executable, read otherwise.
fn from_file(path: &Path, label: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::invalid_noloc(format!(
            "cannot read the vault password file {}: {e}",
            path.display()
        ))
    })?;
    if !is_executable(&meta) {
        let data = std::fs::read(path).map_err(|e| Error::read(path, &e))?;
        return Ok(data.trim_ascii().to_vec());
    }
    // `pw.sh` is the file here, not a program on the PATH.
    let mut cmd = Command::new(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem.ends_with("-client") {
        cmd.args(["--vault-id", label]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            Error::invalid_noloc(format!(
                "cannot run the vault password script {}: {e}",
                path.display()
            ))
        })?;
    if !out.status.success() {
        return Err(Error::invalid_noloc(format!(
            "the vault password script {} failed ({})",
            path.display(),
            out.status
        )));
    }
    let s = &out.stdout;
    let start = s.iter().position(|b| !matches!(b, b'\r' | b'\n'));
    let end = s.iter().rposition(|b| !matches!(b, b'\r' | b'\n'));
    Ok(match (start, end) {
        (Some(a), Some(b)) => s[a..=b].to_vec(),
        _ => Vec::new(),
    })
}

/// Ask on the terminal, echo off (restored afterwards, also on error).
fn prompt(label: &str) -> Result<Vec<u8>> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            Error::Usage(format!(
                "--ask-vault-pass needs a terminal to ask on (/dev/tty: {e}); use \
                 --vault-password-file instead"
            ))
        })?;
    let saved = tcgetattr(&tty)
        .map_err(|e| Error::Usage(format!("--ask-vault-pass: not a terminal ({e})")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    let what = if label == DEFAULT_ID {
        "Vault password: ".to_string()
    } else {
        format!("Vault password ({label}): ")
    };
    let mut w = &tty;
    let _ = w.write_all(what.as_bytes());
    let _ = w.flush();
    tcsetattr(&tty, SetArg::TCSANOW, &quiet)
        .map_err(|e| Error::Usage(format!("--ask-vault-pass: cannot turn echo off ({e})")))?;
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
    read.map_err(|e| Error::Usage(format!("--ask-vault-pass: cannot read the password ({e})")))?;
    Ok(line.trim_end_matches(['\r', '\n']).as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_in_order_with_their_labels() {
        let args = VaultArgs {
            password_files: vec!["pw.txt".into()],
            vault_ids: vec![
                "prod@prod.txt".into(),
                "dev@prompt".into(),
                "plain.txt".into(),
            ],
            ask: true,
        };
        let got = sources(&args, Some("env.txt".into()));
        let want = [
            ("prod", Source::File("prod.txt".into())),
            ("dev", Source::Prompt),
            ("default", Source::File("plain.txt".into())),
            ("default", Source::File("pw.txt".into())),
            ("default", Source::Prompt),
            ("default", Source::File("env.txt".into())),
        ];
        assert_eq!(got.len(), want.len());
        for ((l, s), (wl, ws)) in got.iter().zip(want) {
            assert_eq!((l.as_str(), s), (wl, &ws));
        }
        // The environment's file is not read twice.
        let args = VaultArgs {
            password_files: vec!["pw.txt".into()],
            ..VaultArgs::default()
        };
        assert_eq!(sources(&args, Some("pw.txt".into())).len(), 1);
        assert!(sources(&VaultArgs::default(), Some(String::new())).is_empty());
    }

    #[test]
    fn password_files_and_scripts() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pw.txt");
        std::fs::write(&f, "  spaced password \n").unwrap();
        assert_eq!(from_file(&f, "default").unwrap(), b"spaced password");
        let s = d.path().join("pw.sh");
        std::fs::write(&s, "#!/bin/sh\nprintf 'from script \\n\\n'\n").unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(from_file(&s, "default").unwrap(), b"from script ");
        let c = d.path().join("vault-client.sh");
        std::fs::write(&c, "#!/bin/sh\necho \"id=$2\"\n").unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(from_file(&c, "prod").unwrap(), b"id=prod");
        let bad = d.path().join("fail.sh");
        std::fs::write(&bad, "#!/bin/sh\nexit 3\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = from_file(&bad, "default").unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
        assert_eq!(e.exit_code(), 4);
        let e = from_file(&d.path().join("none"), "default").unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot read the vault password file"),
            "{e}"
        );
    }
}
