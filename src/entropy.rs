//! Random bytes from the operating system (`getrandom(2)`), for nonces, temporary names,
//! serial numbers, salts and generated secrets.
//!
//! Not through the crypto library's generator: aws-lc seeds its own from a CPU-jitter source
//! whose first use costs about 35 ms of CPU, paid on every run that only needs a nonce (every
//! remote session does). The kernel's generator is what that seed comes from anyway.

/// Fill `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("no random bytes available: {e}"))
}

/// `bytes` random bytes in lower-case hex; where the system has none (never seen), the clock's
/// nanoseconds mixed with the process id, which still cannot be guessed in advance from outside
/// the machine (for names and nonces only: never for secrets).
pub fn hex_or_clock(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    if fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = ((t as u64) ^ u64::from(std::process::id()).rotate_left(32)).to_be_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = seed[i % 8] ^ (i / 8) as u8;
        }
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_the_length_asked_and_differs_between_calls() {
        let a = hex_or_clock(8);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, hex_or_clock(8));
    }

    #[test]
    fn fill_fills() {
        let mut b = [0u8; 32];
        fill(&mut b).unwrap();
        assert_ne!(b, [0u8; 32]);
    }
}
