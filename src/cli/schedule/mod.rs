//! `castellan schedule install`: run a castellan command on a timer. Writes a systemd service +
//! timer (or, with `--cron`, a cron file for hosts without systemd) that runs
//! `castellan --lock FILE COMMAND...` from the current directory, appends its stdout (the JSON
//! report with `--output json`) to a log file and its stderr to the journal. Before writing,
//! the command is parsed as castellan would parse it (exit 5 on a mistake) and, when
//! `systemd-analyze` is installed, the units are checked with `systemd-analyze verify`.
//!
//! Why a command rather than files under `playbooks/`: the units need absolute paths (the
//! binary, the inventory's directory, the lock and the log) and systemd's quoting, which a
//! copied file gets wrong silently; here they are worked out and checked once.
pub mod cron;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Args, Parser, Subcommand};

use crate::connection::local::write_atomic;
use crate::connection::ssh::check_user_name;
use crate::connection::Attrs;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write the units (or cron file) that run a castellan command on a timer, with a lock so
    /// two runs never overlap
    #[command(after_help = "Examples:\n  \
        castellan schedule install --name rotate -- playbook playbooks/rotate-certs.yml -i inventory.yml --output json\n  \
        castellan schedule install --name certs-status --on-calendar hourly --randomized-delay 5min -- \\\n      \
        certs status -i inventory.yml --output json --prometheus-file /var/lib/prometheus/node-exporter/castellan.prom\n  \
        castellan schedule install --name rotate --cron -- playbook playbooks/rotate-certs.yml -i inventory.yml --output json\n\
        Then: systemctl daemon-reload && systemctl enable --now castellan-NAME.timer")]
    Install(InstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Name of the job: units castellan-NAME.service and .timer, cron file castellan-NAME
    /// (letters, digits, '-' and '_')
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// When to run (systemd OnCalendar: daily, hourly, weekly, "Mon *-*-* 03:00"...)
    #[arg(long, value_name = "CALENDAR", default_value = "daily")]
    pub on_calendar: String,
    /// Random delay added to each start (systemd RandomizedDelaySec: 1h, 15min, 0...)
    #[arg(long, value_name = "TIMESPAN", default_value = "1h")]
    pub randomized_delay: String,
    /// Where the units go
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
    /// Write a cron file instead of systemd units (hosts without systemd)
    #[arg(long)]
    pub cron: bool,
    /// Where the cron file goes
    #[arg(long, value_name = "DIR", default_value = "/etc/cron.d")]
    pub cron_dir: PathBuf,
    /// The cron schedule (five fields); default: from --on-calendar daily/hourly/weekly, at a
    /// minute and hour derived from NAME
    #[arg(long, value_name = "FIELDS")]
    pub cron_schedule: Option<String>,
    /// The lock file two runs share (default /run/lock/castellan-NAME.lock)
    #[arg(long, value_name = "FILE")]
    pub lock_file: Option<PathBuf>,
    /// Where the command's stdout is appended (default /var/log/castellan/NAME.log)
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// The user the job runs as (default root)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The directory the command runs in (default: the current one)
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
    /// The castellan binary the job runs (default: this one)
    #[arg(long, value_name = "PATH")]
    pub castellan: Option<PathBuf>,
    /// Print the files instead of writing them
    #[arg(long)]
    pub print: bool,
    /// The castellan command to run, after `--` (e.g. `-- playbook rotate-certs.yml -i inv.yml
    /// --output json`)
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A scheduled job, checked.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub castellan: PathBuf,
    pub lock_file: PathBuf,
    pub command: Vec<String>,
    pub working_directory: PathBuf,
    pub log_file: PathBuf,
    pub user: Option<String>,
    pub on_calendar: String,
    pub randomized_delay: String,
}

impl Job {
    /// What the job runs: `castellan --lock FILE COMMAND...`.
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![
            self.castellan.display().to_string(),
            "--lock".into(),
            self.lock_file.display().to_string(),
        ];
        v.extend(self.command.iter().cloned());
        v
    }

    /// systemd's `LogsDirectory=` (created for the job) when the log is under /var/log.
    pub fn logs_directory(&self) -> Option<String> {
        let dir = self.log_file.parent()?.strip_prefix("/var/log").ok()?;
        let d = dir.display().to_string();
        (!d.is_empty()).then_some(d)
    }
}

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// Text that goes into a unit or cron line: no control character (a newline would start a new
/// setting or job).
fn one_line(what: &str, v: &str) -> Result<()> {
    if v.chars().any(char::is_control) {
        return Err(usage(format!(
            "{what} {v:?}: control characters are not allowed"
        )));
    }
    Ok(())
}

fn absolute(what: &str, p: &Path) -> Result<()> {
    one_line(what, &p.display().to_string())?;
    if !p.is_absolute() {
        return Err(usage(format!(
            "{what} {}: give an absolute path",
            p.display()
        )));
    }
    if p.display().to_string().chars().any(char::is_whitespace) {
        return Err(usage(format!(
            "{what} {}: a path with spaces is not supported here",
            p.display()
        )));
    }
    Ok(())
}

/// The job the arguments describe, checked.
pub fn job(a: &InstallArgs) -> Result<Job> {
    if a.name.is_empty()
        || a.name.len() > 64
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(usage(format!(
            "--name {:?}: use 1 to 64 letters, digits, '-' and '_' (cron ignores other file names)",
            a.name
        )));
    }
    for w in &a.command {
        one_line("the command's argument", w)?;
    }
    let mut argv = vec!["castellan".to_string()];
    argv.extend(a.command.iter().cloned());
    let parsed = super::Cli::try_parse_from(&argv).map_err(|e| {
        usage(format!(
            "the scheduled command `castellan {}` is not valid: {}",
            a.command.join(" "),
            e.render().to_string().trim().trim_start_matches("error: ")
        ))
    })?;
    if parsed.lock.is_some() {
        return Err(usage(
            "the scheduled command has its own --lock: give it to `schedule install --lock-file` instead".into(),
        ));
    }
    if matches!(parsed.command, super::Command::Schedule(_)) {
        return Err(usage(
            "a scheduled command cannot be `schedule` itself".into(),
        ));
    }
    one_line("--on-calendar", &a.on_calendar)?;
    one_line("--randomized-delay", &a.randomized_delay)?;
    if let Some(u) = &a.user {
        check_user_name(u).map_err(|e| usage(format!("--user: {e}")))?;
    }
    let castellan = match &a.castellan {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| Error::Internal(format!("cannot find this program's path: {e}")))?,
    };
    absolute("--castellan", &castellan)?;
    if !castellan.is_file() {
        return Err(usage(format!(
            "--castellan {}: no such file",
            castellan.display()
        )));
    }
    let working_directory = match &a.working_directory {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .map_err(|e| usage(format!("cannot read the current directory: {e}")))?,
    };
    absolute("--working-directory", &working_directory)?;
    let lock_file = a
        .lock_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/run/lock/castellan-{}.lock", a.name)));
    absolute("--lock-file", &lock_file)?;
    let log_file = a
        .log_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/var/log/castellan/{}.log", a.name)));
    absolute("--log-file", &log_file)?;
    Ok(Job {
        name: a.name.clone(),
        castellan,
        lock_file,
        command: a.command.clone(),
        working_directory,
        log_file,
        user: a.user.clone(),
        on_calendar: a.on_calendar.clone(),
        randomized_delay: a.randomized_delay.clone(),
    })
}

/// `systemd-analyze verify` on the units, in a scratch directory: `Ok(false)` when
/// systemd-analyze is not installed.
fn verify(files: &[(String, String)]) -> Result<bool> {
    let scratch = tempfile::tempdir()
        .map_err(|e| Error::Internal(format!("cannot make a scratch directory: {e}")))?;
    let mut paths = Vec::new();
    for (name, text) in files {
        let p = scratch.path().join(name);
        std::fs::write(&p, text)
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", p.display())))?;
        paths.push(p);
    }
    let out = match Process::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::Internal(format!("cannot run systemd-analyze: {e}"))),
    };
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() || !said.is_empty() {
        return Err(usage(format!(
            "systemd-analyze verify rejects the units (see them with --print):\n{said}"
        )));
    }
    Ok(true)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if !dir.is_dir() {
        return Err(usage(format!("{}: no such directory", dir.display())));
    }
    let attrs = Attrs {
        mode: Some(0o644),
        ..Attrs::default()
    };
    write_atomic(
        &path.display().to_string(),
        text.as_bytes(),
        &attrs,
        false,
        false,
    )
    .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

pub fn run(cmd: ScheduleCommand) -> Result<i32> {
    let ScheduleCommand::Install(a) = cmd;
    let job = job(&a)?;
    if a.cron {
        let schedule = match &a.cron_schedule {
            Some(s) => s.clone(),
            None => cron::default_schedule(&job.name, &job.on_calendar).ok_or_else(|| {
                usage(format!(
                    "--on-calendar {:?} has no cron equivalent: give --cron-schedule \"M H DOM MON DOW\"",
                    job.on_calendar
                ))
            })?,
        };
        cron::check_schedule(&schedule).map_err(usage)?;
        let text = cron::file(&job, &schedule).map_err(usage)?;
        let name = format!("castellan-{}", job.name);
        if a.print {
            print!("# {}\n{text}", a.cron_dir.join(&name).display());
            return Ok(0);
        }
        let path = write(&a.cron_dir, &name, &text)?;
        if let Some(dir) = job.log_file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        println!("wrote {}", path.display());
        println!(
            "cron runs it at \"{schedule}\"; its output: {} (stderr: {}.err)",
            job.log_file.display(),
            job.log_file.display()
        );
        return Ok(0);
    }
    let files = [
        (systemd::service_name(&job), systemd::service(&job)),
        (systemd::timer_name(&job), systemd::timer(&job)),
    ];
    if a.print {
        for (name, text) in &files {
            print!("# {}\n{text}\n", a.unit_dir.join(name).display());
        }
        return Ok(0);
    }
    let verified = verify(&files)?;
    for (name, text) in &files {
        let p = write(&a.unit_dir, name, text)?;
        println!("wrote {}", p.display());
    }
    if verified {
        println!("checked with systemd-analyze verify");
    } else {
        println!("not checked: systemd-analyze is not installed");
    }
    println!(
        "enable it:  systemctl daemon-reload && systemctl enable --now {}\n\
         watch it:   systemctl list-timers {}; journalctl -u {}; tail {}",
        systemd::timer_name(&job),
        systemd::timer_name(&job),
        systemd::service_name(&job),
        job.log_file.display()
    );
    Ok(0)
}
