//! The cron file of a scheduled job, for hosts without systemd: `/etc/cron.d/castellan-NAME`
//! with one line that runs the command with `--lock` (so a run still going when the next one
//! starts makes the second exit 75, having done nothing), stdout appended to the log file and
//! stderr to `LOG.err`.
use super::Job;
use crate::connection::quote::quote_str;

/// FNV-1a of the job name: the same spread-out time for the same name on every install.
fn spread(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cron schedule for an `OnCalendar` keyword (daily, hourly, weekly), at a minute and hour
/// derived from the job name (cron has no RandomizedDelaySec: jobs of many machines with
/// different names do not all start at once). `None` for any other calendar.
pub fn default_schedule(name: &str, on_calendar: &str) -> Option<String> {
    let h = spread(name);
    let (minute, hour) = (h % 60, (h / 60) % 24);
    match on_calendar {
        "daily" => Some(format!("{minute} {hour} * * *")),
        "hourly" => Some(format!("{minute} * * * *")),
        "weekly" => Some(format!("{minute} {hour} * * 1")),
        _ => None,
    }
}

/// Checks a cron schedule: five fields of digits, `*`, `/`, `,`, `-` and names (mon, jan...).
pub fn check_schedule(s: &str) -> Result<(), String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5
        || fields.iter().any(|f| {
            !f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "*/,-".contains(c))
        })
    {
        return Err(format!(
            "--cron-schedule {s:?}: expected five cron fields (minute hour day month weekday), \
             e.g. \"17 3 * * *\""
        ));
    }
    Ok(())
}

/// In a cron command, `%` is a newline unless escaped.
fn cron_escape(s: &str) -> String {
    s.replace('%', "\\%")
}

/// The cron file.
pub fn file(job: &Job, schedule: &str) -> Result<String, String> {
    let q = |s: &str| quote_str(s).map_err(|e| format!("{s:?}: {e}"));
    let mut words = Vec::new();
    for a in job.argv() {
        words.push(q(&a)?);
    }
    let log = job.log_file.display().to_string();
    let line = format!(
        "cd {} && {} >>{} 2>>{}",
        q(&job.working_directory.display().to_string())?,
        words.join(" "),
        q(&log)?,
        q(&format!("{log}.err"))?
    );
    Ok(format!(
        "# Written by `castellan schedule install --name {name} --cron` (castellan {version}).\n\
         # Output: {log} (the JSON report with --output json); messages: {log}.err. Exit codes:\n\
         # 2 a host failed (certs status: renewal due or mismatch), 3 a host unreachable,\n\
         # 4 invalid input, 75 another run held the lock (it did nothing).\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         {schedule} {user} {line}\n",
        name = job.name,
        version = env!("CARGO_PKG_VERSION"),
        user = job.user.as_deref().unwrap_or("root"),
        line = cron_escape(&line),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_spread_by_name_and_are_checked() {
        let a = default_schedule("rotate", "daily").unwrap();
        assert_eq!(a, default_schedule("rotate", "daily").unwrap());
        assert_ne!(a, default_schedule("status", "daily").unwrap());
        check_schedule(&a).unwrap();
        assert!(default_schedule("x", "Mon *-*-* 03:00").is_none());
        assert!(check_schedule("* * * *").is_err());
        assert!(check_schedule("0 3 * * * ; rm").is_err());
        check_schedule("*/15 1-5 * jan,feb mon").unwrap();
    }
}
