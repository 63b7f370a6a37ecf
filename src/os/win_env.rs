//! A machine-level environment variable on Windows (what the CAST guides ask for
//! `CASTCONNECTIONEXTRAPARAMETERS`: a *system* variable, read by services and new logons):
//! `[Environment]::SetEnvironmentVariable(NAME, VALUE, 'Machine')` (the registry under
//! `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment`, and the broadcast that
//! tells running programs), Ansible's `win_environment` with `level: machine`. The query reads
//! the value back as base64 so any text (quotes, `%`, non-ASCII) survives the trip; the value
//! travels to the set script quoted by [`quote`], never on a command line. Tested on strings.
use crate::connection::pwsh_quote::quote;

/// First word of the query's answer.
pub const TAG: &str = "castellan-winenv";

fn q(s: &str) -> Result<String, String> {
    quote(s).map_err(|e| e.to_string())
}

/// A variable name Windows accepts: not empty, no `=`, no NUL.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') || name.len() > 255 {
        return Err(format!(
            "invalid environment variable name {name:?} (not empty, no `=`, at most 255 characters)"
        ));
    }
    Ok(())
}

/// Prints `castellan-winenv unset` or `castellan-winenv BASE64(VALUE)`.
pub fn query_script(name: &str) -> Result<String, String> {
    Ok(format!(
        "$v = [Environment]::GetEnvironmentVariable({}, 'Machine')\n\
         if ($null -eq $v) {{ '{TAG} unset' }} else {{ '{TAG} ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($v)) }}\n",
        q(name)?
    ))
}

/// The machine-level value the query found (None: unset).
pub fn parse(out: &str) -> Result<Option<String>, String> {
    use base64::Engine;
    let l = out
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(TAG))
        .ok_or_else(|| {
            format!(
                "unexpected answer from the environment query: {}",
                out.trim()
            )
        })?;
    match l.trim() {
        "unset" => Ok(None),
        b => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|_| format!("unexpected value from the environment query: {b}"))
            .map(|v| Some(String::from_utf8_lossy(&v).into_owned())),
    }
}

/// Set (Some) or remove (None) the machine-level variable.
pub fn set_script(name: &str, value: Option<&str>) -> Result<String, String> {
    let v = match value {
        Some(v) => q(v)?,
        None => "$null".into(),
    };
    Ok(format!(
        "$ErrorActionPreference = 'Stop'\n[Environment]::SetEnvironmentVariable({}, {v}, 'Machine')\n",
        q(name)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pwsh_quote::tests::{hazardous, read_verbatim};
    use proptest::prelude::*;

    #[test]
    fn scripts_and_answers() {
        assert_eq!(
            set_script("CASTCONNECTIONEXTRAPARAMETERS", Some("sslmode=verify-full sslrootcert='C:\\CAST\\ssl\\root.crt'")).unwrap(),
            "$ErrorActionPreference = 'Stop'\n[Environment]::SetEnvironmentVariable('CASTCONNECTIONEXTRAPARAMETERS', \
             'sslmode=verify-full sslrootcert=''C:\\CAST\\ssl\\root.crt''', 'Machine')\n"
        );
        assert!(set_script("X", None)
            .unwrap()
            .contains("('X', $null, 'Machine')"));
        assert!(query_script("X")
            .unwrap()
            .contains("GetEnvironmentVariable('X', 'Machine')"));
        assert_eq!(parse("castellan-winenv unset\r\n").unwrap(), None);
        assert_eq!(
            parse("castellan-winenv YSUnYic=\r\n").unwrap().as_deref(),
            Some("a%'b'")
        );
        assert!(parse("nothing").is_err());
        assert!(check_name("A=B").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("CASTCONNECTIONEXTRAPARAMETERS").is_ok());
    }

    proptest! {
        #[test]
        fn values_stay_literal(name in hazardous(), value in hazardous()) {
            let s = set_script(&name, Some(&value)).unwrap();
            let at = s.find("SetEnvironmentVariable(").unwrap() + 23;
            let (n, rest) = read_verbatim(&s[at..]).unwrap();
            prop_assert_eq!(n, name);
            let (v, rest) = read_verbatim(rest.strip_prefix(", ").unwrap()).unwrap();
            prop_assert_eq!(v, value);
            prop_assert_eq!(rest, ", 'Machine')\n");
        }
    }
}
