//! Patroni's side of a TLS rollout, pure: the `patronictl` command lines, the merge of wanted
//! PostgreSQL parameters and `pg_hba` rules into Patroni's dynamic configuration (the patch
//! `patronictl edit-config --apply -` reads on stdin, the diff, which parameters then need a
//! restart), and the members `patronictl list -e -f json` reports (role, pending restart) with
//! the order of a rolling restart: replicas first, the leader last.
//!
//! Patroni writes `postgresql.conf` and `pg_hba.conf` itself: settings go into the dynamic
//! configuration (`postgresql.parameters`, `postgresql.pg_hba`, shared by every member), never
//! into those files. `postgresql.pg_hba` replaces the whole file, so the list is built from what
//! is there (the dynamic list, else the member's current file): Patroni's replication rules stay.
use serde_json::{json, Map, Value};

use super::conf::{needs_restart, same_value};
use super::hba::{apply, normalize, parse_record, HbaEdit, HbaFile, HbaReport, RecordKind};
use super::target::sh;

/// How to run `patronictl` against one member's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctl {
    pub patronictl: String,
    pub config: String,
    pub scope: String,
}

impl Ctl {
    fn words(&self, rest: &[&str]) -> Result<String, String> {
        let mut w = vec![sh(&self.patronictl)?, "-c".to_string(), sh(&self.config)?];
        for r in rest {
            w.push(sh(r)?);
        }
        Ok(w.join(" "))
    }

    /// The dynamic configuration as YAML.
    pub fn show_config(&self) -> Result<String, String> {
        self.words(&["show-config", &self.scope])
    }

    /// Apply the YAML patch read on stdin (a merge: mappings key by key, lists replaced).
    pub fn edit_config_stdin(&self) -> Result<String, String> {
        self.words(&[
            "edit-config",
            &self.scope,
            "--apply",
            "-",
            "--force",
            "--quiet",
        ])
    }

    /// Reload one member: Patroni rewrites its files from the configuration, then reloads
    /// PostgreSQL (asynchronously, at its next loop).
    pub fn reload(&self, member: &str) -> Result<String, String> {
        self.words(&["reload", &self.scope, member, "--force"])
    }

    /// Restart one member if Patroni flags it `pending restart` (waits until it is back).
    pub fn restart_pending(&self, member: &str) -> Result<String, String> {
        self.words(&["restart", &self.scope, member, "--pending", "--force"])
    }

    /// Restart one member whatever its flag (waits until it is back).
    pub fn restart(&self, member: &str) -> Result<String, String> {
        self.words(&["restart", &self.scope, member, "--force"])
    }

    /// Every member, with the pending restart columns.
    pub fn list(&self) -> Result<String, String> {
        self.words(&["list", &self.scope, "-e", "-f", "json"])
    }
}

/// A member as `patronictl list -e -f json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// `Leader`, `Replica`, `Sync Standby`, `Standby Leader`...
    pub role: String,
    pub state: String,
    pub pending_restart: bool,
    /// `max_connections: 100->150`, as Patroni words it.
    pub pending_reason: String,
}

impl Member {
    pub fn is_leader(&self) -> bool {
        self.role.to_ascii_lowercase().contains("leader")
    }
}

/// Read `patronictl list -e -f json`.
pub fn parse_members(text: &str) -> Result<Vec<Member>, String> {
    let start = text.find('[').ok_or_else(|| {
        format!(
            "patronictl list printed no member list: {}",
            text.trim().chars().take(300).collect::<String>()
        )
    })?;
    let v: Value = serde_json::from_str(text[start..].trim())
        .map_err(|e| format!("cannot read patronictl list's JSON: {e}"))?;
    let s = |m: &Value, k: &str| match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .map(|m| Member {
            name: s(m, "Member"),
            role: s(m, "Role"),
            state: s(m, "State"),
            pending_restart: !s(m, "Pending restart").trim().is_empty(),
            pending_reason: s(m, "Pending restart reason"),
        })
        .collect())
}

/// The members to restart, in order: the replicas flagged pending (as listed), then the leader
/// if flagged. A leader restarted first would ask more of its replicas than they have
/// (`max_connections` and the like must not be lower on a hot standby).
pub fn restart_order(members: &[Member]) -> Vec<String> {
    let pending = members.iter().filter(|m| m.pending_restart);
    let (leaders, replicas): (Vec<&Member>, Vec<&Member>) = pending.partition(|m| m.is_leader());
    replicas
        .into_iter()
        .chain(leaders)
        .map(|m| m.name.clone())
        .collect()
}

/// A parameter's value as text, as PostgreSQL would read it (`true` -> `on`).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "on" } else { "off" }.to_string()),
        _ => None,
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur).filter(|c| !c.is_null())
}

/// What the merge found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigChange {
    /// The patch for `edit-config --apply -` (`{}` when nothing changes).
    pub patch: Value,
    /// Parameters whose value changes, in the wanted order: (name, old, new).
    pub parameters: Vec<(String, Option<String>, String)>,
    /// Of those, the ones PostgreSQL reads only at start.
    pub restart: Vec<String>,
    /// The `pg_hba` list before and after (equal when it does not change).
    pub hba_before: Vec<String>,
    pub hba_after: Vec<String>,
    pub hba_report: HbaReport,
    /// Where the `pg_hba` list came from when the dynamic configuration had none.
    pub hba_seeded_from_file: bool,
}

impl ConfigChange {
    pub fn changed(&self) -> bool {
        !self.parameters.is_empty() || self.hba_before != self.hba_after
    }

    /// The part of the configuration this change touches, before or after, as YAML.
    pub fn view(&self, after: bool) -> String {
        let mut params = Map::new();
        for (n, old, new) in &self.parameters {
            let v = if after { Some(new) } else { old.as_ref() };
            if let Some(v) = v {
                params.insert(n.clone(), json!(v));
            }
        }
        let hba = if after {
            &self.hba_after
        } else {
            &self.hba_before
        };
        let mut pg = Map::new();
        if !params.is_empty() {
            pg.insert("parameters".into(), Value::Object(params));
        }
        if !hba.is_empty() || self.hba_before != self.hba_after {
            pg.insert("pg_hba".into(), json!(hba));
        }
        serde_yaml::to_string(&json!({ "postgresql": pg })).unwrap_or_default()
    }
}

/// The lines of a `pg_hba.conf` worth carrying into a list: no blanks, no comments.
pub fn hba_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Merge `params` and the rules of `edit` into the dynamic configuration `dynamic` (from
/// `show-config`). `local`: the member's own configuration file (a `postgresql.parameters`
/// entry or `postgresql.pg_hba` there wins over the dynamic configuration, so a conflicting one
/// is an error); `hba_file`: the member's current `pg_hba.conf`, the starting point when the
/// dynamic configuration has no `pg_hba`. `block_plain` drops plain `host` rules, except those
/// for replication (Patroni's members replicate through them).
pub fn merge_config(
    dynamic: &Value,
    local: &Value,
    hba_file: &str,
    params: &[(String, String)],
    edit: &HbaEdit,
    config_path: &str,
) -> Result<ConfigChange, String> {
    let mut out = ConfigChange::default();
    let mut patch_params = Map::new();
    let mut overridden = Vec::new();
    for (name, want) in params {
        if let Some(lv) = get(local, &["postgresql", "parameters", name]) {
            if !value_text(lv).is_some_and(|l| same_value(&l, want)) {
                overridden.push(format!(
                    "{name} (`{}` there)",
                    value_text(lv).unwrap_or_else(|| lv.to_string())
                ));
            }
        }
        let cur = get(dynamic, &["postgresql", "parameters", name]).and_then(value_text);
        if !cur.as_deref().is_some_and(|c| same_value(c, want)) {
            patch_params.insert(name.clone(), json!(want));
            if needs_restart(name) {
                out.restart.push(name.clone());
            }
            out.parameters.push((name.clone(), cur, want.clone()));
        }
    }
    if !overridden.is_empty() {
        return Err(format!(
            "{config_path} sets postgresql.parameters {}: the local configuration wins over the \
             dynamic one, so the cluster-wide value would never apply; remove them there (or set \
             them to the wanted values)",
            overridden.join(", ")
        ));
    }
    let wants_hba = !edit.rules.is_empty() || edit.block_plain;
    if wants_hba && get(local, &["postgresql", "pg_hba"]).is_some() {
        return Err(format!(
            "{config_path} sets postgresql.pg_hba: the local list wins over the dynamic one, so the \
             hostssl rules would never apply; move the list to the dynamic configuration \
             (patronictl edit-config) and run again"
        ));
    }
    let dynamic_hba: Option<Vec<String>> = get(dynamic, &["postgresql", "pg_hba"])
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(value_text).collect());
    out.hba_seeded_from_file = dynamic_hba.is_none();
    out.hba_before = dynamic_hba.clone().unwrap_or_default();
    out.hba_after = out.hba_before.clone();
    if wants_hba {
        let base = dynamic_hba.unwrap_or_else(|| hba_lines(hba_file));
        let mut text = base.join("\n");
        text.push('\n');
        let mut file = HbaFile::parse(&text);
        let plain_edit = HbaEdit {
            block_plain: false,
            ..edit.clone()
        };
        let mut report = apply(&mut file, &plain_edit)?;
        if edit.block_plain {
            let ours: Vec<_> = edit
                .rules
                .iter()
                .filter_map(|s| normalize(s, edit.server_version).ok())
                .filter_map(|s| parse_record(&s.line()).rule().map(|r| r.key()))
                .collect();
            file.records.retain(|r| {
                let RecordKind::Rule(rule) = &r.kind else {
                    return true;
                };
                let plain = matches!(rule.conn_type.as_str(), "host" | "hostnossl");
                let replication = rule
                    .database
                    .iter()
                    .all(|t| t.text == "replication" && !t.quoted);
                let keep =
                    !plain || replication || rule.method == "reject" || ours.contains(&rule.key());
                if !keep {
                    report.blocked.push(r.text());
                }
                keep
            });
        }
        out.hba_after = hba_lines(&file.render());
        out.hba_report = report;
        if out.hba_after == base && !out.hba_seeded_from_file {
            out.hba_after = out.hba_before.clone();
        }
    }
    let mut pg = Map::new();
    if !patch_params.is_empty() {
        pg.insert("parameters".into(), Value::Object(patch_params));
    }
    if out.hba_after != out.hba_before {
        pg.insert("pg_hba".into(), json!(out.hba_after));
    }
    out.patch = if pg.is_empty() {
        json!({})
    } else {
        json!({ "postgresql": pg })
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::hba::{Position, RuleSpec};

    fn rule(conn: &str, addr: &str) -> RuleSpec {
        RuleSpec {
            conn_type: conn.into(),
            database: "all".into(),
            user: "all".into(),
            address: Some(addr.into()),
            netmask: None,
            method: "cert".into(),
            options: vec![],
        }
    }

    fn edit(block_plain: bool) -> HbaEdit {
        HbaEdit {
            rules: vec![rule("hostssl", "0.0.0.0/0"), rule("hostssl", "::/0")],
            state: Default::default(),
            position: Position::BeforeFirstHost,
            block_plain,
            server_version: Some(15),
        }
    }

    fn dynamic() -> Value {
        serde_yaml::from_str(
            "loop_wait: 10\npostgresql:\n  parameters:\n    max_connections: 100\n    ssl: false\n  \
             pg_hba:\n  - local all all peer\n  - host replication replicator 10.0.0.0/8 scram-sha-256\n  \
             - host all all 10.0.0.0/8 scram-sha-256\n",
        )
        .unwrap()
    }

    fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = vec![
            ("ssl".to_string(), "on".to_string()),
            ("ssl_cert_file".to_string(), "server.crt".to_string()),
        ];
        p.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        p
    }

    #[test]
    fn tls_merge_keeps_replication_rules_and_is_idempotent() {
        let c = merge_config(
            &dynamic(),
            &json!({}),
            "",
            &params(&[]),
            &edit(false),
            "p.yml",
        )
        .unwrap();
        assert!(c.changed());
        assert_eq!(
            c.parameters,
            vec![
                ("ssl".into(), Some("off".into()), "on".into()),
                ("ssl_cert_file".into(), None, "server.crt".into())
            ]
        );
        assert!(c.restart.is_empty(), "{:?}", c.restart);
        let hba = c.patch["postgresql"]["pg_hba"].as_array().unwrap();
        let lines: Vec<&str> = hba.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(lines[0], "local all all peer");
        assert!(lines[1].starts_with("hostssl") && lines[2].starts_with("hostssl"));
        assert_eq!(
            &lines[3..],
            [
                "host replication replicator 10.0.0.0/8 scram-sha-256",
                "host all all 10.0.0.0/8 scram-sha-256"
            ]
        );
        assert_eq!(c.patch["postgresql"]["parameters"]["ssl"], "on");
        assert!(c.patch.get("loop_wait").is_none(), "only what changes");
        // The configuration after the patch: nothing left to do.
        let mut after = dynamic();
        after["postgresql"]["parameters"]["ssl"] = json!("on");
        after["postgresql"]["parameters"]["ssl_cert_file"] = json!("server.crt");
        after["postgresql"]["pg_hba"] = c.patch["postgresql"]["pg_hba"].clone();
        let again =
            merge_config(&after, &json!({}), "", &params(&[]), &edit(false), "p.yml").unwrap();
        assert!(!again.changed(), "{again:?}");
        assert_eq!(again.patch, json!({}));
        // A boolean `true` is `on`.
        after["postgresql"]["parameters"]["ssl"] = json!(true);
        assert!(
            !merge_config(&after, &json!({}), "", &params(&[]), &edit(false), "p.yml")
                .unwrap()
                .changed()
        );
    }

    #[test]
    fn restart_parameters_block_plain_and_seeding_from_the_file() {
        let mut d = dynamic();
        d["postgresql"].as_object_mut().unwrap().remove("pg_hba");
        let file = "# Do not edit this file manually!\nlocal all all peer\n\
                    host replication replicator 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 md5\n";
        let c = merge_config(
            &d,
            &json!({}),
            file,
            &params(&[("max_connections", "150")]),
            &edit(true),
            "p.yml",
        )
        .unwrap();
        assert!(c.hba_seeded_from_file);
        assert_eq!(c.restart, vec!["max_connections".to_string()]);
        let hba = &c.patch["postgresql"]["pg_hba"];
        let text = hba.to_string();
        assert!(
            text.contains("host replication replicator 127.0.0.1/32 md5"),
            "{text}"
        );
        assert!(!text.contains("host all all 127.0.0.1/32 md5"), "{text}");
        assert_eq!(c.hba_report.blocked.len(), 1);
        assert!(
            c.view(true).contains("max_connections: '150'"),
            "{}",
            c.view(true)
        );
        assert!(c.view(false).contains("max_connections: '100'"));
    }

    #[test]
    fn local_overrides_are_refused() {
        let local: Value =
            serde_yaml::from_str("postgresql:\n  parameters:\n    ssl: 'off'\n").unwrap();
        let e = merge_config(
            &dynamic(),
            &local,
            "",
            &params(&[]),
            &edit(false),
            "/etc/p.yml",
        )
        .unwrap_err();
        assert!(
            e.contains("/etc/p.yml sets postgresql.parameters ssl"),
            "{e}"
        );
        let local: Value =
            serde_yaml::from_str("postgresql:\n  pg_hba:\n  - local all all trust\n").unwrap();
        let e = merge_config(
            &dynamic(),
            &local,
            "",
            &params(&[]),
            &edit(false),
            "/etc/p.yml",
        )
        .unwrap_err();
        assert!(e.contains("sets postgresql.pg_hba"), "{e}");
        // The same value locally is no conflict.
        let local: Value =
            serde_yaml::from_str("postgresql:\n  parameters:\n    ssl: true\n").unwrap();
        assert!(merge_config(&dynamic(), &local, "", &params(&[]), &edit(false), "p").is_ok());
    }

    #[test]
    fn members_and_restart_order() {
        let text = r#"[{"Cluster": "f18", "Member": "db1", "Host": "127.18.1.1", "Role": "Leader", "State": "running", "TL": 1, "Pending restart": "*", "Pending restart reason": "max_connections: 100->150"}, {"Cluster": "f18", "Member": "db2", "Role": "Replica", "State": "streaming", "TL": 1, "Pending restart": "*"}, {"Cluster": "f18", "Member": "db3", "Role": "Sync Standby", "State": "streaming", "Pending restart": ""}]"#;
        let m = parse_members(text).unwrap();
        assert_eq!(m.len(), 3);
        assert!(m[0].is_leader() && m[0].pending_restart);
        assert_eq!(m[0].pending_reason, "max_connections: 100->150");
        assert!(!m[2].pending_restart);
        assert_eq!(
            restart_order(&m),
            vec!["db2".to_string(), "db1".to_string()]
        );
        assert!(parse_members("Error: no cluster").is_err());
    }

    #[test]
    fn commands_are_quoted() {
        let c = Ctl {
            patronictl: "/opt/venv/bin/patronictl".into(),
            config: "/etc/patroni/my db.yml".into(),
            scope: "batman".into(),
        };
        assert_eq!(
            c.reload("db1").unwrap(),
            "/opt/venv/bin/patronictl -c '/etc/patroni/my db.yml' reload batman db1 --force"
        );
        assert!(c
            .edit_config_stdin()
            .unwrap()
            .contains("edit-config batman --apply - --force"));
        assert!(c
            .restart_pending("db2")
            .unwrap()
            .ends_with("restart batman db2 --pending --force"));
    }
}
