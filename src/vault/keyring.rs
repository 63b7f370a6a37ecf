//! The vault passwords of this process: what `--vault-password-file`, `--vault-id`,
//! `--ask-vault-pass` and `ANSIBLE_VAULT_PASSWORD_FILE` gave, in that order, set once by the
//! command line before anything is loaded (src/cli/vault.rs) and read by every loader.
use std::sync::RwLock;

/// One vault password and the vault id it was given for.
#[derive(Clone)]
pub struct Secret {
    /// The vault id (`prod` in `--vault-id prod@file`); `default` when none was given.
    pub label: String,
    pub password: Vec<u8>,
    /// Where it came from, for messages (`password file pw.txt`, `prompt`): never the password.
    pub source: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}, from {})", self.label, self.source)
    }
}

static KEYRING: RwLock<Vec<Secret>> = RwLock::new(Vec::new());

/// Add a password (after those already given).
pub fn add(secret: Secret) {
    let mut k = KEYRING.write().unwrap_or_else(|e| e.into_inner());
    k.push(secret);
}

/// Every password given, in order.
pub fn secrets() -> Vec<Secret> {
    KEYRING.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The order to try the passwords in for data labelled `label`: those given for that vault id
/// first, then the others (as Ansible does unless told to match ids strictly).
pub fn in_order_for(secrets: &[Secret], label: Option<&str>) -> Vec<Secret> {
    let mut out: Vec<Secret> = secrets
        .iter()
        .filter(|s| Some(s.label.as_str()) == label)
        .cloned()
        .collect();
    out.extend(
        secrets
            .iter()
            .filter(|s| Some(s.label.as_str()) != label)
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(label: &str, pw: &str) -> Secret {
        Secret {
            label: label.into(),
            password: pw.as_bytes().to_vec(),
            source: "a test".into(),
        }
    }

    #[test]
    fn the_matching_vault_id_is_tried_first() {
        let all = [s("default", "a"), s("prod", "b"), s("dev", "c")];
        let order: Vec<String> = in_order_for(&all, Some("prod"))
            .iter()
            .map(|x| x.label.clone())
            .collect();
        assert_eq!(order, ["prod", "default", "dev"]);
        let order: Vec<String> = in_order_for(&all, None)
            .iter()
            .map(|x| x.label.clone())
            .collect();
        assert_eq!(order, ["default", "prod", "dev"]);
        assert!(!format!("{:?}", all[0]).contains("\"a\""));
    }
}
