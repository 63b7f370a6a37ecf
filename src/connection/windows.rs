//! A Windows host (`ansible_shell_type: powershell` or `cmd`): the SSH connection
//! ([`super::ssh`]) carries the fixed PowerShell bootstrap ([`super::powershell::command_line`])
//! and every operation's script and input travel on stdin ([`super::stdin_script::frame`]).
//!
//! Become: Windows has no sudo; the OpenSSH login is the account that acts (log in as an
//! administrator: sshd gives an administrator's session its full token). `become_user` may be
//! left unset, `root`, `SYSTEM`, `Administrator` or the login user itself (all mean "as the
//! login"); any other account is refused rather than silently run as the login.
use async_trait::async_trait;

use super::powershell::{self, Flavour, ScriptError};
use super::ssh::SshConnection;
use super::stdin_script;
use super::{ConnError, Connection, ExecOutput, ExecRequest, FileState, Op, OpOutput, Want};

/// An SSH connection to a Windows host.
#[derive(Debug, Clone)]
pub struct WindowsConnection {
    ssh: SshConnection,
    flavour: Flavour,
}

/// The become users that mean "the login itself" on Windows.
const AS_LOGIN: [&str; 3] = ["root", "SYSTEM", "Administrator"];

/// Refuse a become user the login cannot stand for (see the module documentation).
pub fn check_become(user: Option<&str>, login: Option<&str>) -> Result<(), ConnError> {
    match user {
        None => Ok(()),
        Some(u) if AS_LOGIN.iter().any(|a| a.eq_ignore_ascii_case(u)) => Ok(()),
        Some(u) if login.is_some_and(|l| l.eq_ignore_ascii_case(u)) => Ok(()),
        Some(u) => Err(ConnError::Failed(format!(
            "become_user {u}: on a Windows host castellan acts as the SSH login (log in as an \
             administrator); becoming another account is not supported"
        ))),
    }
}

fn script_err(e: ScriptError) -> ConnError {
    ConnError::Failed(e.to_string())
}

/// The error of a script that exited non-zero: its stderr, else the exit code.
fn failed(what: &str, out: &ExecOutput) -> ConnError {
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    if out.rc == powershell::INCOMPLETE_RC && err.is_empty() {
        ConnError::Failed(format!(
            "{what}: the script arrived incomplete; nothing was run"
        ))
    } else if err.is_empty() {
        ConnError::Failed(format!("{what} failed (exit code {})", out.rc))
    } else {
        ConnError::Failed(err.to_string())
    }
}

impl WindowsConnection {
    pub fn new(ssh: SshConnection, flavour: Flavour) -> WindowsConnection {
        WindowsConnection { ssh, flavour }
    }

    fn login(&self) -> Option<&str> {
        self.ssh.params().user.as_deref()
    }

    /// Send one framed script (and its input) through the bootstrap.
    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<ExecOutput, ConnError> {
        let input =
            stdin_script::frame(script, stdin).map_err(|e| ConnError::Failed(e.to_string()))?;
        self.ssh
            .run_line(&powershell::command_line(self.flavour), Some(&input))
            .await
    }

    async fn run_ok(
        &self,
        what: &str,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ConnError> {
        let out = self.run(script, stdin).await?;
        if out.rc != 0 {
            return Err(failed(what, &out));
        }
        Ok(out)
    }
}

#[async_trait]
impl Connection for WindowsConnection {
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, ConnError> {
        check_become(req.become_user.as_deref(), self.login())?;
        let script = powershell::exec_script(req).map_err(|e| ConnError::Failed(e.to_string()))?;
        let out = self.run(&script, req.stdin.as_deref()).await?;
        if out.rc == powershell::INCOMPLETE_RC && out.stderr.is_empty() {
            return Err(failed(&req.display(), &out));
        }
        Ok(out)
    }

    async fn stat(
        &self,
        path: &str,
        want: Want,
        become_user: Option<&str>,
    ) -> Result<FileState, ConnError> {
        check_become(become_user, self.login())?;
        let script =
            powershell::stat_script(path, want).map_err(|e| ConnError::Failed(e.to_string()))?;
        let out = self.run_ok(&format!("stat {path}"), &script, None).await?;
        powershell::parse_stat(&out.stdout, want).map_err(ConnError::Failed)
    }

    async fn apply(&self, op: &Op, become_user: Option<&str>) -> Result<OpOutput, ConnError> {
        let mut res = OpOutput::default();
        if let Op::Exec(req) = op {
            let mut req = req.clone();
            if req.become_user.is_none() {
                req.become_user = become_user.map(str::to_string);
            }
            res.exec = Some(self.exec(&req).await?);
            return Ok(res);
        }
        check_become(become_user, self.login())?;
        let Some(job) = powershell::file_job(op) else {
            return Ok(res);
        };
        let job = job.map_err(script_err)?;
        let out = self
            .run_ok(&op.describe(), &job.script, job.stdin.as_deref())
            .await?;
        if matches!(op, Op::Write { .. }) {
            res.backup_file = powershell::backup_made(&out.stdout);
        }
        Ok(res)
    }

    async fn close(&self) {
        self.ssh.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn become_means_the_login_or_is_refused() {
        assert!(check_become(None, None).is_ok());
        assert!(check_become(Some("root"), None).is_ok());
        assert!(check_become(Some("system"), None).is_ok());
        assert!(check_become(Some("deploy"), Some("Deploy")).is_ok());
        let e = check_become(Some("postgres"), Some("admin")).unwrap_err();
        assert!(
            e.to_string()
                .contains("becoming another account is not supported"),
            "{e}"
        );
    }

    #[test]
    fn incomplete_scripts_and_failures_say_so() {
        let out = ExecOutput {
            rc: 125,
            ..ExecOutput::default()
        };
        assert!(failed("stat x", &out)
            .to_string()
            .contains("arrived incomplete"));
        let out = ExecOutput {
            rc: 1,
            stderr: b"Access is denied.\r\n".to_vec(),
            ..ExecOutput::default()
        };
        assert_eq!(failed("stat x", &out).to_string(), "Access is denied.");
        let out = ExecOutput {
            rc: 3,
            ..ExecOutput::default()
        };
        assert_eq!(
            failed("stat x", &out).to_string(),
            "stat x failed (exit code 3)"
        );
    }
}
