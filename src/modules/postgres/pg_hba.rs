//! `pg_hba`: ensure rules are present in (or absent from) `pg_hba.conf`, at a stated position,
//! never re-sorting the file (first match wins), keeping comments.
//!
//! The pure editor is [`crate::postgres::hba`]; this module reads the file, edits it, and
//! writes it back atomically (with a backup for rollbacks when `backup: yes`).
//!
//! | argument | |
//! |---|---|
//! | `path` (`dest`) | the file, required (pg_facts' `hba_file`) |
//! | `rules` | list of `{type, database, user, address, netmask, method, options}` |
//! | `type` (`contype`), `database` (`databases`, `db`), `user` (`users`), `address` (`source`, `src`), `netmask`, `method`, `options` | one rule instead of `rules` |
//! | `state` | `present` (default) or `absent` (rules with the same type/database/user/address are removed) |
//! | `position` | `before_first_host` (default), `top`, `bottom`, `{before: REGEX}`, `{after: REGEX}` |
//! | `block_plain` | comment out `host`/`hostnossl` rules for non-loopback addresses (not `reject`) |
//! | `server_version` | major or `server_version_num`: normalizes `clientcert` (required for `1`/`0`/`no-verify`) |
//! | `backup`, `owner`, `group`, `mode` | as the file modules |
//!
//! Result keys besides the file's: `msg`, `added`, `updated`, `moved`, `removed`, `blocked`
//! (lines), `warnings`.

use serde_json::{json, Map, Value};

use super::hba_args;
use super::pg_conf::read_text;
use crate::modules::files::common::{attrs_only, file_result, plan_write, AttrSpec};
use crate::modules::{Arg, Args, Kind, ModuleCtx, ModuleError, Plan};
use crate::postgres::hba::{apply, HbaEdit, HbaFile, HbaReport, Want};

pub struct PgHba;

const RULE_KEYS: &[&str] = &[
    "type", "database", "user", "address", "netmask", "method", "options",
];

const MODULE_ARGS: &[Arg] = &[
    Arg::new("path", Kind::Str).aliases(&["dest"]).required(),
    Arg::new("rules", Kind::List),
    Arg::new("type", Kind::Str)
        .aliases(&["contype"])
        .choices(&crate::postgres::hba::CONN_TYPES),
    Arg::new("database", Kind::Raw).aliases(&["databases", "db"]),
    Arg::new("user", Kind::Raw).aliases(&["users"]),
    Arg::new("address", Kind::Str).aliases(&["source", "src"]),
    Arg::new("netmask", Kind::Str),
    Arg::new("method", Kind::Str),
    Arg::new("options", Kind::Raw),
    Arg::new("state", Kind::Str).choices(&["present", "absent"]),
    Arg::new("position", Kind::Raw),
    Arg::new("block_plain", Kind::Bool),
    Arg::new("server_version", Kind::Int),
    Arg::new("backup", Kind::Bool),
    crate::modules::args::FILE_ATTRS[0],
    crate::modules::args::FILE_ATTRS[1],
    crate::modules::args::FILE_ATTRS[2],
];

/// The edit the arguments ask for.
pub fn hba_edit(args: &Args) -> Result<HbaEdit, String> {
    let single = RULE_KEYS.iter().any(|k| args.has(k));
    let mut rules = Vec::new();
    if single {
        if args.has("rules") {
            return Err("parameters are mutually exclusive: rules|type/database/user/...".into());
        }
        let mut m = Map::new();
        for k in RULE_KEYS {
            if let Some(v) = args.get(k) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        rules.push(hba_args::rule_spec(&Value::Object(m))?);
    } else {
        for (i, r) in args.list("rules").iter().enumerate() {
            rules.push(hba_args::rule_spec(r).map_err(|e| format!("rules[{i}]: {e}"))?);
        }
    }
    let block_plain = args.bool("block_plain", false);
    if rules.is_empty() && !block_plain {
        return Err(
            "give `rules`, a single rule (`type`, `method`, ...), or `block_plain: yes`".into(),
        );
    }
    Ok(HbaEdit {
        rules,
        state: if args.str("state") == Some("absent") {
            Want::Absent
        } else {
            Want::Present
        },
        position: hba_args::position(args.get("position"))?,
        block_plain,
        server_version: args.int("server_version"),
    })
}

fn summary(r: &HbaReport) -> String {
    let parts: Vec<String> = [
        (r.added.len(), "added"),
        (r.updated.len(), "updated"),
        (r.moved.len(), "moved"),
        (r.removed.len(), "removed"),
        (r.blocked.len(), "plain rule(s) commented out"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect();
    let mut msg = if parts.is_empty() {
        "no change".to_string()
    } else {
        parts.join(", ")
    };
    for w in &r.warnings {
        msg.push_str("; WARNING: ");
        msg.push_str(w);
    }
    msg
}

#[async_trait::async_trait]
impl crate::modules::Module for PgHba {
    fn name(&self) -> &'static str {
        "pg_hba"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(MODULE_ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, crate::connection::Want)> {
        crate::modules::files::common::text_reads(args)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        let templated = args
            .map
            .values()
            .any(|v| crate::template::is_template(&v.to_string()));
        if templated {
            return Ok(());
        }
        let e = hba_edit(args)?;
        for r in &e.rules {
            crate::postgres::hba::normalize(r, e.server_version)?;
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = args.req("path")?;
        let e = hba_edit(args)?;
        let spec = AttrSpec::from_args(args)?;
        let (st, text) = read_text(ctx, &path).await?;
        let Some(current) = text else {
            return Err(ModuleError::failed(format!(
                "{path} does not exist (use the `hba_file` of pg_facts)"
            )));
        };
        let mut file = HbaFile::parse(&current);
        let report = apply(&mut file, &e)?;
        let content = file.render();
        let (ops, diff) = if content != current {
            plan_write(
                &path,
                &st,
                content.into_bytes(),
                &spec,
                args.bool("backup", false),
            )
        } else {
            (attrs_only(&path, &st, &spec), None)
        };
        let mut result = file_result(&path, &st, &spec, None);
        result.insert("msg".into(), json!(summary(&report)));
        result.insert("added".into(), json!(report.added));
        result.insert("updated".into(), json!(report.updated));
        result.insert("moved".into(), json!(report.moved));
        result.insert("removed".into(), json!(report.removed));
        result.insert("blocked".into(), json!(report.blocked));
        result.insert("warnings".into(), json!(report.warnings));
        Ok(Plan::ops(ops, diff).with_result(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::args::normalize;
    use crate::modules::Module;
    use crate::postgres::hba::Position;

    fn args(v: Value) -> Result<Args, String> {
        normalize("pg_hba", Some(MODULE_ARGS), v.as_object().unwrap(), false).map_err(|e| e.msg)
    }

    #[test]
    fn single_rule_or_list() {
        let a = args(
            json!({"path": "/h", "contype": "hostssl", "users": ["a", "b"],
                            "source": "10.0.0.0/8", "method": "cert",
                            "options": {"clientcert": "verify-full"}}),
        )
        .unwrap();
        let e = hba_edit(&a).unwrap();
        assert_eq!(e.rules.len(), 1);
        assert_eq!(e.rules[0].user, "a,b");
        assert_eq!(e.rules[0].database, "all");
        assert!(PgHba.validate(&a).is_ok());
        let a = args(json!({"path": "/h", "rules": [
            {"type": "hostssl", "address": "0.0.0.0/0", "method": "scram-sha-256", "options": "clientcert=verify-full"},
            {"type": "hostssl", "address": "::/0", "method": "scram-sha-256", "options": "clientcert=verify-full"}],
            "position": {"after": "^local"}, "server_version": "150004", "block_plain": "yes"}))
        .unwrap();
        let e = hba_edit(&a).unwrap();
        assert_eq!(e.rules.len(), 2);
        assert_eq!(e.server_version, Some(150004));
        assert!(e.block_plain);
        assert!(matches!(e.position, Position::After(_)));
    }

    #[test]
    fn validation_catches_what_the_server_would_refuse() {
        let a = args(
            json!({"path": "/h", "type": "hostssl", "address": "::/0", "method": "md5",
                            "options": "clientcert=1", "server_version": 15}),
        )
        .unwrap();
        assert!(PgHba
            .validate(&a)
            .unwrap_err()
            .contains("removed in PostgreSQL 14"));
        let a = args(
            json!({"path": "/h", "type": "host", "address": "::/0", "method": "md5",
                            "options": "clientcert=verify-full"}),
        )
        .unwrap();
        assert!(PgHba.validate(&a).unwrap_err().contains("hostssl"));
        let a =
            args(json!({"path": "/h", "rules": [], "type": "local", "method": "peer"})).unwrap();
        assert!(PgHba.validate(&a).is_err());
        let a = args(json!({"path": "/h"})).unwrap();
        assert!(PgHba.validate(&a).is_err());
        assert!(args(json!({"path": "/h", "type": "hostsl"}))
            .unwrap_err()
            .contains("hostssl"));
        let a = args(json!({"path": "/h", "block_plain": true})).unwrap();
        assert!(PgHba.validate(&a).is_ok());
    }

    #[test]
    fn summary_lists_changes_and_warnings() {
        let r = HbaReport {
            added: vec!["x".into()],
            blocked: vec!["y".into(), "z".into()],
            warnings: vec!["w".into()],
            ..HbaReport::default()
        };
        assert_eq!(
            summary(&r),
            "1 added, 2 plain rule(s) commented out; WARNING: w"
        );
        assert_eq!(summary(&HbaReport::default()), "no change");
    }
}

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::connection::Op;
    use crate::modules::postgres::pg_conf::plan_tests::{ops_of, plan_with};

    #[tokio::test]
    async fn refuses_clientcert_1_on_15_and_writes_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let hba = dir.path().join("pg_hba.conf");
        let text = "local all all peer\nhost all all 0.0.0.0/0 md5\n";
        std::fs::write(&hba, text).unwrap();
        let path = hba.to_str().unwrap();
        let p = plan_with(
            &PgHba,
            MODULE_ARGS,
            json!({"path": path, "type": "hostssl", "address": "0.0.0.0/0", "method": "md5",
                   "options": "clientcert=1", "server_version": 150004}),
        )
        .await
        .unwrap_err();
        assert!(p.to_string().contains("removed in PostgreSQL 14"));
        let p = plan_with(
            &PgHba,
            MODULE_ARGS,
            json!({"path": path, "type": "hostssl", "address": "0.0.0.0/0", "method": "md5",
                   "options": "clientcert=1", "server_version": 130004, "block_plain": true,
                   "backup": true}),
        )
        .await
        .unwrap();
        let (ops, _) = ops_of(&p);
        let Some(Op::Write {
            content, backup, ..
        }) = ops.first()
        else {
            panic!("{ops:?}")
        };
        assert!(backup);
        let out = String::from_utf8(content.to_vec()).unwrap();
        assert_eq!(
            out,
            "local all all peer\nhostssl all             all             0.0.0.0/0               md5 clientcert=verify-ca\n#host all all 0.0.0.0/0 md5\n"
        );
        assert_eq!(p.result["blocked"], json!(["host all all 0.0.0.0/0 md5"]));
        assert_eq!(p.result["added"].as_array().unwrap().len(), 1);
    }
}
