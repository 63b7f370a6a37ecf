//! `pg_verify`: from the control node, a real mutual-TLS login (verify-full through rustls, a
//! client certificate from the PKI), optionally checking the fingerprint of the certificate the
//! server presents and that a login without a client certificate is refused. Without
//! `cert_file` it only probes the served certificate (SSLRequest, no login).
//!
//! The plan only resolves where and how to connect; the probe and the logins are a deferred
//! [`Action`] (a login is an effect on the server: a session, its log lines). Check mode skips
//! it, like Ansible skips a `command`: the files it would check were not pushed either.
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map};

use super::target::var_string;
use crate::modules::args::PORT_RANGE;
use crate::modules::{
    Action, ActionCtx, ActionOutput, Arg, Args, CheckMode, Kind, Module, ModuleCtx, ModuleError,
    Plan,
};
use crate::postgres::target::DEFAULT_PORT;
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

fn cert_result(r: &mut Map<String, serde_json::Value>, c: &CertInfo) {
    r.insert("server_cert_sha256".into(), json!(c.sha256));
    r.insert("not_after".into(), json!(c.not_after));
    r.insert("server_cert_subject".into(), json!(c.subject));
    r.insert("server_cert_sans".into(), json!(c.sans));
}

/// The probe and logins the plan defers to the engine.
struct Verify {
    spec: LoginSpec,
    expect_fingerprint: Option<String>,
    expect_refused: bool,
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

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let host = args
            .string("host")
            .or_else(|| var_string(ctx.vars, "ansible_host"))
            .unwrap_or_else(|| ctx.inventory_hostname.to_string());
        let server_name = args
            .string("server_name")
            .or_else(|| var_string(ctx.vars, "pg_dns_name"))
            .unwrap_or_else(|| host.clone());
        let port = match args.int("port") {
            Some(p) => u16::try_from(p)
                .map_err(|_| ModuleError::InvalidArgs(format!("port {p} is out of range")))?,
            None => match var_string(ctx.vars, "pg_port") {
                Some(p) => p.parse().map_err(|_| {
                    ModuleError::InvalidArgs(format!(
                        "variable pg_port must be a port number, got `{p}`"
                    ))
                })?,
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
        Ok(Plan::action(Verify {
            spec,
            expect_fingerprint: args.string("expect_fingerprint"),
            expect_refused: args.bool("expect_refused_without_cert", false),
        })
        .with("host", host)
        .with("server_name", server_name)
        .with("port", port))
    }
}

#[async_trait]
impl Action for Verify {
    fn describe(&self) -> String {
        let s = &self.spec;
        if s.cert_file.is_some() {
            format!(
                "log in as {} to {}:{} with a client certificate (verify-full as {})",
                s.user, s.host, s.port, s.server_name
            )
        } else {
            format!(
                "probe the certificate {}:{} serves (verify-full as {})",
                s.host, s.port, s.server_name
            )
        }
    }

    fn in_check_mode(&self) -> CheckMode {
        CheckMode::Skip(format!("check mode: would {}", self.describe()))
    }

    async fn run(&self, _ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let spec = &self.spec;
        let (host, port, server_name) = (&spec.host, spec.port, &spec.server_name);
        let mut r = Map::new();
        let fail =
            |r: Map<String, serde_json::Value>, msg: String| ModuleError::failed_with(msg, r);
        let presented: CertInfo = if spec.cert_file.is_some() {
            match login(spec, true).await {
                Ok(o) => {
                    r.insert("ssl".into(), json!(o.ssl));
                    r.insert("tls_version".into(), json!(o.tls_version));
                    r.insert("login_ms".into(), json!(o.elapsed.as_secs_f64() * 1000.0));
                    cert_result(&mut r, &o.cert);
                    if !o.ssl {
                        return Err(fail(
                            r,
                            "logged in, but pg_stat_ssl says the session is not encrypted".into(),
                        ));
                    }
                    o.cert
                }
                Err(e) => {
                    if let Some(c) = &e.cert {
                        cert_result(&mut r, c);
                    }
                    return Err(fail(
                        r,
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
            match probe(addr, server_name, spec.timeout).await {
                Ok(Some(c)) => {
                    r.insert("ssl".into(), json!(true));
                    cert_result(&mut r, &c);
                    c
                }
                Ok(None) => {
                    r.insert("ssl".into(), json!(false));
                    return Err(fail(
                        r,
                        format!("{host}:{port} does not accept TLS (ssl = off?)"),
                    ));
                }
                Err(e) => return Err(fail(r, e)),
            }
        };

        if let Some(want) = &self.expect_fingerprint {
            let want = normalize_fingerprint(want);
            let ok = want == presented.sha256;
            r.insert("fingerprint_matches".into(), json!(ok));
            if !ok {
                return Err(fail(
                    r,
                    format!(
                        "{host}:{port} presents the certificate with SHA-256 {} ({}), not the one \
                         just pushed ({want}): the server has not loaded the new certificate \
                         (reload it: pg_service state=applied) or ssl_cert_file points elsewhere",
                        presented.sha256, presented.subject
                    ),
                ));
            }
        }

        if self.expect_refused {
            match login(spec, false).await {
                Ok(_) => {
                    return Err(fail(
                        r,
                        format!(
                            "a login as {} without a client certificate was accepted on {host}:{port}: \
                             the matching pg_hba.conf line does not require one (use `cert`, or \
                             `clientcert=verify-full` on a hostssl line)",
                            spec.user
                        ),
                    ))
                }
                Err(e) if e.refused_by_server => {
                    r.insert("refused_without_cert".into(), json!(e.msg));
                }
                Err(e) => {
                    return Err(fail(
                        r,
                        format!(
                            "the login without a client certificate failed before the server could refuse it: {}",
                            e.msg
                        ),
                    ))
                }
            }
        }
        Ok(ActionOutput {
            changed: false,
            result: r,
            ..ActionOutput::default()
        })
    }
}
