//! Which cluster on a host, and how to talk to it over its local socket: `psql` as the database
//! OS user, peer authentication, no TCP and no password.
use serde_json::Value;

use crate::connection::quote::quote_str;

pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_OS_USER: &str = "postgres";

/// A cluster reached through its Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub socket_dir: String,
    pub port: u16,
    /// The OS user that owns the cluster: commands run as this user (`become_user`).
    pub os_user: String,
    /// The database role `psql` logs in as (peer authentication maps the OS user to it).
    pub login_user: String,
    /// Where `psql`/`pg_ctl` live; `None`: `psql` from `PATH`.
    pub bin_dir: Option<String>,
}

impl PgTarget {
    fn bin(&self, prog: &str) -> String {
        match &self.bin_dir {
            Some(d) => format!("{}/{prog}", d.trim_end_matches('/')),
            None => prog.to_string(),
        }
    }

    /// The quoted `psql` command line, without `-c`: unaligned, tuples only, no psqlrc.
    pub fn psql_words(&self) -> Result<String, String> {
        let port = self.port.to_string();
        let words = [
            self.bin("psql").as_str(),
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &self.socket_dir,
            "-p",
            &port,
            "-U",
            &self.login_user,
            "-d",
            "postgres",
        ]
        .iter()
        .map(|w| quote_str(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
        Ok(words.join(" "))
    }

    /// Shell prelude defining `q SQL` (one query, one connection, 5 s connect timeout).
    pub fn prelude(&self) -> Result<String, String> {
        Ok(format!(
            "PGCONNECT_TIMEOUT=5; export PGCONNECT_TIMEOUT\nq() {{ {} -c \"$1\"; }}\n",
            self.psql_words()?
        ))
    }

    /// The keys `pg_facts` records so that later modules reach the same cluster.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "socket_dir": self.socket_dir,
            "port": self.port,
            "os_user": self.os_user,
            "login_user": self.login_user,
        })
    }
}

/// Single-quote `s` for the shell (errors only on NUL bytes).
pub fn sh(s: &str) -> Result<String, String> {
    quote_str(s).map_err(|e| e.to_string())
}

/// Script output in `@@name` sections ([`crate::text::sections`]).
pub use crate::text::sections;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_words_are_quoted() {
        let t = PgTarget {
            socket_dir: "/tmp/my sock".into(),
            port: 5432,
            os_user: "postgres".into(),
            login_user: "postgres".into(),
            bin_dir: Some("/usr/lib/postgresql/15/bin/".into()),
        };
        let w = t.psql_words().unwrap();
        assert!(w.starts_with("/usr/lib/postgresql/15/bin/psql -X"), "{w}");
        assert!(w.contains("-h '/tmp/my sock'"), "{w}");
    }

    #[test]
    fn sections_split_on_markers() {
        let s = sections("junk\n@@a\n1\n2\n@@b\n@@c\nx\n");
        assert_eq!(s["a"], "1\n2");
        assert_eq!(s["b"], "");
        assert_eq!(s["c"], "x");
        assert!(!s.contains_key("junk"));
    }
}
