//! Ansible Vault's `AES256` cipher, as `ansible.parsing.vault.VaultAES256` does it: PBKDF2-HMAC-
//! SHA256 (10,000 iterations) derives 80 bytes from the password and the salt (AES key, HMAC
//! key, initial counter block); the plaintext is PKCS#7-padded and AES-256-CTR encrypted; an
//! HMAC-SHA256 of the ciphertext authenticates it. Everything is aws-lc-rs, the binary's one
//! crypto provider (no new crate).
use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{hmac, pbkdf2};

const ITERATIONS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
/// AES's block, the unit of the PKCS#7 padding.
const BLOCK: usize = 16;
/// Ansible's salt length.
pub const SALT_LEN: usize = 32;

/// What decryption can find wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The HMAC does not match: another password (or altered data).
    Mismatch,
    /// The HMAC matched but the padding is wrong: the data was made wrongly.
    Padding,
}

struct Keys {
    aes: [u8; KEY_LEN],
    hmac: [u8; KEY_LEN],
    iv: [u8; IV_LEN],
}

fn derive(password: &[u8], salt: &[u8]) -> Keys {
    let mut out = [0u8; 2 * KEY_LEN + IV_LEN];
    // 10,000 is not zero.
    let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        &mut out,
    );
    let mut k = Keys {
        aes: [0; KEY_LEN],
        hmac: [0; KEY_LEN],
        iv: [0; IV_LEN],
    };
    k.aes.copy_from_slice(&out[..KEY_LEN]);
    k.hmac.copy_from_slice(&out[KEY_LEN..2 * KEY_LEN]);
    k.iv.copy_from_slice(&out[2 * KEY_LEN..]);
    k
}

/// Decrypt `ciphertext` with `password`, after checking its HMAC (`mac`) in constant time.
pub fn open(
    password: &[u8],
    salt: &[u8],
    mac: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, OpenError> {
    let k = derive(password, salt);
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, &k.hmac);
    hmac::verify(&hkey, ciphertext, mac).map_err(|_| OpenError::Mismatch)?;
    let mut buf = ciphertext.to_vec();
    let key = UnboundCipherKey::new(&AES_256, &k.aes)
        .and_then(DecryptingKey::ctr)
        .map_err(|_| OpenError::Padding)?;
    let plain = key
        .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(k.iv)))
        .map_err(|_| OpenError::Padding)?;
    unpad(plain).map(<[u8]>::to_vec).ok_or(OpenError::Padding)
}

/// PKCS#7: the last byte says how many bytes of padding (1 to 16, each that value) end the data.
fn unpad(data: &[u8]) -> Option<&[u8]> {
    let &last = data.last()?;
    let n = usize::from(last);
    if n == 0 || n > BLOCK || n > data.len() {
        return None;
    }
    let (body, pad) = data.split_at(data.len() - n);
    pad.iter().all(|&b| b == last).then_some(body)
}

/// What encryption makes: the salt, the HMAC and the ciphertext, for the envelope.
pub struct Sealed {
    pub salt: Vec<u8>,
    pub mac: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Encrypt `plain` with `password` and a fresh random salt.
pub fn seal(password: &[u8], plain: &[u8]) -> Result<Sealed, String> {
    let mut salt = vec![0u8; SALT_LEN];
    crate::entropy::fill(&mut salt).map_err(|e| format!("vault salt: {e}"))?;
    seal_with_salt(password, plain, salt)
}

fn seal_with_salt(password: &[u8], plain: &[u8], salt: Vec<u8>) -> Result<Sealed, String> {
    let k = derive(password, &salt);
    let pad = BLOCK - plain.len() % BLOCK;
    let mut buf = plain.to_vec();
    buf.extend(std::iter::repeat_n(pad as u8, pad));
    let key = UnboundCipherKey::new(&AES_256, &k.aes)
        .and_then(EncryptingKey::ctr)
        .map_err(|_| "AES-256-CTR is not available".to_string())?;
    key.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(k.iv)))
        .map_err(|_| "AES-256-CTR encryption failed".to_string())?;
    let hkey = hmac::Key::new(hmac::HMAC_SHA256, &k.hmac);
    let mac = hmac::sign(&hkey, &buf).as_ref().to_vec();
    Ok(Sealed {
        salt,
        mac,
        ciphertext: buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_gives_the_plaintext_back() {
        for plain in [
            &b""[..],
            b"x",
            b"exactly sixteen!",
            b"a longer text of several blocks\n",
        ] {
            let s = seal(b"pw", plain).unwrap();
            assert_eq!(s.ciphertext.len() % BLOCK, 0);
            assert!(s.ciphertext.len() > plain.len(), "always padded");
            assert_eq!(open(b"pw", &s.salt, &s.mac, &s.ciphertext).unwrap(), plain);
            assert_eq!(
                open(b"other", &s.salt, &s.mac, &s.ciphertext),
                Err(OpenError::Mismatch)
            );
        }
    }

    #[test]
    fn altered_data_fails_the_hmac() {
        let s = seal(b"pw", b"secret value").unwrap();
        let mut c = s.ciphertext.clone();
        c[0] ^= 1;
        assert_eq!(open(b"pw", &s.salt, &s.mac, &c), Err(OpenError::Mismatch));
        let mut m = s.mac.clone();
        m[31] ^= 1;
        assert_eq!(
            open(b"pw", &s.salt, &m, &s.ciphertext),
            Err(OpenError::Mismatch)
        );
        assert_eq!(
            open(b"pw", &s.salt, &s.mac[..16], &s.ciphertext),
            Err(OpenError::Mismatch)
        );
    }

    #[test]
    fn bad_padding_is_refused() {
        assert_eq!(unpad(b"abc\x01"), Some(&b"abc"[..]));
        assert_eq!(unpad(&[16u8; 16]), Some(&b""[..]));
        for bad in [&b""[..], b"abc\x00", b"abc\x11", b"ab\x02\x03", b"\x05"] {
            assert_eq!(unpad(bad), None, "{bad:?}");
        }
        // An HMAC that matches over badly padded data (made here on purpose).
        let salt = vec![7u8; SALT_LEN];
        let k = derive(b"pw", &salt);
        let mut buf = vec![b'a'; BLOCK];
        let key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_256, &k.aes).unwrap()).unwrap();
        key.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(FixedLength::from(k.iv)))
            .unwrap();
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k.hmac), &buf);
        assert_eq!(
            open(b"pw", &salt, mac.as_ref(), &buf),
            Err(OpenError::Padding)
        );
    }

    #[test]
    fn a_fixed_salt_gives_a_fixed_result() {
        let a = seal_with_salt(b"pw", b"v", vec![1; SALT_LEN]).unwrap();
        let b = seal_with_salt(b"pw", b"v", vec![1; SALT_LEN]).unwrap();
        assert_eq!((a.mac, a.ciphertext), (b.mac, b.ciphertext));
        let c = seal(b"pw", b"v").unwrap();
        let d = seal(b"pw", b"v").unwrap();
        assert_ne!(c.salt, d.salt, "a fresh salt each time");
    }
}
