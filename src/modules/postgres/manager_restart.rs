//! What `pg_service` does when a restart is due on a server a cluster manager runs: castellan
//! never runs `pg_ctl restart`/`stop` there. Under Patroni, with `allow_restart`, the members
//! Patroni flags `pending restart` are restarted through `patronictl restart` one at a time,
//! replicas first, the leader last; without it, and under EFM or an unknown manager always, the
//! task fails with the reason and nothing is restarted.
use std::time::{Duration, Instant};

use crate::connection::{Connection, ExecRequest};
use crate::postgres::manager::Manager;
use crate::postgres::patroni::{parse_members, restart_order, Ctl, Member};
use crate::postgres::service::Service;

/// `patronictl` for the member `svc` describes.
pub fn ctl(svc: &Service) -> Option<Ctl> {
    Some(Ctl {
        patronictl: svc
            .patronictl
            .clone()
            .unwrap_or_else(|| "patronictl".into()),
        config: svc.patroni_config.clone()?,
        scope: svc.cluster.clone()?,
    })
}

/// The message of a host that needs a restart castellan will not do.
pub fn refusal(svc: &Service, pending: &[String], members: &[Member]) -> String {
    let flagged: Vec<String> = members
        .iter()
        .filter(|m| m.pending_restart)
        .map(|m| {
            if m.pending_reason.is_empty() {
                m.name.clone()
            } else {
                format!("{} ({})", m.name, m.pending_reason)
            }
        })
        .collect();
    let what = if pending.is_empty() {
        "a restart".to_string()
    } else {
        format!("a restart for {}", pending.join(", "))
    };
    match svc.manager {
        Manager::Patroni => format!(
            "PostgreSQL needs {what}{}. castellan does not restart a Patroni member unless \
             allowed (allow_restart: yes; role postgres_tls: pg_tls_allow_restart: true), then \
             through `patronictl restart` one member at a time, replicas first: nothing was \
             restarted",
            if flagged.is_empty() {
                String::new()
            } else {
                format!(" (Patroni's Pending restart: {})", flagged.join(", "))
            }
        ),
        m => format!(
            "PostgreSQL needs {what}, and the server is run by a cluster manager ({}): castellan \
             reloads only, never restarts it behind the manager's back; restart it through the \
             manager. Nothing was restarted",
            m.as_str()
        ),
    }
}

async fn run(
    conn: &dyn Connection,
    user: Option<&str>,
    script: String,
) -> Result<(i32, String), String> {
    let req = ExecRequest {
        shell: Some(script),
        become_user: user.map(str::to_string),
        ..ExecRequest::default()
    };
    let out = conn.exec(&req).await.map_err(|e| e.to_string())?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.rc, text.trim().to_string()))
}

/// The members, as `patronictl list` sees them now.
pub async fn members(
    conn: &dyn Connection,
    user: Option<&str>,
    ctl: &Ctl,
) -> Result<Vec<Member>, String> {
    let (rc, text) = run(conn, user, ctl.list()?).await?;
    if rc != 0 {
        return Err(format!("patronictl list failed (exit {rc}): {text}"));
    }
    parse_members(&text)
}

/// What a rolling restart did.
#[derive(Debug, Default)]
pub struct Rolling {
    /// Members restarted, in order.
    pub restarted: Vec<String>,
    /// The members afterwards.
    pub after: Vec<Member>,
}

/// Restart the members Patroni flags, replicas first, the leader last. Patroni applies a
/// dynamic change on each member at its own next loop: wait (up to `timeout`) until every
/// member is flagged before choosing, so none is restarted ahead of its change.
pub async fn rolling_restart(
    conn: &dyn Connection,
    user: Option<&str>,
    ctl: &Ctl,
    timeout: u64,
) -> Result<Rolling, String> {
    let deadline = Instant::now() + Duration::from_secs(timeout.max(1));
    let mut list = members(conn, user, ctl).await?;
    while !list.iter().all(|m| m.pending_restart) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        list = members(conn, user, ctl).await?;
    }
    let mut done = Rolling::default();
    for name in restart_order(&list) {
        let (rc, text) = run(conn, user, ctl.restart_pending(&name)?).await?;
        if rc != 0 {
            return Err(format!(
                "patronictl restart {name} failed (exit {rc}): {text}; restarted before it: {}",
                if done.restarted.is_empty() {
                    "none".to_string()
                } else {
                    done.restarted.join(", ")
                }
            ));
        }
        done.restarted.push(name);
    }
    // Patroni clears the flag once the member runs again with the new values.
    let deadline = Instant::now() + Duration::from_secs(timeout.max(1));
    loop {
        done.after = members(conn, user, ctl).await?;
        let settled = done
            .after
            .iter()
            .all(|m| !m.pending_restart && matches!(m.state.as_str(), "running" | "streaming"));
        if settled || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(manager: &str) -> Service {
        Service::from_value(&json!({
            "method": if manager == "patroni" { "patroni" } else { "pg_ctl" },
            "data_dir": "/srv/pg", "cluster": "batman", "patroni_config": "/etc/p.yml",
            "patroni_name": "db1", "patronictl": "/opt/v/bin/patronictl", "manager": manager,
        }))
        .unwrap()
    }

    #[test]
    fn refusals_say_why_and_what_to_do() {
        let m = vec![Member {
            name: "db1".into(),
            role: "Leader".into(),
            state: "running".into(),
            pending_restart: true,
            pending_reason: "max_connections: 100->150".into(),
        }];
        let p = refusal(&svc("patroni"), &["max_connections".into()], &m);
        assert!(p.contains("a restart for max_connections"), "{p}");
        assert!(p.contains("db1 (max_connections: 100->150)"), "{p}");
        assert!(p.contains("pg_tls_allow_restart: true"), "{p}");
        assert!(p.contains("nothing was restarted"), "{p}");
        let e = refusal(&svc("efm"), &["shared_buffers".into()], &[]);
        assert!(e.contains("cluster manager (efm)"), "{e}");
        assert_eq!(ctl(&svc("patroni")).unwrap().scope, "batman");
    }
}
