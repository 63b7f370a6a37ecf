//! The deferred commands of a service task (`systemctl start`, `service NAME stop`,
//! `update-rc.d NAME enable`...), run in order, each with Ansible's failure message and whether
//! it counts as a change (`daemon-reload` does not).
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map};

use crate::connection::ExecRequest;
use crate::modules::{Action, ActionCtx, ActionOutput, CheckMode, ModuleError};

/// One step of the run.
#[derive(Debug, Clone)]
pub enum Cmd {
    /// A command; `fail` is the message when it fails (its output is appended); `counts`: the
    /// task is changed when it runs.
    Run {
        argv: Vec<String>,
        fail: String,
        counts: bool,
    },
    /// Wait between a stop and a start (`service`'s `sleep`).
    Sleep(u64),
    /// A script for the host's shell (PowerShell on a Windows host), sent over stdin.
    Script {
        shell: String,
        /// What the log shows for it.
        label: String,
        fail: String,
    },
}

impl Cmd {
    pub fn run(argv: Vec<String>, fail: impl Into<String>) -> Self {
        Cmd::Run {
            argv,
            fail: fail.into(),
            counts: true,
        }
    }

    /// A command that is not a change of the service (`daemon-reload`).
    pub fn quiet(argv: Vec<String>, fail: impl Into<String>) -> Self {
        Cmd::Run {
            argv,
            fail: fail.into(),
            counts: false,
        }
    }

    fn counts(&self) -> bool {
        matches!(self, Cmd::Run { counts: true, .. } | Cmd::Script { .. })
    }
}

/// The commands of one task.
pub struct ServiceRun {
    pub cmds: Vec<Cmd>,
}

impl ServiceRun {
    /// Some command changes something the task counts.
    pub fn changes(&self) -> bool {
        self.cmds.iter().any(Cmd::counts)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end().to_string()
}

#[async_trait]
impl Action for ServiceRun {
    fn describe(&self) -> String {
        self.cmds
            .iter()
            .map(|c| match c {
                Cmd::Run { argv, .. } => argv.join(" "),
                Cmd::Sleep(s) => format!("sleep {s}"),
                Cmd::Script { label, .. } => label.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn in_check_mode(&self) -> CheckMode {
        if self.changes() {
            CheckMode::WouldChange
        } else {
            CheckMode::Unchanged
        }
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        for c in &self.cmds {
            let (req, fail) = match c {
                Cmd::Sleep(s) => {
                    tokio::time::sleep(Duration::from_secs(*s)).await;
                    continue;
                }
                Cmd::Run { argv, fail, .. } => (
                    ExecRequest {
                        argv: argv.clone(),
                        ..ExecRequest::default()
                    },
                    fail,
                ),
                Cmd::Script { shell, fail, .. } => (
                    ExecRequest {
                        shell: Some(shell.clone()),
                        ..ExecRequest::default()
                    },
                    fail,
                ),
            };
            let req = ExecRequest {
                become_user: ctx.become_user.map(str::to_string),
                ..req
            };
            let out = ctx.conn.exec(&req).await?;
            if out.rc != 0 {
                let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
                let why = if stderr.is_empty() { &stdout } else { &stderr };
                let mut r = Map::new();
                r.insert("rc".into(), json!(out.rc));
                r.insert("stdout".into(), json!(stdout));
                r.insert("stderr".into(), json!(stderr));
                return Err(ModuleError::failed_with(format!("{fail}: {why}"), r));
            }
        }
        Ok(ActionOutput {
            changed: self.changes(),
            result: Map::new(),
            ..ActionOutput::default()
        })
    }
}
