//! Ansible's `random` and `shuffle` filters. With `seed=` they must give Python's answers
//! (`{{ 59 | random(seed=inventory_hostname) }}` spreads cron minutes the same way Ansible
//! does), so this is Python's `random.Random`: MT19937 seeded by `init_by_array` from the
//! seed (a string becomes `int.from_bytes(s + sha512(s), 'big')`), `getrandbits`-based
//! `randrange`, `choice` and `shuffle`. Without a seed the bytes come from the system.
use serde_json::Value;
use sha2::Digest as _;
use tera::Result;

use super::args::{err, Bound};
use super::pystr;
use super::pyval;

const N: usize = 624;

pub struct Mt {
    state: [u32; N],
    index: usize,
    system: bool,
}

impl Mt {
    fn init_genrand(s: u32) -> [u32; N] {
        let mut mt = [0u32; N];
        mt[0] = s;
        for i in 1..N {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        mt
    }

    /// MT19937's `init_by_array`.
    pub fn from_key(key: &[u32]) -> Mt {
        let mut mt = Self::init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        let klen = key.len().max(1);
        for _ in 0..N.max(klen) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key.get(j).copied().unwrap_or(0))
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= klen {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        Mt {
            state: mt,
            index: N,
            system: false,
        }
    }

    /// Python's `random.seed(a)` for a string or an integer.
    pub fn from_seed(seed: &Value) -> Mt {
        let bytes: Vec<u8> = match seed {
            Value::Number(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                let v = n
                    .as_i64()
                    .map_or_else(|| n.as_u64().unwrap_or(0), |i| i.unsigned_abs());
                v.to_be_bytes().to_vec()
            }
            other => {
                let s = pystr::str(other);
                let mut b = s.as_bytes().to_vec();
                b.extend_from_slice(&sha2::Sha512::digest(s.as_bytes()));
                b
            }
        };
        // The big-endian integer as 32-bit words, least significant first.
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        let mut key: Vec<u32> = bytes
            .rchunks(4)
            .map(|c| c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
            .collect();
        if key.is_empty() {
            key.push(0);
        }
        Self::from_key(&key)
    }

    fn system() -> Mt {
        Mt {
            state: [0; N],
            index: N,
            system: true,
        }
    }

    fn next_u32(&mut self) -> u32 {
        if self.system {
            let mut b = [0u8; 4];
            // No system randomness is not a reason to fail a template: fall back to time.
            if crate::entropy::fill(&mut b).is_err() {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                return t;
            }
            return u32::from_le_bytes(b);
        }
        if self.index >= N {
            for k in 0..N {
                let y = (self.state[k] & 0x8000_0000) | (self.state[(k + 1) % N] & 0x7fff_ffff);
                let mut v = self.state[(k + 397) % N] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Python's `getrandbits(k)` for k <= 64.
    fn getrandbits(&mut self, k: u32) -> u64 {
        if k <= 32 {
            return u64::from(self.next_u32() >> (32 - k));
        }
        let lo = u64::from(self.next_u32());
        let hi = u64::from(self.next_u32() >> (64 - k));
        (hi << 32) | lo
    }

    /// Python's `_randbelow(n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }
}

fn rng(b: &Bound, seed_at: usize) -> Mt {
    match b.get(seed_at) {
        None | Some(Value::Null) => Mt::system(),
        Some(s) => Mt::from_seed(s),
    }
}

/// `random(start=0, step=1, seed=None)`: an integer in range(start, end, step), or an item.
pub fn random(v: &Value, b: &Bound) -> Result<Value> {
    let mut r = rng(b, 2);
    match v {
        Value::Number(_) => {
            let end = pyval::as_i64(v).ok_or_else(|| err(b.name, "expects an integer end"))?;
            let start = b.int_or(0, 0)?;
            let step = match b.int_or(1, 1)? {
                0 => 1,
                s => s,
            };
            let width = end - start;
            let n = if step > 0 {
                (width + step - 1) / step
            } else {
                (width + step + 1) / step
            };
            if n <= 0 {
                return Err(err(
                    b.name,
                    format!("empty range in randrange({start}, {end}, {step})"),
                ));
            }
            let i = r.below(n as u64) as i64;
            Ok(pyval::int_value(start + step * i))
        }
        other => {
            if b.get(0).is_some_and(pyval::truthy) || b.get(1).is_some_and(pyval::truthy) {
                return Err(err(
                    b.name,
                    "start and step can only be used with integer values",
                ));
            }
            let items = pyval::iter(other).map_err(|e| err(b.name, e))?;
            if items.is_empty() {
                return Err(err(b.name, "Cannot choose from an empty sequence"));
            }
            let i = r.below(items.len() as u64) as usize;
            Ok(items[i].clone())
        }
    }
}

/// `shuffle(seed=None)`: Python's Fisher-Yates from the last item down.
pub fn shuffle(v: &Value, b: &Bound) -> Result<Value> {
    let mut items = pyval::iter(v).map_err(|e| err(b.name, e))?;
    let mut r = match b.get(0) {
        Some(s) if pyval::truthy(s) => Mt::from_seed(s),
        _ => Mt::system(),
    };
    for i in (1..items.len()).rev() {
        let j = r.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    Ok(Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_random_sequence() {
        // Python: r = random.Random('host1'); [r.getrandbits(32) for _ in range(3)]
        let mut r = Mt::from_seed(&json!("host1"));
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [2_088_216_970, 1_065_768_100, 3_873_963_868]);
    }
}
