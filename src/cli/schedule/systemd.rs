//! The systemd units of a scheduled job: `castellan-NAME.service` (a oneshot running the
//! command with `--lock`, stdout appended to the log file, stderr to the journal) and
//! `castellan-NAME.timer` (`OnCalendar`, `RandomizedDelaySec`, `Persistent=true`: a run missed
//! while the machine was off happens at the next boot).
use super::Job;

/// One `ExecStart=` word: double-quoted, with `\` and `"` escaped (systemd's C-style quoting),
/// `%` doubled (specifiers) and `$` doubled (variable expansion).
pub fn exec_word(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value of a setting that takes the rest of the line (a path): `%` doubled.
fn plain(v: &str) -> String {
    v.replace('%', "%%")
}

pub fn service_name(job: &Job) -> String {
    format!("castellan-{}.service", job.name)
}

pub fn timer_name(job: &Job) -> String {
    format!("castellan-{}.timer", job.name)
}

/// `castellan-NAME.service`.
pub fn service(job: &Job) -> String {
    let exec: Vec<String> = job.argv().iter().map(|a| exec_word(a)).collect();
    let mut s = format!(
        "# Written by `castellan schedule install --name {name}` (castellan {version}); run it \
         again to change this file.\n\
         [Unit]\n\
         Description=castellan scheduled job {name}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n",
        name = job.name,
        version = env!("CARGO_PKG_VERSION"),
    );
    if let Some(u) = &job.user {
        s.push_str(&format!("User={u}\n"));
    }
    s.push_str(&format!(
        "WorkingDirectory={}\n",
        plain(&job.working_directory.display().to_string())
    ));
    s.push_str(&format!("ExecStart={}\n", exec.join(" ")));
    s.push_str(&format!(
        "StandardOutput=append:{}\nStandardError=journal\n",
        plain(&job.log_file.display().to_string())
    ));
    if let Some(d) = job.logs_directory() {
        s.push_str(&format!("LogsDirectory={}\n", plain(&d)));
    }
    s.push_str(
        "# Exit codes: 0 ok, 2 a host failed (certs status: renewal due or mismatch), 3 a host\n\
         # unreachable, 4 invalid input, 75 another run held the lock; any but 0 marks the run failed.\n",
    );
    s
}

/// `castellan-NAME.timer`.
pub fn timer(job: &Job) -> String {
    format!(
        "# Written by `castellan schedule install --name {name}` (castellan {version}).\n\
         [Unit]\n\
         Description=Timer of castellan scheduled job {name}\n\
         \n\
         [Timer]\n\
         OnCalendar={calendar}\n\
         RandomizedDelaySec={delay}\n\
         Persistent=true\n\
         Unit={service}\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        name = job.name,
        version = env!("CARGO_PKG_VERSION"),
        calendar = plain(&job.on_calendar),
        delay = plain(&job.randomized_delay),
        service = service_name(job),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_survive_systemd_parsing() {
        assert_eq!(exec_word("/usr/bin/castellan"), "\"/usr/bin/castellan\"");
        assert_eq!(
            exec_word(r#"a "b" c\d 100% $HOME"#),
            r#""a \"b\" c\\d 100%% $$HOME""#
        );
    }
}
