//! Is a TCP port open, asked from a target that has only `sh` and coreutils (`wait_for`)?
//!
//! A port on one of the target's own addresses: the kernel's socket tables say it, with no
//! connection made. [`probe_script`] prints the LISTEN sockets of `/proc/net/tcp` and `tcp6`,
//! the target's own addresses (`/proc/net/fib_trie` "host LOCAL" entries, `/proc/net/if_inet6`),
//! the host name's addresses (`getent ahosts`, when the host is a name), the byte order (the
//! tables print addresses as native 32-bit words) and `bindv6only`; [`Net::open`] decides: an
//! address is open when a socket listens on it, or on the wildcard of its family (or `::` for
//! an IPv4 address, when IPv6 sockets accept IPv4).
//!
//! A port on another machine cannot be read from tables: [`connect_script`] tries one
//! connection with the first tool the target has, in order: `bash` (`/dev/tcp`), `nc -z`,
//! `python3`, `perl`, each under coreutils' `timeout`. A target with none of them cannot wait
//! for a remote port, and says so.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sh;
use crate::text::sections;

/// The probe: one round trip, reads only. `resolve`: the host is a name, look it up.
pub fn probe_script(host: &str, resolve: bool) -> Result<String, String> {
    let mut s = String::from(
        "echo @@endian\nprintf '\\001\\000' | od -An -tu2\n\
         echo @@bindv6only\ncat /proc/sys/net/ipv6/bindv6only 2>/dev/null\n\
         echo @@listen\n\
         for f in /proc/net/tcp /proc/net/tcp6; do\n\
         [ -r \"$f\" ] || continue\n\
         while read -r sl local remote st rest; do [ \"$st\" = 0A ] && echo \"$local\"; done < \"$f\"\n\
         done\n\
         echo @@local4\n\
         if [ -r /proc/net/fib_trie ]; then\n\
         prev=\n\
         while read -r a b c d; do\n\
         if [ \"$a\" = '|--' ]; then prev=$b; elif [ \"$b $c\" = 'host LOCAL' ]; then echo \"$prev\"; fi\n\
         done < /proc/net/fib_trie\n\
         fi\n\
         echo @@local6\n\
         if [ -r /proc/net/if_inet6 ]; then while read -r a rest; do echo \"$a\"; done < /proc/net/if_inet6; fi\n",
    );
    if resolve {
        s.push_str(&format!(
            "echo @@addrs\ngetent ahosts {} 2>/dev/null | while read -r a rest; do echo \"$a\"; done\n",
            sh(host)?
        ));
    }
    Ok(s)
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Net {
    /// Listening sockets: address and port.
    pub listening: Vec<(IpAddr, u16)>,
    /// The target's own addresses (loopback aside).
    pub local: Vec<IpAddr>,
    /// The host name's addresses (empty: not looked up, or unknown).
    pub resolved: Vec<IpAddr>,
    /// IPv6 sockets do not accept IPv4 (`net.ipv6.bindv6only = 1`).
    pub v6only: bool,
}

/// One 32-bit word of a socket table address, in the target's byte order.
fn word(hex: &str, little: bool) -> Option<[u8; 4]> {
    let w = u32::from_str_radix(hex, 16).ok()?;
    Some(if little {
        w.to_le_bytes()
    } else {
        w.to_be_bytes()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6).
fn table_addr(field: &str, little: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr, little)?)),
        32 => {
            let mut b = [0u8; 16];
            for k in 0..4 {
                b[4 * k..4 * k + 4].copy_from_slice(&word(&addr[8 * k..8 * k + 8], little)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// `/proc/net/if_inet6`: 32 hex digits in network order.
fn inet6(hex: &str) -> Option<IpAddr> {
    (hex.len() == 32).then_some(())?;
    let n = u128::from_str_radix(hex, 16).ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(n)))
}

/// Read the probe's output.
pub fn parse(out: &str) -> Net {
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    // `printf '\001\000' | od -tu2` is 1 on a little-endian machine, 256 on a big-endian one.
    let little = get("endian").trim() != "256";
    let mut resolved: Vec<IpAddr> = Vec::new();
    for a in get("addrs").lines().filter_map(|l| l.trim().parse().ok()) {
        if !resolved.contains(&a) {
            resolved.push(a);
        }
    }
    Net {
        listening: get("listen")
            .lines()
            .filter_map(|l| table_addr(l.trim(), little))
            .collect(),
        local: get("local4")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .chain(get("local6").lines().filter_map(|l| inet6(l.trim())))
            .collect(),
        resolved,
        v6only: get("bindv6only").trim() == "1",
    }
}

/// Where a host's port is, as the target sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// On the target itself: open or not, from its socket tables.
    Local(bool),
    /// Another machine: only a connection can tell.
    Remote,
    /// The name has no address the target knows.
    Unresolved,
}

impl Net {
    /// An address of the target itself.
    pub fn is_local(&self, a: IpAddr) -> bool {
        a.is_loopback() || a.is_unspecified() || self.local.contains(&a)
    }

    /// A socket listens where a connection to `a`:`port` would arrive.
    pub fn listens(&self, a: IpAddr, port: u16) -> bool {
        self.listening.iter().any(|&(l, p)| {
            p == port
                && match (a, l) {
                    (IpAddr::V4(_), IpAddr::V4(l4)) => l == a || l4.is_unspecified(),
                    (IpAddr::V6(_), IpAddr::V6(l6)) => l == a || l6.is_unspecified(),
                    (IpAddr::V4(a4), IpAddr::V6(l6)) => {
                        (!self.v6only && l6.is_unspecified()) || l6.to_ipv4_mapped() == Some(a4)
                    }
                    (IpAddr::V6(_), IpAddr::V4(_)) => false,
                }
        })
    }

    /// `host`'s port (host: an address, `localhost`, or a name this probe resolved).
    pub fn verdict(&self, host: &str, port: u16) -> Verdict {
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(a) => vec![a],
            Err(_) => self.resolved.clone(),
        };
        if addrs.is_empty() {
            return Verdict::Unresolved;
        }
        if addrs.iter().all(|&a| self.is_local(a)) {
            return Verdict::Local(addrs.iter().any(|&a| self.listens(a, port)));
        }
        Verdict::Remote
    }
}

/// One connection attempt to `host`:`port` from the target, at most `timeout` seconds. Prints
/// `@@tool` (the program used, `none` when there is none) and `@@rc` (0: connected).
pub fn connect_script(host: &str, port: u16, timeout: u64) -> Result<String, String> {
    let h = sh(host)?;
    let t = timeout.max(1);
    Ok(format!(
        "h={h}\np={port}\nt={t}\n\
         if command -v bash >/dev/null 2>&1; then tool=bash\n\
         timeout \"$t\" bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$h\" \"$p\" >/dev/null 2>&1\n\
         elif command -v nc >/dev/null 2>&1; then tool=nc\n\
         timeout \"$t\" nc -z -w \"$t\" \"$h\" \"$p\" >/dev/null 2>&1\n\
         elif command -v python3 >/dev/null 2>&1; then tool=python3\n\
         timeout \"$t\" python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()' \"$h\" \"$p\" \"$t\" >/dev/null 2>&1\n\
         elif command -v perl >/dev/null 2>&1; then tool=perl\n\
         timeout \"$t\" perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => $ARGV[1], Timeout => $ARGV[2]) ? 0 : 1)' \"$h\" \"$p\" \"$t\" >/dev/null 2>&1\n\
         else tool=none; false; fi\n\
         rc=$?\necho @@tool\necho \"$tool\"\necho @@rc\necho \"$rc\"\n"
    ))
}

/// The connection attempt's answer: the tool used, and whether it connected.
pub fn parse_connect(out: &str) -> (String, bool) {
    let sec = sections(out);
    let tool = sec
        .get("tool")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let ok = sec.get("rc").is_some_and(|s| s.trim() == "0");
    (tool, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE: &str = "@@endian\n     1\n@@bindv6only\n0\n@@listen\n\
                      0100007F:1F90\n00000000:1538\n0101157F:0016\n\
                      00000000000000000000000001000000:0050\n\
                      00000000000000000000000000000000:1A0A\n\
                      0000000000000000FFFF00000201157F:0BB8\n\
                      @@local4\n127.0.0.1\n192.0.2.2\n192.0.2.2\n\
                      @@local6\n00000000000000000000000000000001\nfe800000000000000242acfffe110002\n";

    #[test]
    fn socket_tables_decide_for_local_addresses() {
        let n = parse(LE);
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n.listens(v4("127.0.0.1"), 8080));
        assert!(!n.listens(v4("127.0.0.2"), 8080), "bound to 127.0.0.1 only");
        assert!(n.listens(v4("127.21.1.1"), 5432), "0.0.0.0:5432");
        assert!(n.listens(v4("127.21.1.1"), 22) && !n.listens(v4("127.21.1.2"), 22));
        assert!(n.listens(v4("::1"), 80), "[::1]:80");
        assert!(n.listens(v4("192.0.2.2"), 6666), "[::]:6666 takes IPv4 too");
        assert!(
            n.listens(v4("127.21.1.2"), 3000),
            "[::ffff:127.21.1.2]:3000"
        );
        assert_eq!(n.verdict("127.0.0.1", 8080), Verdict::Local(true));
        assert_eq!(n.verdict("127.0.0.1", 8081), Verdict::Local(false));
        assert_eq!(n.verdict("192.0.2.2", 5432), Verdict::Local(true));
        assert_eq!(n.verdict("198.51.100.7", 5432), Verdict::Remote);
        assert_eq!(n.verdict("db.example", 5432), Verdict::Unresolved);
        let v6only = parse(&LE.replace("@@bindv6only\n0", "@@bindv6only\n1"));
        assert!(!v6only.listens(v4("192.0.2.2"), 6666));
    }

    #[test]
    fn names_resolve_and_big_endian_tables_read() {
        let n = parse(&format!("{LE}@@addrs\n127.0.0.1\n127.0.0.1\n::1\n"));
        assert_eq!(n.resolved.len(), 2);
        assert_eq!(n.verdict("localhost", 8080), Verdict::Local(true));
        let be = parse("@@endian\n   256\n@@listen\n7F000001:1F90\n");
        assert_eq!(be.listening, [("127.0.0.1".parse().unwrap(), 8080)]);
    }

    #[test]
    fn the_scripts_quote_the_host() {
        let s = connect_script("db'1", 5432, 0).unwrap();
        assert!(s.contains("h='db'\\''1'") && s.contains("t=1"), "{s}");
        assert_eq!(
            parse_connect("@@tool\nbash\n@@rc\n0\n"),
            ("bash".to_string(), true)
        );
        assert!(probe_script("x", true).unwrap().contains("getent ahosts x"));
    }
}
