//! Ansible Vault: data encrypted by `ansible-vault` (`$ANSIBLE_VAULT;1.1;AES256`, and 1.2 with a
//! vault id), read wherever castellan reads YAML: whole files (inventories, `group_vars/`,
//! `host_vars/`, vars files, `-e @file`, role vars and defaults, playbooks and task files) and
//! `!vault |` tagged values (src/yaml.rs). The passwords are the process's [`keyring`], given on
//! the command line; every value decrypted is [`revealed`]: castellan never prints it.
//!
//! This layer knows neither YAML nor the command line: it parses the [`envelope`], tries the
//! passwords with the [`cipher`], and encrypts (the `secret` module stores what it generates in
//! this format, readable by `ansible-vault view`).
pub mod cipher;
pub mod envelope;
pub mod keyring;
pub mod revealed;

pub use envelope::{is_vault, HEADER};
pub use keyring::Secret;

/// Why vault data could not be read. The messages name sources and labels, never a password
/// or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error(
        "found vault-encrypted data but no vault password was given: use \
         --vault-password-file FILE, --vault-id [LABEL@]FILE, --ask-vault-pass or \
         ANSIBLE_VAULT_PASSWORD_FILE"
    )]
    NoPassword,
    #[error("cannot decrypt the vault data{}: no vault password given decrypts it (tried: {tried})",
        label.as_ref().map(|l| format!(" (vault id `{l}`)")).unwrap_or_default())]
    WrongPassword {
        label: Option<String>,
        tried: String,
    },
    #[error("the vault data is malformed: {0}")]
    Malformed(String),
}

/// Decrypt vault text with these passwords (those given for its vault id first).
pub fn decrypt_with(text: &str, secrets: &[Secret]) -> Result<Vec<u8>, VaultError> {
    let env = envelope::parse(text).map_err(VaultError::Malformed)?;
    if secrets.is_empty() {
        return Err(VaultError::NoPassword);
    }
    let order = keyring::in_order_for(secrets, env.label.as_deref());
    for s in &order {
        match cipher::open(&s.password, &env.salt, &env.mac, &env.ciphertext) {
            Ok(plain) => return Ok(plain),
            Err(cipher::OpenError::Mismatch) => continue,
            Err(cipher::OpenError::Padding) => {
                return Err(VaultError::Malformed(format!(
                    "it decrypts with the password from {} but its padding is wrong",
                    s.source
                )))
            }
        }
    }
    let tried: Vec<String> = order
        .iter()
        .map(|s| match s.label.as_str() {
            "default" => s.source.clone(),
            l => format!("vault id `{l}` from {}", s.source),
        })
        .collect();
    Err(VaultError::WrongPassword {
        label: env.label,
        tried: tried.join(", "),
    })
}

/// Decrypt vault text with the passwords given on the command line.
pub fn decrypt(text: &str) -> Result<Vec<u8>, VaultError> {
    decrypt_with(text, &keyring::secrets())
}

/// Encrypt `plain` as `ansible-vault encrypt` does with this password (1.2 with its label when
/// it has one other than `default`).
pub fn encrypt_with(plain: &[u8], secret: &Secret) -> Result<String, String> {
    let s = cipher::seal(&secret.password, plain)?;
    Ok(envelope::format(
        Some(&secret.label),
        &s.salt,
        &s.mac,
        &s.ciphertext,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Fixtures encrypted by the real `ansible-vault` (tests/fixtures/vault/README.md).
    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/vault")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn secret(label: &str, file: &str) -> Secret {
        Secret {
            label: label.into(),
            password: fixture(file).trim().as_bytes().to_vec(),
            source: format!("password file {file}"),
        }
    }

    /// The `!vault |` block of an `encrypt_string` output, unindented.
    fn inline(name: &str) -> String {
        fixture(name)
            .lines()
            .skip(1)
            .map(|l| format!("{}\n", l.trim()))
            .collect()
    }

    #[test]
    fn ansible_vault_files_decrypt() {
        let default = secret("default", "password.txt");
        let prod = secret("prod", "prod-password.txt");
        let plain = decrypt_with(&fixture("vars-1.1.yml"), std::slice::from_ref(&default)).unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert!(
            text.contains("db_password: \"s3cr3t-from-whole-file\""),
            "{text}"
        );
        // 1.2 with a vault id: found with the prod password whatever the order.
        let plain = decrypt_with(
            &fixture("vars-1.2-prod.yml"),
            &[default.clone(), prod.clone()],
        );
        assert_eq!(String::from_utf8(plain.unwrap()).unwrap(), text);
        assert_eq!(
            decrypt_with(&inline("string-1.1.yml"), &[prod.clone(), default.clone()]).unwrap(),
            b"inline-pass-4f2a"
        );
        assert_eq!(
            decrypt_with(&inline("string-1.2-prod.yml"), std::slice::from_ref(&prod)).unwrap(),
            b"inline-prod-pass-88e0"
        );
        assert_eq!(
            String::from_utf8(decrypt_with(&inline("string-multiline.yml"), &[default]).unwrap())
                .unwrap(),
            "one line\nand a second, with unicode: é\n"
        );
    }

    #[test]
    fn wrong_missing_and_malformed() {
        let default = secret("default", "password.txt");
        let prod = secret("prod", "prod-password.txt");
        let e = decrypt_with(
            &fixture("vars-1.2-prod.yml"),
            std::slice::from_ref(&default),
        )
        .unwrap_err();
        assert!(matches!(e, VaultError::WrongPassword { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("vault id `prod`") && msg.contains("password file password.txt"),
            "{msg}"
        );
        assert!(!msg.contains("correct horse"), "{msg}");
        assert_eq!(
            decrypt_with(&fixture("vars-1.1.yml"), &[]),
            Err(VaultError::NoPassword)
        );
        let mut broken = fixture("vars-1.1.yml");
        broken.insert(30, 'x');
        assert!(matches!(
            decrypt_with(&broken, std::slice::from_ref(&default)),
            Err(VaultError::Malformed(_))
        ));
        // One changed hex digit of the ciphertext: the HMAC no longer matches.
        let good = fixture("vars-1.1.yml");
        let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
        let last = lines.len() - 1;
        let l = &mut lines[last];
        let c = if l.ends_with('0') { "1" } else { "0" };
        l.replace_range(l.len() - 1.., c);
        let altered = lines.join("\n");
        assert!(matches!(
            decrypt_with(&altered, &[default, prod]),
            Err(VaultError::WrongPassword { .. }) | Err(VaultError::Malformed(_))
        ));
    }

    #[test]
    fn encrypt_then_decrypt() {
        let prod = secret("prod", "prod-password.txt");
        let t = encrypt_with(b"generated value", &prod).unwrap();
        assert!(t.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"), "{t}");
        assert_eq!(decrypt_with(&t, &[prod]).unwrap(), b"generated value");
    }
}
