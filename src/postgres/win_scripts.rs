//! PostgreSQL on a Windows host (CAST Storage Service): the PowerShell text `pg_facts` and
//! `pg_service` send there, beside the POSIX sh of `facts.rs` and `service.rs`. `psql.exe` runs
//! through `Diagnostics.ProcessStartInfo` with a command line built by
//! [`argv_to_cmdline`] (so the SQL reaches psql as one argument whatever it holds), over TCP to
//! `host` (Windows has no Unix socket); every value is a verbatim string from
//! [`crate::connection::pwsh_quote`]. The scripts run as the SSH login (no become on Windows)
//! and fail by `throw` (the connection's exec reports rc 1 and the message on stderr).
//! Tested on strings only: no Windows host or `pwsh` is reachable from here.
use super::facts::FACTS_SQL;
use super::service::CHECK_SQL;
use crate::connection::pwsh_quote::{argv_to_cmdline, quote, win_path};

/// The cluster on a Windows host and the service that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinPg {
    /// The folder of `psql.exe`.
    pub bin_dir: String,
    pub host: String,
    pub port: u16,
    /// The database role psql logs in as.
    pub user: String,
    /// The Windows service (`CASTStorageService4`).
    pub service: String,
}

fn q(s: &str) -> Result<String, String> {
    quote(s).map_err(|e| e.to_string())
}

impl WinPg {
    /// `BIN\psql.exe`, in Windows form.
    pub fn psql_exe(&self) -> String {
        format!(
            "{}\\psql.exe",
            win_path(&self.bin_dir).trim_end_matches('\\')
        )
    }

    /// psql's command line for one query: unaligned, tuples only, no psqlrc, stop on error.
    pub fn psql_cmdline(&self, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        argv_to_cmdline(&[
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &self.host,
            "-p",
            &port,
            "-U",
            &self.user,
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .map_err(|e| e.to_string())
    }

    /// `Invoke-Psql CMDLINE`: psql's stdout; its exit code in `$script:psqlrc`, its stderr in
    /// `$script:psqlerr`. Connect timeout 5 s.
    pub fn prelude(&self) -> Result<String, String> {
        Ok(format!(
            "$ErrorActionPreference = 'Stop'\n\
             $env:PGCONNECT_TIMEOUT = '5'\n\
             $psql = {}\n\
             function Invoke-Psql([string]$cmdline) {{\n\
             \x20 $psi = New-Object Diagnostics.ProcessStartInfo($psql, $cmdline)\n\
             \x20 $psi.UseShellExecute = $false; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true\n\
             \x20 $psi.StandardOutputEncoding = [Text.Encoding]::UTF8\n\
             \x20 $p = [Diagnostics.Process]::Start($psi)\n\
             \x20 $e = $p.StandardError.ReadToEndAsync()\n\
             \x20 $o = $p.StandardOutput.ReadToEnd()\n\
             \x20 $p.WaitForExit()\n\
             \x20 $script:psqlerr = $e.Result.Trim(); $script:psqlrc = $p.ExitCode\n\
             \x20 $o.TrimEnd()\n\
             }}\n",
            q(&self.psql_exe())?
        ))
    }

    /// One query whose failure throws with psql's message.
    fn must(&self, var: &str, sql: &str) -> Result<String, String> {
        Ok(format!(
            "{var} = Invoke-Psql {}\n\
             if ($script:psqlrc -ne 0) {{ throw \"psql.exe (exit $script:psqlrc): $script:psqlerr\" }}\n",
            q(&self.psql_cmdline(sql)?)?
        ))
    }

    /// `pg_facts`: `@@json` (the facts query of [`FACTS_SQL`], second line), `@@account` (the
    /// service's StartName), `@@state` (its state: `Running`...), `@@exe` (its command line).
    /// A service that does not exist gives empty sections; a server that does not answer throws.
    pub fn facts_script(&self) -> Result<String, String> {
        let mut s = self.prelude()?;
        s.push_str(&format!(
            "$name = {}\n\
             $svc = Get-CimInstance -ClassName Win32_Service | Where-Object {{ $_.Name -eq $name }} | Select-Object -First 1\n",
            q(&self.service)?
        ));
        s.push_str(&self.must("$out", FACTS_SQL)?);
        s.push_str(
            "'@@json'; ($out -split \"`r?`n\")[1]\n\
             '@@account'; if ($null -ne $svc) { $svc.StartName }\n\
             '@@state'; if ($null -ne $svc) { $svc.State }\n\
             '@@exe'; if ($null -ne $svc) { $svc.PathName }\n",
        );
        Ok(s)
    }

    /// Reload with `SELECT pg_reload_conf()`, wait up to `timeout_s` for `pg_conf_load_time()`
    /// to move, then `@@check`: what the server made of its files ([`CHECK_SQL`]).
    pub fn reload_script(&self, timeout_s: u64) -> Result<String, String> {
        let mut s = self.prelude()?;
        s.push_str(&self.must("$t0", "SELECT pg_conf_load_time()")?);
        s.push_str(&self.must("$null", "SELECT pg_reload_conf()")?);
        s.push_str(&format!(
            "$until = (Get-Date).AddSeconds({timeout_s})\n\
             do {{ Start-Sleep -Milliseconds 200; $t1 = Invoke-Psql {} }} while ($t1 -eq $t0 -and (Get-Date) -lt $until)\n",
            q(&self.psql_cmdline("SELECT pg_conf_load_time()")?)?
        ));
        s.push_str(&self.must("$check", CHECK_SQL)?);
        s.push_str("'@@check'; $check\n");
        Ok(s)
    }

    /// Wait up to `timeout_s` for the server to answer, then `@@check`; `@@check` is empty when
    /// it never did (`@@error`: psql's last message).
    pub fn health_script(&self, timeout_s: u64) -> Result<String, String> {
        let mut s = self.prelude()?;
        s.push_str(&format!(
            "$until = (Get-Date).AddSeconds({timeout_s})\n\
             do {{ $check = Invoke-Psql {}; if ($script:psqlrc -eq 0) {{ break }}; Start-Sleep -Milliseconds 500 }} while ((Get-Date) -lt $until)\n\
             '@@check'; if ($script:psqlrc -eq 0) {{ $check }}\n\
             '@@error'; if ($script:psqlrc -ne 0) {{ $script:psqlerr }}\n",
            q(&self.psql_cmdline(CHECK_SQL)?)?
        ));
        Ok(s)
    }
}

/// Put each backup back over its file (`Move-Item -Force`: the backup keeps the old file's
/// ACL). A backup that is now a reparse point (a link) is refused, a missing one reported.
/// Prints `@@restored` then one path per line; throws after the last pair when one failed.
pub fn restore_script(pairs: &[(String, String)]) -> Result<String, String> {
    let mut s = String::from("$ErrorActionPreference = 'Stop'\n$bad = @()\n'@@restored'\n");
    for (p, b) in pairs {
        s.push_str(&format!(
            "$p = {}; $b = {}\n\
             if (-not [IO.File]::Exists($b)) {{ $bad += \"backup $b is missing: $p not restored\" }}\n\
             elseif ([IO.File]::GetAttributes($b) -band [IO.FileAttributes]::ReparsePoint) {{ $bad += \"backup $b is a link: $p not restored\" }}\n\
             else {{ try {{ Move-Item -LiteralPath $b -Destination $p -Force; $p }} catch {{ $bad += \"could not move $b over $p\" }} }}\n",
            q(&win_path(p))?,
            q(&win_path(b))?
        ));
    }
    s.push_str("if ($bad.Count -gt 0) { throw ($bad -join '; ') }\n");
    Ok(s)
}

/// A Windows service account as an ACL owner: `LocalSystem` is `SYSTEM`; other names as given
/// (`NT AUTHORITY\NetworkService`, `.\postgres`, `DOMAIN\svc`).
pub fn account_owner(start_name: &str) -> String {
    let a = start_name.trim();
    if a.eq_ignore_ascii_case("LocalSystem") || a.is_empty() {
        "SYSTEM".into()
    } else if let Some(local) = a.strip_prefix(".\\") {
        local.to_string()
    } else {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pwsh_quote::tests::{hazardous, read_verbatim, split_cmdline};
    use proptest::prelude::*;

    fn css() -> WinPg {
        WinPg {
            bin_dir: "C:/Program Files/CAST/CASTStorageService4/bin/".into(),
            host: "localhost".into(),
            port: 2284,
            user: "operator".into(),
            service: "CASTStorageService4".into(),
        }
    }

    /// The verbatim literal that follows `marker` in `s`, read back.
    fn literal_after(s: &str, marker: &str) -> String {
        let at = s.find(marker).unwrap() + marker.len();
        read_verbatim(&s[at..]).unwrap().0
    }

    #[test]
    fn psql_path_and_command_line() {
        let w = css();
        assert_eq!(
            w.psql_exe(),
            "C:\\Program Files\\CAST\\CASTStorageService4\\bin\\psql.exe"
        );
        assert_eq!(
            w.psql_cmdline("SELECT 'a b'").unwrap(),
            "-X -A -t -q -v ON_ERROR_STOP=1 -h localhost -p 2284 -U operator -d postgres -c \"SELECT 'a b'\""
        );
        let p = w.prelude().unwrap();
        assert!(p.starts_with("$ErrorActionPreference = 'Stop'\n$env:PGCONNECT_TIMEOUT = '5'\n$psql = 'C:\\Program Files\\CAST\\CASTStorageService4\\bin\\psql.exe'\nfunction Invoke-Psql([string]$cmdline) {\n"), "{p}");
    }

    #[test]
    fn facts_script_text() {
        let s = css().facts_script().unwrap();
        assert!(s.contains("$name = 'CASTStorageService4'\n"), "{s}");
        assert!(s.contains(
            "Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $name }"
        ));
        let cmd = literal_after(&s, "$out = Invoke-Psql ");
        let argv = split_cmdline(&cmd);
        assert_eq!(argv.last().map(String::as_str), Some(FACTS_SQL));
        assert!(s.contains("if ($script:psqlrc -ne 0) { throw \"psql.exe (exit $script:psqlrc): $script:psqlerr\" }\n"));
        assert!(s.ends_with("'@@json'; ($out -split \"`r?`n\")[1]\n'@@account'; if ($null -ne $svc) { $svc.StartName }\n'@@state'; if ($null -ne $svc) { $svc.State }\n'@@exe'; if ($null -ne $svc) { $svc.PathName }\n"), "{s}");
    }

    #[test]
    fn reload_waits_for_the_load_time_then_checks() {
        let s = css().reload_script(30).unwrap();
        let reload = literal_after(&s, "$null = Invoke-Psql ");
        assert_eq!(
            split_cmdline(&reload).last().unwrap(),
            "SELECT pg_reload_conf()"
        );
        assert!(s.contains("$until = (Get-Date).AddSeconds(30)\n"));
        assert!(s.contains("} while ($t1 -eq $t0 -and (Get-Date) -lt $until)\n"));
        let check = literal_after(&s, "$check = Invoke-Psql ");
        assert_eq!(split_cmdline(&check).last().unwrap(), CHECK_SQL);
        assert!(s.ends_with("'@@check'; $check\n"));
        // The load time is read before the reload.
        assert!(s.find("$t0 = Invoke-Psql").unwrap() < s.find("$null = Invoke-Psql").unwrap());
    }

    #[test]
    fn health_waits_and_reports_the_last_error() {
        let s = css().health_script(60).unwrap();
        assert!(s.contains("$until = (Get-Date).AddSeconds(60)\n"));
        let check = literal_after(&s, "do { $check = Invoke-Psql ");
        assert_eq!(split_cmdline(&check).last().unwrap(), CHECK_SQL);
        assert!(s.ends_with("'@@check'; if ($script:psqlrc -eq 0) { $check }\n'@@error'; if ($script:psqlrc -ne 0) { $script:psqlerr }\n"));
    }

    #[test]
    fn restore_text() {
        let s = restore_script(&[(
            "C:/Program Files/CAST/CASTStorageService4/db_data/postgresql.conf".into(),
            "C:/Program Files/CAST/CASTStorageService4/db_data/postgresql.conf.1.2~".into(),
        )])
        .unwrap();
        assert!(s.starts_with("$ErrorActionPreference = 'Stop'\n$bad = @()\n'@@restored'\n$p = 'C:\\Program Files\\CAST\\CASTStorageService4\\db_data\\postgresql.conf'; $b = 'C:\\Program Files\\CAST\\CASTStorageService4\\db_data\\postgresql.conf.1.2~'\n"), "{s}");
        assert!(s.contains("Move-Item -LiteralPath $b -Destination $p -Force; $p"));
        assert!(s.contains("[IO.FileAttributes]::ReparsePoint"));
        assert!(s.ends_with("if ($bad.Count -gt 0) { throw ($bad -join '; ') }\n"));
        assert_eq!(
            restore_script(&[]).unwrap(),
            "$ErrorActionPreference = 'Stop'\n$bad = @()\n'@@restored'\nif ($bad.Count -gt 0) { throw ($bad -join '; ') }\n"
        );
    }

    #[test]
    fn service_accounts() {
        assert_eq!(account_owner("LocalSystem"), "SYSTEM");
        assert_eq!(account_owner(""), "SYSTEM");
        assert_eq!(account_owner(".\\postgres"), "postgres");
        assert_eq!(
            account_owner("NT AUTHORITY\\NetworkService"),
            "NT AUTHORITY\\NetworkService"
        );
    }

    proptest! {
        #[test]
        fn values_stay_literal(user in hazardous(), host in hazardous(), dir in hazardous(), svc in hazardous(), path in hazardous(), backup in hazardous()) {
            let w = WinPg { bin_dir: dir.clone(), host: host.clone(), port: 5432, user: user.clone(), service: svc.clone() };
            let s = w.facts_script().unwrap();
            let (exe, rest) = read_verbatim(&s[s.find("$psql = ").unwrap() + 8..]).unwrap();
            prop_assert_eq!(exe, w.psql_exe());
            let (name, rest) = read_verbatim(&rest[rest.find("\n$name = ").unwrap() + 9..]).unwrap();
            prop_assert_eq!(name, svc);
            let (cmd, _) = read_verbatim(&rest[rest.find("$out = Invoke-Psql ").unwrap() + 19..]).unwrap();
            let want: Vec<String> = ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", &host, "-p", "5432", "-U", &user, "-d", "postgres", "-c", FACTS_SQL].iter().map(|s| s.to_string()).collect();
            prop_assert_eq!(split_cmdline(&cmd), want);
            let r = restore_script(&[(path.clone(), backup.clone())]).unwrap();
            let (p, rest) = read_verbatim(&r[r.find("\n$p = ").unwrap() + 6..]).unwrap();
            prop_assert_eq!(p, win_path(&path));
            let rest = rest.strip_prefix("; $b = ").unwrap();
            prop_assert_eq!(read_verbatim(rest).unwrap().0, win_path(&backup));
        }
    }
}
