//! `pg_facts`: what the cluster on the host is (version, files, data directory owner, SSL
//! settings) and how it is controlled, read over its local socket as the database OS user in
//! one round trip. Sets the `pg_facts` fact. Read-only: runs in check mode too.
use async_trait::async_trait;
use serde_json::json;

use super::target;
use crate::connection::ExecRequest;
use crate::modules::args::PORT_RANGE;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::postgres::facts::{build_facts, facts_script, Method};

pub struct PgFacts;

const ARGS: &[Arg] = &[
    Arg::new("socket_dir", Kind::Str),
    Arg::new("port", Kind::Int).range(PORT_RANGE.0, PORT_RANGE.1),
    Arg::new("os_user", Kind::Str),
    Arg::new("login_user", Kind::Str),
    Arg::new("bin_dir", Kind::Str),
    Arg::new("service_method", Kind::Str).choices(Method::NAMES),
];

#[async_trait]
impl Module for PgFacts {
    fn name(&self) -> &'static str {
        "pg_facts"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn sets_facts(&self) -> &'static [&'static str] {
        &["pg_facts"]
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        if crate::modules::services::win_plan::is_windows(ctx) {
            return super::pg_win::facts_plan(ctx, args).await;
        }
        let t = target::resolve(args, ctx.vars, None)?;
        let req = ExecRequest {
            shell: Some(facts_script(&t)?),
            become_user: Some(t.os_user.clone()),
            ..ExecRequest::default()
        };
        let out = ctx.host.query(&req).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.rc != 0 {
            let mut result = serde_json::Map::new();
            result.insert("rc".into(), json!(out.rc));
            return Err(ModuleError::failed_with(format!(
                "cannot query PostgreSQL through {}/.s.PGSQL.{} as OS user {} (database user {}): {} \
                 (is the server running? are socket_dir/port/os_user right?)",
                t.socket_dir,
                t.port,
                t.os_user,
                t.login_user,
                String::from_utf8_lossy(&out.stderr).trim()
            ), result));
        }
        let facts = build_facts(&stdout, &t, args.str("service_method"))?;
        let mut plan = Plan::ok()
            .with("pg_facts", facts.clone())
            .with("ansible_facts", json!({ "pg_facts": facts.clone() }));
        plan.facts.insert("pg_facts".into(), facts);
        Ok(plan)
    }
}
