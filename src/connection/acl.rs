//! `owner`/`group`/`mode` on Windows: NTFS has no permission bits, so castellan maps them to an
//! access control list, both ways (what it writes, and the mode it reports for what it reads, so
//! a second run sees no change).
//!
//! # The mapping
//!
//! * `owner` sets the file's owner (`icacls /setowner`, which enables the restore privilege an
//!   administrator needs to give a file to another account); `group` sets the security
//!   descriptor's primary group. Each part is written on its own (`GetAccessControl('Group')`,
//!   `GetAccessControl('Access')`: .NET persists only the sections changed), so writing the
//!   access list never writes the owner back (`Set-Acl` would, and fails for a file owned by a
//!   service account). The scripts run in Windows PowerShell 5.1 (`powershell.exe`, .NET
//!   Framework), where `FileInfo.GetAccessControl` exists.
//! * `mode` replaces the whole access list: inheritance from the directory is removed (the ACL is
//!   protected, inherited entries are not copied), then one allow entry per class:
//!   * `SYSTEM` (`S-1-5-18`) and `Administrators` (`S-1-5-32-544`): full control, always (services
//!     run as SYSTEM or a service account, and administrators must keep access to repair);
//!   * the owner: the owner bits (`u`), the group: the group bits (`g`) when a group is set,
//!     `Users` (`S-1-5-32-545`): the other bits (`o`);
//!   * bits to rights: `r` = `Read`, `w` = `Write`, `x` = `ExecuteFile`; `rwx` = `FullControl`.
//!     Directories' entries are inherited by what is created in them.
//! * So a key file (`0600`, `0400`: no group or other bits) is readable only by SYSTEM,
//!   Administrators and its owner, the service account: what PostgreSQL on Windows relies on (it
//!   skips its key-file mode check there, the ACL is the only protection).
//! * SYSTEM or Administrators as the owner get the owner bits instead of full control. A group
//!   that is the owner itself, SYSTEM, Administrators or an "others" account gets no entry of
//!   its own: its bits cannot be told apart, and read back as the other bits (so `0600`, `0644`,
//!   `0755` round-trip with any group, `0640` needs a group of its own).
//! * Reading back, the mode is rebuilt from the allow entries the same way (an entry of the
//!   owner gives `u`, of the group `g`, of `Users`, `Authenticated Users` or `Everyone` gives
//!   `o`; `r` when the rights hold `ReadData`, `w` for `WriteData`, `x` for `ExecuteFile`);
//!   SYSTEM's and Administrators' entries do not count unless one is the owner, deny entries
//!   are ignored (castellan writes none). setuid/setgid/sticky bits do not exist there and are
//!   refused.
//! * Without `mode`, the access list is left as it is (a new file inherits its directory's).
use super::pwsh_quote::{quote, QuoteError};
use super::Attrs;

pub const SID_SYSTEM: &str = "S-1-5-18";
pub const SID_ADMINISTRATORS: &str = "S-1-5-32-544";
pub const SID_USERS: &str = "S-1-5-32-545";
pub const SID_AUTHENTICATED_USERS: &str = "S-1-5-11";
pub const SID_EVERYONE: &str = "S-1-1-0";

/// `FileSystemRights` bits read back.
const READ_DATA: u32 = 0x1;
const WRITE_DATA: u32 = 0x2;
const EXECUTE_FILE: u32 = 0x20;

/// The `FileSystemRights` value for `rwx` bits (0 to 7); None for 0 (no entry).
pub fn rights(bits: u32) -> Option<&'static str> {
    match bits & 7 {
        0 => None,
        1 => Some("ExecuteFile"),
        2 => Some("Write"),
        3 => Some("Write, ExecuteFile"),
        4 => Some("Read"),
        5 => Some("ReadAndExecute"),
        6 => Some("Read, Write"),
        _ => Some("FullControl"),
    }
}

/// The `rwx` bits a `FileSystemRights` value grants.
pub fn bits(rights: u32) -> u32 {
    (if rights & READ_DATA != 0 { 4 } else { 0 })
        | (if rights & WRITE_DATA != 0 { 2 } else { 0 })
        | (if rights & EXECUTE_FILE != 0 { 1 } else { 0 })
}

/// One access entry as the stat script prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub sid: String,
    pub allow: bool,
    pub rights: u32,
}

/// The accounts whose entry stands for "others".
const OTHERS: [&str; 3] = [SID_USERS, SID_AUTHENTICATED_USERS, SID_EVERYONE];

/// Whether the group gets an entry of its own: not when it is the owner, SYSTEM,
/// Administrators (which have their own entries) or one of the "others" accounts.
pub fn group_has_entry(owner_sid: &str, group_sid: &str) -> bool {
    !group_sid.is_empty()
        && group_sid != owner_sid
        && group_sid != SID_SYSTEM
        && group_sid != SID_ADMINISTRATORS
        && !OTHERS.contains(&group_sid)
}

/// The mode an ACL amounts to (see the module documentation).
pub fn mode_of(owner_sid: &str, group_sid: &str, aces: &[Ace]) -> u32 {
    let own_group = group_has_entry(owner_sid, group_sid);
    let (mut u, mut g, mut o) = (0, 0, 0);
    for a in aces.iter().filter(|a| a.allow) {
        let b = bits(a.rights);
        if a.sid == owner_sid {
            u |= b;
        } else if a.sid == SID_SYSTEM || a.sid == SID_ADMINISTRATORS {
            continue;
        } else if own_group && a.sid == group_sid {
            g |= b;
        } else if OTHERS.contains(&a.sid.as_str()) {
            o |= b;
        }
    }
    if !own_group {
        g = o;
    }
    (u << 6) | (g << 3) | o
}

/// Why attributes cannot be set on Windows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error(transparent)]
    Quote(#[from] QuoteError),
    #[error("mode {0:04o}: setuid, setgid and sticky bits have no Windows equivalent")]
    SpecialBits(u32),
}

fn opt(v: Option<&str>) -> Result<String, QuoteError> {
    v.map_or_else(|| Ok("$null".to_string()), quote)
}

/// A PowerShell function `Set-CastAcl PATH ISDIR` that applies `attrs` to a path (nothing when
/// `attrs` is empty). Failures throw: the scripts' trap turns them into the error message.
pub fn acl_function(attrs: &Attrs) -> Result<String, AclError> {
    if let Some(m) = attrs.mode {
        if m & 0o7000 != 0 {
            return Err(AclError::SpecialBits(m));
        }
    }
    let mut s = format!(
        "function Set-CastAcl([string]$t, [bool]$dir) {{\n  $o = {}; $g = {}\n",
        opt(attrs.owner.as_deref())?,
        opt(attrs.group.as_deref())?
    );
    if attrs.is_empty() {
        s.push_str("}\n");
        return Ok(s);
    }
    s.push_str(
        r#"  if ($o) {
    $r = & icacls.exe $t /setowner $o /q 2>&1
    if ($LASTEXITCODE -ne 0) { throw "cannot set the owner of $t to ${o}: $r" }
  }
  $it = Get-Item -LiteralPath $t -Force
  if ($g) { $gsec = $it.GetAccessControl('Group'); $gsec.SetGroup([Security.Principal.NTAccount]$g); $it.SetAccessControl($gsec) }
"#,
    );
    if let Some(m) = attrs.mode {
        s.push_str(
            r#"  $sd = Get-Acl -LiteralPath $t
  $own = $sd.GetOwner([Security.Principal.SecurityIdentifier]); $grp = $sd.GetGroup([Security.Principal.SecurityIdentifier])
  $a = $it.GetAccessControl('Access')
  $a.SetAccessRuleProtection($true, $false)
  foreach ($x in @($a.Access)) { [void]$a.RemoveAccessRule($x) }
  if ($dir) { $inh = [Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit' } else { $inh = [Security.AccessControl.InheritanceFlags]'None' }
  function Add-CastRule($sid, [string]$rights) {
    $a.AddAccessRule((New-Object Security.AccessControl.FileSystemAccessRule($sid, [Security.AccessControl.FileSystemRights]$rights, $inh, [Security.AccessControl.PropagationFlags]'None', [Security.AccessControl.AccessControlType]'Allow')))
  }
"#,
        );
        s.push_str(&format!(
            "  foreach ($x in @({}, {})) {{ if ($x -ne $own.Value) {{ Add-CastRule (New-Object Security.Principal.SecurityIdentifier($x)) 'FullControl' }} }}\n",
            quote(SID_SYSTEM)?,
            quote(SID_ADMINISTRATORS)?
        ));
        if let Some(r) = rights(m >> 6) {
            s.push_str(&format!("  Add-CastRule $own {}\n", quote(r)?));
        }
        if let Some(r) = rights(m >> 3) {
            s.push_str(&format!(
                "  if ($grp -and $grp.Value -notin @({}, {}, {}, {}, {}, {})) {{ Add-CastRule $grp {} }}\n",
                "$own.Value",
                quote(SID_SYSTEM)?,
                quote(SID_ADMINISTRATORS)?,
                quote(SID_USERS)?,
                quote(SID_AUTHENTICATED_USERS)?,
                quote(SID_EVERYONE)?,
                quote(r)?
            ));
        }
        if let Some(r) = rights(m) {
            s.push_str(&format!(
                "  Add-CastRule (New-Object Security.Principal.SecurityIdentifier({})) {}\n",
                quote(SID_USERS)?,
                quote(r)?
            ));
        }
        s.push_str("  $it.SetAccessControl($a)\n");
    }
    s.push_str("}\n");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pwsh_quote::tests::{hazardous, read_verbatim};
    use proptest::prelude::*;

    fn attrs(owner: Option<&str>, group: Option<&str>, mode: Option<u32>) -> Attrs {
        Attrs {
            owner: owner.map(str::to_string),
            group: group.map(str::to_string),
            mode,
        }
    }

    /// `FileSystemRights` numeric values of the names [`rights`] uses (from .NET's enum).
    fn value(name: &str) -> u32 {
        name.split(", ")
            .map(|n| match n {
                "ExecuteFile" => 0x20,
                "Write" => 0x116,
                "Read" => 0x20089,
                "ReadAndExecute" => 0x200a9,
                "FullControl" => 0x1f01ff,
                other => panic!("unknown right {other}"),
            })
            .fold(0, |a, b| a | b)
    }

    #[test]
    fn every_mode_reads_back_as_itself() {
        for m in 0..0o1000u32 {
            let mut aces = vec![
                Ace {
                    sid: SID_SYSTEM.into(),
                    allow: true,
                    rights: value("FullControl"),
                },
                Ace {
                    sid: SID_ADMINISTRATORS.into(),
                    allow: true,
                    rights: value("FullControl"),
                },
            ];
            for (shift, sid) in [
                (6, "S-1-5-21-1-2-3-1001"),
                (3, "S-1-5-21-1-2-3-1002"),
                (0, SID_USERS),
            ] {
                if let Some(r) = rights(m >> shift) {
                    aces.push(Ace {
                        sid: sid.into(),
                        allow: true,
                        rights: value(r),
                    });
                }
            }
            assert_eq!(
                mode_of("S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002", &aces),
                m,
                "{m:o}"
            );
        }
    }

    #[test]
    fn a_key_file_gets_system_administrators_and_its_owner_only() {
        let f = acl_function(&attrs(
            Some("NT SERVICE\\CASTStorageService4"),
            None,
            Some(0o600),
        ))
        .unwrap();
        assert!(f.contains("$o = 'NT SERVICE\\CASTStorageService4'; $g = $null"));
        assert!(f.contains("$a.SetAccessRuleProtection($true, $false)"));
        assert!(f.contains("foreach ($x in @('S-1-5-18', 'S-1-5-32-544')) { if ($x -ne $own.Value) { Add-CastRule (New-Object Security.Principal.SecurityIdentifier($x)) 'FullControl' } }"));
        assert!(f.contains("Add-CastRule $own 'Read, Write'"));
        assert!(f.contains("$a = $it.GetAccessControl('Access')"));
        assert!(f.contains("$it.SetAccessControl($a)"));
        assert!(!f.contains("Set-Acl"), "never writes the owner back: {f}");
        assert!(!f.contains("S-1-5-32-545"), "no entry for Users: {f}");
        assert!(!f.contains("Add-CastRule $grp"), "no group entry: {f}");
        assert_eq!(
            f.matches("Add-CastRule (").count() + f.matches("Add-CastRule $").count(),
            2
        );
        // Reading that ACL back gives 0600 again.
        let aces = [
            Ace {
                sid: SID_SYSTEM.into(),
                allow: true,
                rights: 0x1f01ff,
            },
            Ace {
                sid: SID_ADMINISTRATORS.into(),
                allow: true,
                rights: 0x1f01ff,
            },
            Ace {
                sid: "S-1-5-80-1".into(),
                allow: true,
                rights: value("Read, Write"),
            },
        ];
        assert_eq!(mode_of("S-1-5-80-1", "S-1-5-18", &aces), 0o600);
    }

    #[test]
    fn a_group_without_an_entry_reads_as_the_other_bits() {
        let full = 0x1f01ff;
        // Owner SYSTEM (gets its bits, not full control), group SYSTEM too: 0644 and 0600.
        for (m, users) in [(0o644u32, Some("Read")), (0o600, None)] {
            let mut aces = vec![
                Ace {
                    sid: SID_SYSTEM.into(),
                    allow: true,
                    rights: value(rights(m >> 6).unwrap()),
                },
                Ace {
                    sid: SID_ADMINISTRATORS.into(),
                    allow: true,
                    rights: full,
                },
            ];
            if let Some(r) = users {
                aces.push(Ace {
                    sid: SID_USERS.into(),
                    allow: true,
                    rights: value(r),
                });
            }
            assert_eq!(mode_of(SID_SYSTEM, SID_SYSTEM, &aces), m, "{m:o}");
            assert_eq!(mode_of(SID_SYSTEM, SID_ADMINISTRATORS, &aces), m, "{m:o}");
        }
        // Owner Administrators, group Administrators, a directory 0755.
        let aces = [
            Ace {
                sid: SID_SYSTEM.into(),
                allow: true,
                rights: full,
            },
            Ace {
                sid: SID_ADMINISTRATORS.into(),
                allow: true,
                rights: full,
            },
            Ace {
                sid: SID_USERS.into(),
                allow: true,
                rights: value("ReadAndExecute"),
            },
        ];
        assert_eq!(
            mode_of(SID_ADMINISTRATORS, SID_ADMINISTRATORS, &aces),
            0o755
        );
        assert!(group_has_entry("S-1-5-21-1", "S-1-5-21-2"));
        for g in ["S-1-5-21-1", SID_SYSTEM, SID_ADMINISTRATORS, SID_USERS, ""] {
            assert!(!group_has_entry("S-1-5-21-1", g), "{g}");
        }
    }

    #[test]
    fn mode_0755_and_group_and_no_mode() {
        let f = acl_function(&attrs(None, Some("CAST Users"), Some(0o750))).unwrap();
        assert!(f.contains("$o = $null; $g = 'CAST Users'"));
        assert!(f.contains("'FullControl'\n"));
        assert!(f.contains("if ($grp -and $grp.Value -notin @($own.Value, 'S-1-5-18', 'S-1-5-32-544', 'S-1-5-32-545', 'S-1-5-11', 'S-1-1-0')) { Add-CastRule $grp 'ReadAndExecute' }"));
        assert!(f.contains("$gsec = $it.GetAccessControl('Group'); $gsec.SetGroup("));
        assert!(
            !f.contains("SecurityIdentifier('S-1-5-32-545'))"),
            "no entry for Users: {f}"
        );
        let f = acl_function(&attrs(Some("svc"), None, None)).unwrap();
        assert!(f.contains("icacls.exe $t /setowner $o /q"));
        assert!(
            !f.contains("SetAccessRuleProtection") && !f.contains("SetAccessControl($a)"),
            "no mode: the DACL is kept"
        );
        assert_eq!(
            acl_function(&Attrs::default()).unwrap(),
            "function Set-CastAcl([string]$t, [bool]$dir) {\n  $o = $null; $g = $null\n}\n"
        );
        assert_eq!(
            acl_function(&attrs(None, None, Some(0o4755))).unwrap_err(),
            AclError::SpecialBits(0o4755)
        );
        // Deny entries and unknown accounts do not count.
        let aces = [
            Ace {
                sid: "S-1-5-21-9".into(),
                allow: false,
                rights: 0x1f01ff,
            },
            Ace {
                sid: "S-1-5-21-7".into(),
                allow: true,
                rights: 0x1f01ff,
            },
            Ace {
                sid: SID_EVERYONE.into(),
                allow: true,
                rights: value("Read"),
            },
        ];
        assert_eq!(mode_of("S-1-5-21-9", "S-1-5-21-8", &aces), 0o004);
    }

    proptest! {
        #[test]
        fn owner_and_group_names_stay_literal(o in hazardous(), g in hazardous(), m in 0u32..0o1000) {
            let f = acl_function(&attrs(Some(&o), Some(&g), Some(m))).unwrap();
            let at = f.find("$o = ").unwrap() + 5;
            let (owner, rest) = read_verbatim(&f[at..]).unwrap();
            prop_assert_eq!(owner, o);
            let rest = rest.strip_prefix("; $g = ").unwrap();
            let (group, rest) = read_verbatim(rest).unwrap();
            prop_assert_eq!(group, g);
            prop_assert!(rest.starts_with('\n'));
        }
    }
}
