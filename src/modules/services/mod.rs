//! Service modules, Ansible's names and arguments (the common subset): `systemd` (also
//! `systemd_service`) and `service`, which uses systemd when the host runs it (or `use` says
//! so) and SysV init scripts otherwise. Each plan reads the service's state in one query and
//! defers the commands to [`run::ServiceRun`].
pub mod run;
pub mod service;
pub mod systemd;
pub mod systemd_plan;
pub mod sysv_plan;
pub mod win_plan;

use crate::modules::Args;

/// The `state` a service task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcState {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

pub const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];

impl SvcState {
    pub fn of(args: &Args) -> Option<Self> {
        match args.str("state")? {
            "started" => Some(SvcState::Started),
            "stopped" => Some(SvcState::Stopped),
            "restarted" => Some(SvcState::Restarted),
            "reloaded" => Some(SvcState::Reloaded),
            _ => None,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            SvcState::Started => "started",
            SvcState::Stopped => "stopped",
            SvcState::Restarted => "restarted",
            SvcState::Reloaded => "reloaded",
        }
    }
}
