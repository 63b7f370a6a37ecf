//! `pg_conf`: set or unset parameters in `postgresql.conf` (or a file of its `conf.d`).
//!
//! The pure editor is [`crate::postgres::conf`]; this module reads the file, edits it, and
//! writes it back atomically (with a backup for rollbacks when `backup: yes`). It also reads
//! `postgresql.auto.conf` (ALTER SYSTEM), which overrides postgresql.conf, and warns when it
//! sets one of the parameters; and it says per parameter whether a reload or a restart applies
//! the change (PostgreSQL 15's `pg_settings.context`).
//!
//! | argument | |
//! |---|---|
//! | `path` (`dest`) | the file, required (pg_facts' `config_file`) |
//! | `settings` | mapping name -> value; with `state: absent` also a list of names |
//! | `name`, `value` | one parameter instead of `settings` |
//! | `state` | `present` (default) or `absent` (comment the parameter out) |
//! | `auto_conf` | path of postgresql.auto.conf (default: `data_directory`/postgresql.auto.conf) |
//! | `data_directory` | where postgresql.auto.conf is (pg_facts' `data_directory`) |
//! | `create` | create the file when missing (a new `conf.d` file) |
//! | `backup`, `owner`, `group`, `mode` | as the file modules |
//!
//! Result keys besides the file's: `msg`, `changed_parameters`, `parameters` (name ->
//! `{before, after, changed, context, apply}`), `needs_restart`, `needs_reload`,
//! `auto_conf_overrides` (names), `warnings`.

use serde_json::{json, Map, Value};

use crate::connection::{FileKind, FileState};
use crate::modules::files::common::{attrs_only, file_result, plan_write, read, AttrSpec, TEXT};
use crate::modules::{Arg, Args, Kind, ModuleCtx, ModuleError, Plan};
use crate::postgres::conf::{context_of, ConfFile};

pub struct PgConf;

const MODULE_ARGS: &[Arg] = &[
    Arg::new("path", Kind::Str).aliases(&["dest"]).required(),
    Arg::new("settings", Kind::Raw),
    Arg::new("name", Kind::Str).aliases(&["param"]),
    Arg::new("value", Kind::Raw),
    Arg::new("state", Kind::Str).choices(&["present", "absent"]),
    Arg::new("auto_conf", Kind::Str),
    Arg::new("data_directory", Kind::Str),
    Arg::new("create", Kind::Bool),
    Arg::new("backup", Kind::Bool),
    crate::modules::args::FILE_ATTRS[0],
    crate::modules::args::FILE_ATTRS[1],
    crate::modules::args::FILE_ATTRS[2],
];

/// A parameter value as postgresql.conf text: booleans become `on`/`off`.
fn value_text(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(if *b { "on" } else { "off" }.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(format!("parameter `{name}` has no value")),
        other => Err(format!(
            "parameter `{name}`: the value must be a string, number or boolean, got {other}"
        )),
    }
}

/// The wanted parameters: (name, value) with `value` None for `state: absent`.
pub fn wanted(args: &Args) -> Result<Vec<(String, Option<String>)>, String> {
    let absent = args.str("state") == Some("absent");
    let mut out = Vec::new();
    match (args.get("settings"), args.str("name")) {
        (Some(_), Some(_)) => {
            return Err("parameters are mutually exclusive: settings|name".into());
        }
        (None, None) => return Err("one of `settings` or `name` is required".into()),
        (Some(Value::Object(m)), None) => {
            for (k, v) in m {
                out.push((
                    k.clone(),
                    if absent {
                        None
                    } else {
                        Some(value_text(k, v)?)
                    },
                ));
            }
        }
        (Some(Value::Array(a)), None) if absent => {
            for v in a {
                let n = v
                    .as_str()
                    .ok_or_else(|| format!("settings: `{v}` is not a parameter name"))?;
                out.push((n.to_string(), None));
            }
        }
        (Some(Value::String(s)), None) if absent => out.push((s.clone(), None)),
        (Some(other), None) => {
            return Err(format!(
                "`settings` must be a mapping of parameter names to values, got {other}"
            ))
        }
        (None, Some(n)) => {
            let v = if absent {
                None
            } else {
                let v = args
                    .get("value")
                    .ok_or("`value` is required with `name` (state: present)")?;
                Some(value_text(n, v)?)
            };
            out.push((n.to_string(), v));
        }
    }
    if out.is_empty() {
        return Err("no parameter given".into());
    }
    for (n, _) in &out {
        if !crate::postgres::conf::is_valid_name(n) {
            return Err(format!("invalid parameter name `{n}`"));
        }
    }
    Ok(out)
}

/// Reads a text file with content; `None` content when missing.
pub(crate) async fn read_text(
    ctx: &ModuleCtx<'_>,
    path: &str,
) -> Result<(FileState, Option<String>), ModuleError> {
    let st = read(ctx, path, TEXT).await?;
    if st.kind == FileKind::Directory {
        return Err(ModuleError::failed(format!("{path} is a directory")));
    }
    let text = match (&st.content, st.exists()) {
        (Some(c), true) => Some(
            String::from_utf8(c.clone())
                .map_err(|_| ModuleError::failed(format!("{path} is not UTF-8 text")))?,
        ),
        _ => None,
    };
    Ok((st, text))
}

/// What the pure part of the module computes.
#[derive(Debug, Default)]
pub struct ConfEdit {
    pub content: String,
    pub changed: bool,
    pub parameters: Map<String, Value>,
    pub changed_parameters: Vec<String>,
    pub needs_restart: bool,
    pub warnings: Vec<String>,
}

/// The pure edit: applies the wanted parameters to `current`.
pub fn edit(current: &str, want: &[(String, Option<String>)]) -> Result<ConfEdit, String> {
    let mut f = ConfFile::parse(current);
    let mut out = ConfEdit::default();
    for (line, err) in f.errors() {
        out.warnings.push(format!(
            "line {line} is invalid ({err}): PostgreSQL will reject the file"
        ));
    }
    for (name, value) in want {
        let (before, changed) = match value {
            Some(v) => {
                let o = f.set(name, v)?;
                (o.before, o.changed)
            }
            None => {
                let had = !f.active(name).is_empty();
                (f.unset(name), had)
            }
        };
        let context = context_of(name);
        if context.is_none() && !name.contains('.') {
            let names = crate::postgres::guc_contexts::PG15.iter().map(|(n, _)| *n);
            let hint = crate::modules::args::did_you_mean(name, names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            out.warnings.push(format!(
                "`{name}` is not a PostgreSQL 15 parameter{hint}: the server may refuse to start"
            ));
        }
        let restart = context == Some("postmaster");
        if changed {
            out.changed_parameters.push(name.clone());
            out.needs_restart |= restart;
        }
        out.parameters.insert(
            name.clone(),
            json!({
                "before": before,
                "after": value,
                "changed": changed,
                "context": context.unwrap_or("unknown"),
                "apply": if restart { "restart" } else { "reload" },
            }),
        );
    }
    out.content = f.render();
    out.changed = out.content != current;
    Ok(out)
}

/// The parameters of `want` that `auto_conf` (postgresql.auto.conf) sets, with their values.
pub fn auto_overrides(auto_conf: &str, want: &[(String, Option<String>)]) -> Vec<(String, String)> {
    let f = ConfFile::parse(auto_conf);
    want.iter()
        .filter_map(|(n, _)| f.get(n).map(|v| (n.clone(), v.to_string())))
        .collect()
}

#[async_trait::async_trait]
impl crate::modules::Module for PgConf {
    fn name(&self) -> &'static str {
        "pg_conf"
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
        wanted(args).map(|_| ())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = args.req("path")?;
        let want = wanted(args)?;
        let spec = AttrSpec::from_args(args)?;
        let (st, text) = read_text(ctx, &path).await?;
        let current = match text {
            Some(t) => t,
            None if args.bool("create", false) => String::new(),
            None => {
                return Err(ModuleError::failed(format!(
                    "{path} does not exist (use the `config_file` of pg_facts, or `create: yes` for a new conf.d file)"
                )))
            }
        };
        let mut ed = edit(&current, &want)?;

        // postgresql.auto.conf (ALTER SYSTEM) wins over postgresql.conf.
        let auto_path = args.string("auto_conf").or_else(|| {
            args.string("data_directory")
                .map(|d| format!("{}/postgresql.auto.conf", d.trim_end_matches('/')))
        });
        let mut overrides = Vec::new();
        if let Some(ap) = &auto_path {
            if *ap != path {
                match read_text(ctx, ap).await {
                    Ok((_, Some(t))) => overrides = auto_overrides(&t, &want),
                    Ok((_, None)) => {}
                    Err(ModuleError::Unreachable(m)) => return Err(ModuleError::Unreachable(m)),
                    Err(e) => ed.warnings.push(format!("could not read {ap}: {e}")),
                }
            }
        }
        for (n, v) in &overrides {
            ed.warnings.push(format!(
                "{} sets {n} = '{v}' (ALTER SYSTEM), which overrides {path}: run `ALTER SYSTEM RESET {n}` for this file to take effect",
                auto_path.as_deref().unwrap_or("postgresql.auto.conf")
            ));
        }

        let (ops, diff) = if ed.changed {
            plan_write(
                &path,
                &st,
                ed.content.clone().into_bytes(),
                &spec,
                args.bool("backup", false),
            )
        } else {
            (attrs_only(&path, &st, &spec), None)
        };
        let mut msg = if ed.changed_parameters.is_empty() && !ed.changed {
            "no change".to_string()
        } else if ed.changed_parameters.is_empty() {
            "earlier duplicates commented out".to_string()
        } else {
            format!(
                "{} changed ({})",
                ed.changed_parameters.join(", "),
                if ed.needs_restart {
                    "restart needed"
                } else {
                    "reload applies it"
                }
            )
        };
        for w in &ed.warnings {
            msg.push_str("; WARNING: ");
            msg.push_str(w);
        }
        let mut result = file_result(&path, &st, &spec, None);
        result.insert("msg".into(), json!(msg));
        result.insert("changed_parameters".into(), json!(ed.changed_parameters));
        result.insert("parameters".into(), Value::Object(ed.parameters));
        result.insert("needs_restart".into(), json!(ed.needs_restart));
        result.insert(
            "needs_reload".into(),
            json!(ed.changed && !ed.needs_restart),
        );
        result.insert(
            "auto_conf_overrides".into(),
            json!(overrides.iter().map(|(n, _)| n).collect::<Vec<_>>()),
        );
        result.insert("warnings".into(), json!(ed.warnings));
        Ok(Plan::ops(ops, diff).with_result(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::args::normalize;

    fn args(v: Value) -> Args {
        normalize("pg_conf", Some(MODULE_ARGS), v.as_object().unwrap(), false).unwrap()
    }

    #[test]
    fn wanted_parameters() {
        let w = wanted(&args(
            json!({"path": "/p", "settings": {"ssl": true, "port": 5433, "ssl_cert_file": "/x"}}),
        ))
        .unwrap();
        assert_eq!(
            w,
            vec![
                ("ssl".to_string(), Some("on".to_string())),
                ("port".to_string(), Some("5433".to_string())),
                ("ssl_cert_file".to_string(), Some("/x".to_string())),
            ]
        );
        let w = wanted(&args(json!({"path": "/p", "name": "ssl", "value": false}))).unwrap();
        assert_eq!(w, vec![("ssl".to_string(), Some("off".to_string()))]);
        let w = wanted(&args(
            json!({"path": "/p", "settings": ["a", "b"], "state": "absent"}),
        ))
        .unwrap();
        assert_eq!(w.len(), 2);
        assert!(wanted(&args(json!({"path": "/p"}))).is_err());
        assert!(wanted(&args(json!({"path": "/p", "name": "a"}))).is_err());
        assert!(wanted(&args(json!({"path": "/p", "name": "a", "settings": {}}))).is_err());
        assert!(wanted(&args(json!({"path": "/p", "settings": {"bad name": 1}}))).is_err());
        assert!(wanted(&args(json!({"path": "/p", "settings": {"a": [1]}}))).is_err());
    }

    #[test]
    fn edit_reports_contexts() {
        let cur = "#listen_addresses = 'localhost'\nport = 5432\n#ssl = off\n";
        let want = vec![
            ("ssl".to_string(), Some("on".to_string())),
            ("listen_addresses".to_string(), Some("*".to_string())),
            ("port".to_string(), Some("5432".to_string())),
        ];
        let e = edit(cur, &want).unwrap();
        assert_eq!(
            e.content,
            "#listen_addresses = 'localhost'\nlisten_addresses = '*'\nport = 5432\n#ssl = off\nssl = on\n"
        );
        assert_eq!(e.changed_parameters, vec!["ssl", "listen_addresses"]);
        assert!(e.needs_restart);
        assert_eq!(e.parameters["ssl"]["apply"], "reload");
        assert_eq!(e.parameters["listen_addresses"]["apply"], "restart");
        assert_eq!(e.parameters["port"]["changed"], false);
        assert_eq!(e.parameters["port"]["before"], "5432");
        // Only sighup parameters: no restart.
        let e = edit(cur, &want[..1]).unwrap();
        assert!(!e.needs_restart && e.changed);
        // Unset.
        let e = edit(cur, &[("port".to_string(), None)]).unwrap();
        assert_eq!(
            e.content,
            "#listen_addresses = 'localhost'\n#port = 5432\n#ssl = off\n"
        );
        assert!(e.needs_restart);
        let e = edit(&e.content, &[("port".to_string(), None)]).unwrap();
        assert!(!e.changed);
        // Typos are flagged.
        let e = edit("", &[("ssl_cert_fle".to_string(), Some("x".into()))]).unwrap();
        assert!(
            e.warnings[0].contains("did you mean `ssl_cert_file`"),
            "{:?}",
            e.warnings
        );
        assert!(edit("", &[("ext.param".to_string(), Some("x".into()))])
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn auto_conf_overrides_are_found() {
        let auto = "# Do not edit this file manually!\nssl = 'off'\nwork_mem = '8MB'\n";
        let want = vec![
            ("SSL".to_string(), Some("on".to_string())),
            ("port".to_string(), Some("1".to_string())),
        ];
        assert_eq!(
            auto_overrides(auto, &want),
            vec![("SSL".to_string(), "off".to_string())]
        );
    }
}

#[cfg(test)]
pub(crate) mod plan_tests {
    use super::*;
    use crate::connection::local::LocalConnection;
    use crate::connection::Op;
    use crate::modules::args::normalize;
    use crate::modules::{HostReader, Module, Outcome, Step};
    use crate::template::Templar;

    pub(crate) async fn plan_with(
        module: &dyn Module,
        spec: &'static [Arg],
        raw: Value,
    ) -> Result<Plan, ModuleError> {
        let args = normalize(module.name(), Some(spec), raw.as_object().unwrap(), false).unwrap();
        let conn = LocalConnection::new();
        let templar = Templar::new();
        let vars = tera::Context::new();
        let ctx = ModuleCtx {
            host: HostReader::new(&conn, None),
            become_user: None,
            templar: &templar,
            vars: &vars,
            search_dirs: &[],
            inventory_hostname: "localhost",
        };
        module.plan(&ctx, &args).await
    }

    /// The file ops and the diff of a plan that changes something.
    pub(crate) fn ops_of(p: &Plan) -> (Vec<&Op>, Option<&crate::modules::Diff>) {
        match &p.outcome {
            Outcome::Change { steps, diff } => (
                steps
                    .iter()
                    .filter_map(|s| match s {
                        Step::Op(o) => Some(o),
                        Step::Action(_) => None,
                    })
                    .collect(),
                diff.as_ref(),
            ),
            _ => (Vec::new(), None),
        }
    }

    #[tokio::test]
    async fn plans_an_atomic_write_with_backup_and_reads_auto_conf() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("postgresql.conf");
        std::fs::write(&conf, "#ssl = off\nport = 5432\n").unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "# Do not edit this file manually!\nport = '5433'\n",
        )
        .unwrap();
        let p = plan_with(
            &PgConf,
            MODULE_ARGS,
            json!({"path": conf.to_str().unwrap(), "data_directory": dir.path().to_str().unwrap(),
                   "settings": {"ssl": "on", "port": 5434}, "backup": true}),
        )
        .await
        .unwrap();
        let (ops, diff) = ops_of(&p);
        assert!(matches!(&ops[..], [Op::Write { backup: true, content, .. }]
            if content.as_slice() == b"#ssl = off\nssl = on\nport = 5434\n"));
        assert_eq!(p.result["needs_restart"], true);
        assert_eq!(p.result["auto_conf_overrides"], json!(["port"]));
        assert!(p.result["msg"].as_str().unwrap().contains("ALTER SYSTEM"));
        assert!(diff.is_some());
    }

    #[tokio::test]
    async fn missing_file_fails_unless_create() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf.d/90-castellan.conf");
        let p = plan_with(
            &PgConf,
            MODULE_ARGS,
            json!({"path": conf.to_str().unwrap(), "name": "ssl", "value": true}),
        )
        .await
        .unwrap_err();
        assert!(p.to_string().contains("does not exist"));
        let p = plan_with(
            &PgConf,
            MODULE_ARGS,
            json!({"path": conf.to_str().unwrap(), "name": "ssl", "value": true, "create": true}),
        )
        .await
        .unwrap();
        assert!(
            matches!(&ops_of(&p).0[..], [Op::Write { content, .. }] if content.as_slice() == b"ssl = on\n")
        );
    }
}
