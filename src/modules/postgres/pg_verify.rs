//! `pg_verify`: from the control node, a real mutual-TLS login (verify-full through rustls, a
//! client certificate from the PKI), optionally checking the fingerprint of the certificate the
//! server presents and that a login without a client certificate is refused. Without
//! `cert_file` it only probes the served certificate (SSLRequest, no login).
//!
//! Read-only: it runs in check mode too, where a failure is reported (`would_fail`) instead of
//! failing the host, since the files it expects were not pushed.
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::modules::args::PORT_RANGE;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, Plan};
use crate::postgres::target::{var_string, DEFAULT_PORT};
use crate::postgres::verify::{login, normalize_fingerprint, probe, CertInfo, LoginSpec};

pub struct PgVerify;

const ARGS: &[Arg] = &[
    Arg::new("host", Kind::Str),
    Arg::new("server_name", Kind::Str),
    Arg::new("port", Kind::Int).range(PORT_RANGE.0, PORT_RANGE.1),
    Arg::new("user", Kind::Str),
    Arg::new("dbname", Kind::Str),
    Arg::new("password", Kind::Str),
    Arg::new("ca_file", Kind::Str).required(),
    Arg::new("cert_file", Kind::Str),
    Arg::new("key_file", Kind::Str),
    Arg::new("expect_fingerprint", Kind::Str),
    Arg::new("expect_refused_without_cert", Kind::Bool),
    Arg::new("timeout", Kind::Int).range(1, 600),
];

fn cert_result(plan: &mut Plan, c: &CertInfo) {
    plan.result
        .insert("server_cert_sha256".into(), json!(c.sha256));
    plan.result.insert("not_after".into(), json!(c.not_after));
    plan.result
        .insert("server_cert_subject".into(), json!(c.subject));
    plan.result.insert("server_cert_sans".into(), json!(c.sans));
}

/// In check mode a failure is only reported.
fn fail(mut plan: Plan, check: bool, msg: String) -> Plan {
    if check {
        plan.result.insert("would_fail".into(), json!(msg));
        plan.result
            .insert("msg".into(), json!(format!("check mode: {msg}")));
        plan
    } else {
        plan.failed = Some(msg);
        plan
    }
}

#[async_trait]
impl Module for PgVerify {
    fn name(&self) -> &'static str {
        "pg_verify"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn runs_on_control_node(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if args.has("cert_file") != args.has("key_file") {
            return Err("cert_file and key_file go together".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, String> {
        let host = args
            .string("host")
            .or_else(|| var_string(ctx.vars, "ansible_host"))
            .unwrap_or_else(|| ctx.inventory_hostname.to_string());
        let server_name = args
            .string("server_name")
            .or_else(|| var_string(ctx.vars, "pg_dns_name"))
            .unwrap_or_else(|| host.clone());
        let port = match args.int("port") {
            Some(p) => u16::try_from(p).map_err(|_| format!("port {p} is out of range"))?,
            None => match var_string(ctx.vars, "pg_port") {
                Some(p) => p
                    .parse()
                    .map_err(|_| format!("variable pg_port must be a port number, got `{p}`"))?,
                None => DEFAULT_PORT,
            },
        };
        let timeout = Duration::from_secs(args.int("timeout").unwrap_or(10).clamp(1, 600) as u64);
        let spec = LoginSpec {
            host: host.clone(),
            server_name: server_name.clone(),
            port,
            user: args.string("user").unwrap_or_else(|| "postgres".into()),
            dbname: args.string("dbname").unwrap_or_else(|| "postgres".into()),
            password: args.string("password"),
            ca_file: args.req("ca_file")?,
            cert_file: args.string("cert_file"),
            key_file: args.string("key_file"),
            timeout,
        };
        let check = ctx.check_mode;
        let mut plan = Plan::ok()
            .with("host", host.clone())
            .with("server_name", server_name.clone())
            .with("port", port);

        let presented: CertInfo = if spec.cert_file.is_some() {
            match login(&spec, true).await {
                Ok(o) => {
                    plan.result.insert("ssl".into(), json!(o.ssl));
                    plan.result
                        .insert("tls_version".into(), json!(o.tls_version));
                    plan.result
                        .insert("login_ms".into(), json!(o.elapsed.as_secs_f64() * 1000.0));
                    cert_result(&mut plan, &o.cert);
                    if !o.ssl {
                        return Ok(fail(
                            plan,
                            check,
                            "logged in, but pg_stat_ssl says the session is not encrypted".into(),
                        ));
                    }
                    o.cert
                }
                Err(e) => {
                    if let Some(c) = &e.cert {
                        cert_result(&mut plan, c);
                    }
                    return Ok(fail(
                        plan,
                        check,
                        format!(
                            "mutual-TLS login as {} to {}:{} (verify-full as {}) failed: {}",
                            spec.user, host, port, server_name, e.msg
                        ),
                    ));
                }
            }
        } else {
            let addr: SocketAddr = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, port),
                Err(_) => tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{host} resolves to no address"))?,
            };
            match probe(addr, &server_name, timeout).await {
                Ok(Some(c)) => {
                    plan.result.insert("ssl".into(), json!(true));
                    cert_result(&mut plan, &c);
                    c
                }
                Ok(None) => {
                    plan.result.insert("ssl".into(), json!(false));
                    return Ok(fail(
                        plan,
                        check,
                        format!("{host}:{port} does not accept TLS (ssl = off?)"),
                    ));
                }
                Err(e) => return Ok(fail(plan, check, e)),
            }
        };

        if let Some(want) = args.str("expect_fingerprint") {
            let want = normalize_fingerprint(want);
            let ok = want == presented.sha256;
            plan.result.insert("fingerprint_matches".into(), json!(ok));
            if !ok {
                return Ok(fail(
                    plan,
                    check,
                    format!(
                        "{host}:{port} presents the certificate with SHA-256 {} ({}), not the one \
                         just pushed ({want}): the server has not loaded the new certificate \
                         (reload it: pg_service state=applied) or ssl_cert_file points elsewhere",
                        presented.sha256, presented.subject
                    ),
                ));
            }
        }

        if args.bool("expect_refused_without_cert", false) {
            match login(&spec, false).await {
                Ok(_) => {
                    return Ok(fail(
                        plan,
                        check,
                        format!(
                            "a login as {} without a client certificate was accepted on {host}:{port}: \
                             the matching pg_hba.conf line does not require one (use `cert`, or \
                             `clientcert=verify-full` on a hostssl line)",
                            spec.user
                        ),
                    ))
                }
                Err(e) if e.refused_by_server => {
                    plan.result.insert("refused_without_cert".into(), json!(e.msg));
                }
                Err(e) => {
                    return Ok(fail(
                        plan,
                        check,
                        format!(
                            "the login without a client certificate failed before the server could refuse it: {}",
                            e.msg
                        ),
                    ))
                }
            }
        }
        Ok(plan)
    }
}
