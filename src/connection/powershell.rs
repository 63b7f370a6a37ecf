//! The remote side of a Windows host (`ansible_shell_type: powershell` or `cmd`, over the
//! built-in OpenSSH server): pure builders of the PowerShell scripts that carry out one
//! [`super::Connection`] operation each, and the parser of what the stat script prints.
//!
//! # Framing
//!
//! The command line never holds a script or content: it is always
//! `powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command BOOTSTRAP`
//! ([`command_line`]), where [`BOOTSTRAP`] is fixed text without `"`, `'`, `%` or backticks, so
//! that both default shells of Windows' sshd (cmd, PowerShell) pass it through unchanged. No
//! `-EncodedCommand`. Its stdin is the same stream as on POSIX hosts
//! ([`super::stdin_script::frame`]: `N NONCE\n`, the script and the nonce, then the operation's
//! own input): the bootstrap reads exactly N bytes from the raw stdin stream, checks the nonce
//! (a stream cut short runs nothing: exit 125), decodes UTF-8, and runs the text as a script
//! block with the stdin stream as its argument (file content is read from it as bytes: no BOM,
//! no newline translation, no code page).
//!
//! # Scripts
//!
//! Every value in a script goes through [`quote`] (the one audited PowerShell quoting
//! function); paths are turned into Windows form ([`win_path`]) and used with `-LiteralPath` or
//! .NET methods (no wildcards). Each script stops at the first error and prints its message on
//! stderr with exit code 1. What a script prints on stdout goes through the raw stdout stream:
//! ASCII lines (text fields in base64) and, for a read, the file's bytes.
//!
//! None of this has run on Windows here: no Windows host exists on these machines and `pwsh`
//! cannot be installed from the registries they reach (README, "Windows targets").
use sha2::Digest;

use super::acl::{self, Ace, AclError};
use super::backup::Suffixes;
use super::pwsh_quote::{argv_to_cmdline, quote, win_path, QuoteError};
use super::{Attrs, ExecRequest, FileKind, FileState, Op, Want};

/// Which shell Windows' sshd starts for a command (`ansible_shell_type`); either way castellan
/// runs `powershell.exe` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// sshd's `DefaultShell` is PowerShell.
    PowerShell,
    /// sshd's default, `cmd.exe`.
    Cmd,
}

impl Flavour {
    /// The flavour `ansible_shell_type` asks for: None for a POSIX host (unset, `sh`, `bash`...).
    pub fn from_vars(
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<Flavour>, String> {
        match vars.get("ansible_shell_type") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => match s.as_str() {
                "powershell" => Ok(Some(Flavour::PowerShell)),
                "cmd" => Ok(Some(Flavour::Cmd)),
                "sh" | "bash" | "" => Ok(None),
                other => Err(format!(
                    "ansible_shell_type: `{other}` is not supported; use sh (POSIX hosts), powershell or cmd (Windows hosts)"
                )),
            },
            Some(other) => Err(format!("ansible_shell_type: expected a string, got {other}")),
        }
    }
}

/// Exit status when the script did not arrive whole (nothing of it ran).
pub const INCOMPLETE_RC: i32 = super::stdin_script::INCOMPLETE_RC;

/// The fixed PowerShell program on the command line (see the module documentation). It reads
/// the header line byte by byte, then exactly N bytes, and never more.
pub const BOOTSTRAP: &str =
    "$ErrorActionPreference=[Management.Automation.ActionPreference]::Stop;\
$i=[Console]::OpenStandardInput();\
$h=New-Object Collections.Generic.List[byte];\
while($true){$c=$i.ReadByte();if($c -lt 0){exit 125};if($c -eq 10){break};$h.Add([byte]$c)};\
$t=[Text.Encoding]::ASCII.GetString($h.ToArray()).Split([char]32);\
if($t.Length -ne 2){exit 125};\
$n=[int]$t[0];$e=$t[1];\
$b=New-Object byte[] $n;$o=0;\
while($o -lt $n){$r=$i.Read($b,$o,$n-$o);if($r -le 0){exit 125};$o+=$r};\
$s=[Text.Encoding]::UTF8.GetString($b);\
if(-not $s.EndsWith($e,[StringComparison]::Ordinal)){exit 125};\
$s=$s.Substring(0,$s.Length-$e.Length);\
Remove-Variable h,t,n,e,b,o,c,r;\
& ([ScriptBlock]::Create($s)) $i;\
exit $LASTEXITCODE";

const POWERSHELL: &str =
    "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command";

/// The command line sent to the host: the same for every operation.
pub fn command_line(flavour: Flavour) -> String {
    match flavour {
        // cmd: inside double quotes nothing of the bootstrap is special (no `"` or `%` in it).
        Flavour::Cmd => format!("{POWERSHELL} \"{BOOTSTRAP}\""),
        // PowerShell: a verbatim string, passed on to powershell.exe as one argument.
        Flavour::PowerShell => format!("{POWERSHELL} '{BOOTSTRAP}'"),
    }
}

/// First word of the header line the stat script prints.
const STAT_TAG: &str = "castellan-stat";
/// What the write script prints, followed by a space and the name, when it made a backup.
pub const BACKUP_TAG: &str = "castellan-backup";

/// What every script starts with: its stdin stream as a parameter, stop at the first error,
/// `Fail` (message on stderr, exit 1), `Out-Text` (ASCII on the raw stdout), a trap that removes
/// the files listed in `$cleanup` and fails with the error's message.
const PRELUDE: &str = r#"param($stdin)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$out = [Console]::OpenStandardOutput()
$cleanup = New-Object Collections.Generic.List[string]
function Out-Text([string]$s) { $x = [Text.Encoding]::ASCII.GetBytes($s); $out.Write($x, 0, $x.Length) }
function Fail([string]$m) {
  foreach ($c in $cleanup) { Remove-Item -LiteralPath $c -Force -ErrorAction SilentlyContinue }
  [Console]::Error.WriteLine($m); $out.Flush(); exit 1
}
function B64([string]$s) { if ($null -eq $s) { return '-' }; [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($s)) }
trap { Fail $_.Exception.Message }
"#;

/// Why a script cannot be made.
pub type ScriptError = AclError;

fn q(s: &str) -> Result<String, QuoteError> {
    quote(s)
}

fn qp(path: &str) -> Result<String, QuoteError> {
    quote(&win_path(path))
}

fn flag(b: bool) -> &'static str {
    if b {
        "$true"
    } else {
        "$false"
    }
}

/// A backup suffix for Windows: `:` names an alternate data stream on NTFS, so it becomes `-`.
pub fn win_suffix(s: &str) -> String {
    s.replace(':', "-")
}

/// stat: one header line `castellan-stat missing`, or
/// `castellan-stat KIND SIZE MTIME_MS ATIME_MS OWNER_SID GROUP_SID OWNER_B64 GROUP_B64 NACES`
/// (KIND `f`, `d`, `l` or `o`), then NACES lines `SID ALLOW|DENY RIGHTS`, then for a link (not
/// followed) its target in base64 on a line, for a file with `content` the raw bytes, for a
/// file with only `checksum` a line `SHA256 SHA1`.
pub fn stat_script(path: &str, want: Want) -> Result<String, QuoteError> {
    let mut s = format!(
        r#"{PRELUDE}$p = {p}; $follow = {follow}
$it = Get-Item -LiteralPath $p -Force -ErrorAction SilentlyContinue
if ($null -eq $it) {{ Out-Text "{STAT_TAG} missing`n"; exit 0 }}
$link = [bool]($it.Attributes -band [IO.FileAttributes]::ReparsePoint) -and ($it.LinkType -eq 'SymbolicLink')
if ($link -and $follow) {{
  $target = [IO.Path]::Combine([IO.Path]::GetDirectoryName($it.FullName), @($it.Target)[0])
  $it = Get-Item -LiteralPath $target -Force -ErrorAction SilentlyContinue
  if ($null -eq $it) {{ Out-Text "{STAT_TAG} missing`n"; exit 0 }}
  $link = $false
}}
if ($link) {{ $kind = 'l' }} elseif ($it.PSIsContainer) {{ $kind = 'd' }} else {{ $kind = 'f' }}
$size = 0; if ($kind -eq 'f') {{ $size = $it.Length }}
$acl = Get-Acl -LiteralPath $it.FullName
$sid = [Security.Principal.SecurityIdentifier]
$os = $acl.GetOwner($sid); $gs = $acl.GetGroup($sid)
$on = $acl.Owner; $gn = $null; try {{ $gn = $gs.Translate([Security.Principal.NTAccount]).Value }} catch {{ $gn = $null }}
$aces = @($acl.GetAccessRules($true, $true, $sid))
$ms = {{ param($d) ([DateTimeOffset]$d).ToUnixTimeMilliseconds() }}
Out-Text ("{STAT_TAG} {{0}} {{1}} {{2}} {{3}} {{4}} {{5}} {{6}} {{7}} {{8}}`n" -f $kind, $size, (& $ms $it.LastWriteTimeUtc), (& $ms $it.LastAccessTimeUtc), $os, $gs, (B64 $on), (B64 $gn), $aces.Count)
foreach ($r in $aces) {{ Out-Text ("{{0}} {{1}} {{2}}`n" -f $r.IdentityReference.Value, $r.AccessControlType, [int]$r.FileSystemRights) }}
"#,
        p = qp(path)?,
        follow = flag(want.follow),
    );
    if !want.follow {
        s.push_str("if ($kind -eq 'l') { Out-Text ((B64 @($it.Target)[0]) + \"`n\"); exit 0 }\n");
    }
    if want.content {
        s.push_str(
            "if ($kind -eq 'f') { $x = [IO.File]::ReadAllBytes($it.FullName); $out.Write($x, 0, $x.Length) }\n",
        );
    } else if want.checksum {
        s.push_str(
            r#"if ($kind -eq 'f') {
  $x = [IO.File]::ReadAllBytes($it.FullName)
  $h2 = -join ([Security.Cryptography.SHA256]::Create().ComputeHash($x) | ForEach-Object { $_.ToString('x2') })
  $h1 = -join ([Security.Cryptography.SHA1]::Create().ComputeHash($x) | ForEach-Object { $_.ToString('x2') })
  Out-Text "$h2 $h1`n"
}
"#,
        );
    }
    s.push_str("$out.Flush()\nexit 0\n");
    Ok(s)
}

fn bad_stat(msg: &str) -> String {
    format!("unexpected output from the remote stat script: {msg}")
}

fn b64(s: &str) -> Result<Option<String>, String> {
    use base64::Engine;
    if s == "-" {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| bad_stat(s))?;
    Ok(Some(String::from_utf8_lossy(&raw).into_owned()))
}

/// The account name without its domain (`BUILTIN\Administrators` is `Administrators`, as users
/// write it in `owner:`).
pub fn short_name(account: &str) -> &str {
    account.rsplit_once('\\').map_or(account, |(_, n)| n)
}

/// Read one `\n`-ended line from `out` at `pos`.
fn line<'a>(out: &'a [u8], pos: &mut usize) -> Result<&'a str, String> {
    let rest = &out[*pos..];
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad_stat("a line is cut short"))?;
    *pos += nl + 1;
    std::str::from_utf8(&rest[..nl]).map_err(|_| bad_stat("not ASCII"))
}

/// Parse the stat script's output (see [`stat_script`]); the mode comes from the ACL
/// ([`acl::mode_of`]).
pub fn parse_stat(out: &[u8], want: Want) -> Result<FileState, String> {
    let mut pos = 0;
    let header = line(out, &mut pos)?;
    let Some(fields) = header.strip_prefix(STAT_TAG) else {
        return Err(bad_stat(header));
    };
    let w: Vec<&str> = fields.split_whitespace().collect();
    if w.first() == Some(&"missing") {
        return Ok(FileState::default());
    }
    if w.len() != 9 {
        return Err(bad_stat(header));
    }
    let kind = match w[0] {
        "f" => FileKind::File,
        "d" => FileKind::Directory,
        "l" => FileKind::Link,
        _ => FileKind::Other,
    };
    let ms = |s: &str| {
        s.parse::<i64>()
            .map(|v| v as f64 / 1000.0)
            .map_err(|_| bad_stat(header))
    };
    let n: usize = w[8].parse().map_err(|_| bad_stat(header))?;
    let mut aces = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let l = line(out, &mut pos)?;
        let f: Vec<&str> = l.split_whitespace().collect();
        let [sid, ty, rights] = f[..] else {
            return Err(bad_stat(l));
        };
        aces.push(Ace {
            sid: sid.to_string(),
            allow: ty == "Allow",
            rights: rights
                .parse::<i64>()
                .map(|r| r as u32)
                .map_err(|_| bad_stat(l))?,
        });
    }
    let owner = b64(w[6])?.unwrap_or_else(|| w[4].to_string());
    let group = b64(w[7])?.unwrap_or_else(|| w[5].to_string());
    let mut st = FileState {
        kind,
        mode: acl::mode_of(w[4], w[5], &aces),
        owner: short_name(&owner).to_string(),
        group: short_name(&group).to_string(),
        size: w[1].parse().map_err(|_| bad_stat(header))?,
        mtime: ms(w[2])?,
        atime: ms(w[3])?,
        ..FileState::default()
    };
    let rest = &out[pos..];
    match kind {
        FileKind::Link if !want.follow => {
            let l = line(out, &mut pos)?;
            st.link_target = b64(l)?;
        }
        FileKind::File if want.content => {
            if want.checksum {
                st.sha256 = Some(hex::encode(sha2::Sha256::digest(rest)));
                st.sha1 = Some(hex::encode(sha1::Sha1::digest(rest)));
            }
            st.content = Some(rest.to_vec());
        }
        FileKind::File if want.checksum => {
            let l = line(out, &mut pos)?;
            match l.split_once(' ') {
                Some((a, b)) if a.len() == 64 && b.len() == 40 => {
                    st.sha256 = Some(a.to_string());
                    st.sha1 = Some(b.to_string());
                }
                _ => return Err(bad_stat(l)),
            }
        }
        _ => {}
    }
    Ok(st)
}

/// Atomic write. Stdin carries the content, then its SHA-256 in hex and `\n`
/// ([`super::ssh_script::write_input`]); the script holds only the size. The bytes go to a new
/// temp file in the destination's directory (`FileMode.CreateNew`, flushed to disk), are
/// checked (count, digest), get the ACL ([`acl`]), then replace the destination with
/// `[IO.File]::Replace` (the old file kept as the backup when asked; Replace carries the old
/// file's ACL over, so the ACL is set again after it) or become it with `[IO.File]::Move`.
/// Any failure removes the temp file. Prints `castellan-backup NAME` when it made a backup.
pub fn write_script(
    path: &str,
    attrs: &Attrs,
    follow: bool,
    size: usize,
    backup: Option<&Suffixes>,
) -> Result<String, ScriptError> {
    let suffix = |s: Option<&str>| -> Result<String, QuoteError> {
        s.map_or_else(|| Ok("$null".into()), |x| q(&win_suffix(x)))
    };
    Ok(format!(
        r#"{PRELUDE}{acl}$dest = {dest}; $size = {size}; $s1 = {s1}; $s2 = {s2}; $hasattrs = {hasattrs}
if ({follow}) {{
  $it = Get-Item -LiteralPath $dest -Force -ErrorAction SilentlyContinue
  if ($it -and $it.LinkType -eq 'SymbolicLink') {{ $dest = [IO.Path]::GetFullPath([IO.Path]::Combine([IO.Path]::GetDirectoryName($it.FullName), @($it.Target)[0])) }}
}}
$d = [IO.Path]::GetDirectoryName($dest); $b = [IO.Path]::GetFileName($dest)
if (-not [IO.Directory]::Exists($d)) {{ Fail "Destination directory $d does not exist" }}
$tmp = [IO.Path]::Combine($d, '.' + $b + '.castellan-tmp-' + [Guid]::NewGuid().ToString('N').Substring(0, 12))
$cleanup.Add($tmp)
$f = New-Object IO.FileStream($tmp, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]::None)
$left = [long]$size
try {{
  $buf = New-Object byte[] 65536
  while ($left -gt 0) {{
    $n = $stdin.Read($buf, 0, [int][Math]::Min($buf.Length, $left))
    if ($n -le 0) {{ break }}
    $f.Write($buf, 0, $n); $left -= $n
  }}
  $f.Flush($true)
}} finally {{ $f.Dispose() }}
if ($left -gt 0) {{ Fail ("cannot write $dest`: the content stream ended after {{0}} of $size bytes (connection lost?); $dest is unchanged" -f ($size - $left)) }}
$want = New-Object Collections.Generic.List[byte]
while ($true) {{ $c = $stdin.ReadByte(); if ($c -lt 0 -or $c -eq 10) {{ break }}; $want.Add([byte]$c) }}
$sha = [Security.Cryptography.SHA256]::Create()
$fs = [IO.File]::OpenRead($tmp); try {{ $hash = $sha.ComputeHash($fs) }} finally {{ $fs.Dispose() }}
$got = -join ($hash | ForEach-Object {{ $_.ToString('x2') }})
if ($got -ne [Text.Encoding]::ASCII.GetString($want.ToArray())) {{ Fail "cannot write $dest`: the content arrived damaged (SHA-256 mismatch); $dest is unchanged" }}
if ($hasattrs) {{ Set-CastAcl $tmp $false }}
$bk = $null
if ([IO.File]::Exists($dest)) {{
  if ($s1) {{ $bk = $dest + $s1; if (Test-Path -LiteralPath $bk) {{ $bk = $dest + $s2 }} }}
  [IO.File]::Replace($tmp, $dest, $bk)
  $cleanup.Clear()
  if ($hasattrs) {{ Set-CastAcl $dest $false }}
}} else {{
  [IO.File]::Move($tmp, $dest)
  $cleanup.Clear()
}}
if ($bk) {{ Out-Text ('{BACKUP_TAG} ' + $bk) }}
$out.Flush()
exit 0
"#,
        acl = acl::acl_function(attrs)?,
        dest = qp(path)?,
        s1 = suffix(backup.map(|s| s.usual.as_str()))?,
        s2 = suffix(backup.map(|s| s.fallback.as_str()))?,
        hasattrs = flag(!attrs.is_empty()),
        follow = flag(follow),
    ))
}

/// Set the ACL of an existing path (the link itself is not special-cased: Windows ACLs of a
/// symbolic link are rarely what is meant, so `follow` is applied by resolving it first).
pub fn set_attrs_script(path: &str, attrs: &Attrs, follow: bool) -> Result<String, ScriptError> {
    Ok(format!(
        r#"{PRELUDE}{acl}$p = {p}
$it = Get-Item -LiteralPath $p -Force
if ({follow} -and $it.LinkType -eq 'SymbolicLink') {{ $p = [IO.Path]::GetFullPath([IO.Path]::Combine([IO.Path]::GetDirectoryName($it.FullName), @($it.Target)[0])); $it = Get-Item -LiteralPath $p -Force }}
Set-CastAcl $p ([bool]$it.PSIsContainer)
exit 0
"#,
        acl = acl::acl_function(attrs)?,
        p = qp(path)?,
        follow = flag(follow),
    ))
}

/// Create the missing directories one level at a time (each gets the ACL); when nothing was
/// missing the ACL goes on the last one.
pub fn mkdir_script(path: &str, attrs: &Attrs) -> Result<String, ScriptError> {
    Ok(format!(
        r#"{PRELUDE}{acl}$p = [IO.Path]::GetFullPath({p})
$chain = New-Object Collections.Generic.List[string]
$x = $p
while ($x) {{ $chain.Insert(0, $x); $x = [IO.Path]::GetDirectoryName($x) }}
$made = $false
foreach ($x in $chain) {{
  if ([IO.Directory]::Exists($x)) {{ continue }}
  if ([IO.File]::Exists($x)) {{ Fail "cannot create directory $x`: a file is in the way" }}
  [void][IO.Directory]::CreateDirectory($x)
  Set-CastAcl $x $true; $made = $true
}}
if (-not $made) {{ Set-CastAcl $p $true }}
exit 0
"#,
        acl = acl::acl_function(attrs)?,
        p = qp(path)?,
    ))
}

/// Remove a path and everything under it; a symbolic link (or junction) is removed itself,
/// never what it points to.
pub fn remove_script(path: &str) -> Result<String, QuoteError> {
    Ok(format!(
        r#"{PRELUDE}$p = {p}
$it = Get-Item -LiteralPath $p -Force -ErrorAction SilentlyContinue
if ($null -eq $it) {{ exit 0 }}
if ($it.Attributes -band [IO.FileAttributes]::ReparsePoint) {{
  if ($it.PSIsContainer) {{ [IO.Directory]::Delete($it.FullName, $false) }} else {{ [IO.File]::Delete($it.FullName) }}
}} elseif ($it.PSIsContainer) {{
  Remove-Item -LiteralPath $p -Recurse -Force
}} else {{
  Remove-Item -LiteralPath $p -Force
}}
exit 0
"#,
        p = qp(path)?,
    ))
}

/// Create or replace a symbolic link (needs an administrator or Developer Mode on Windows): a
/// temp link beside it, the old link removed, the temp one renamed (not atomic on Windows).
pub fn symlink_script(src: &str, path: &str, force: bool) -> Result<String, QuoteError> {
    Ok(format!(
        r#"{PRELUDE}$p = {p}; $s = {s}; $force = {force}
$it = Get-Item -LiteralPath $p -Force -ErrorAction SilentlyContinue
$islink = $it -and ($it.Attributes -band [IO.FileAttributes]::ReparsePoint)
if ($it -and $it.PSIsContainer -and -not $islink) {{ Fail "refusing to convert from directory to symlink for $p" }}
if ($it -and -not $islink -and -not $force) {{ Fail "refusing to convert from file to symlink for $p (set force: true)" }}
$tmp = [IO.Path]::Combine([IO.Path]::GetDirectoryName([IO.Path]::GetFullPath($p)), '.' + [IO.Path]::GetFileName($p) + '.castellan-tmp-' + [Guid]::NewGuid().ToString('N').Substring(0, 12))
$cleanup.Add($tmp)
[void](New-Item -ItemType SymbolicLink -Path $tmp -Value $s)
if ($it) {{ if ($islink -and $it.PSIsContainer) {{ [IO.Directory]::Delete($it.FullName, $false) }} else {{ [IO.File]::Delete($it.FullName) }} }}
Move-Item -LiteralPath $tmp -Destination $p
exit 0
"#,
        p = qp(path)?,
        s = qp(src)?,
        force = flag(force),
    ))
}

/// Create an empty file (with the ACL) or update its write time.
pub fn touch_script(path: &str, attrs: &Attrs) -> Result<String, ScriptError> {
    Ok(format!(
        r#"{PRELUDE}{acl}$p = {p}
if ([IO.File]::Exists($p)) {{ [IO.File]::SetLastWriteTimeUtc($p, [DateTime]::UtcNow) }}
else {{ $f = New-Object IO.FileStream($p, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write); $f.Dispose() }}
Set-CastAcl $p $false
exit 0
"#,
        acl = acl::acl_function(attrs)?,
        p = qp(path)?,
    ))
}

/// The script of a command. A `shell` request is PowerShell text (Ansible's `win_shell`): it
/// runs as a script block, and the exit code is `$LASTEXITCODE` (0 when it ran no program), 1
/// when it threw. An `argv` request starts the program with a command line built by
/// [`argv_to_cmdline`], the rest of stdin copied to it as bytes, its output copied back as
/// bytes; a missing program gives rc 2 and `[Errno 2] No such file or directory: PROG`.
pub fn exec_script(req: &ExecRequest) -> Result<String, QuoteError> {
    let mut s = String::from(PRELUDE);
    if let Some(dir) = &req.chdir {
        s.push_str(&format!(
            "$wd = {}\nif (-not [IO.Directory]::Exists($wd)) {{ Fail \"Unable to change directory before execution: $wd\" }}\nSet-Location -LiteralPath $wd; [IO.Directory]::SetCurrentDirectory($wd)\n",
            qp(dir)?
        ));
    }
    match &req.shell {
        Some(script) => {
            s.push_str(&format!(
                r#"$global:LASTEXITCODE = 0
$user = [ScriptBlock]::Create({})
try {{ & $user | Out-String -Stream | ForEach-Object {{ Out-Text ($_ + "`n") }} }}
catch {{ [Console]::Error.WriteLine($_.Exception.Message); $out.Flush(); exit 1 }}
$out.Flush()
exit $LASTEXITCODE
"#,
                q(script)?
            ));
        }
        None => {
            let Some(prog) = req.argv.first() else {
                s.push_str("Fail 'no command given'\n");
                return Ok(s);
            };
            let args: Vec<&str> = req.argv[1..].iter().map(String::as_str).collect();
            s.push_str(&format!(
                r#"$prog = {prog}
$cmd = Get-Command -Name $prog -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
if ($null -eq $cmd) {{ [Console]::Error.Write("[Errno 2] No such file or directory: $prog"); exit 2 }}
$psi = New-Object Diagnostics.ProcessStartInfo($cmd.Source, {args})
$psi.UseShellExecute = $false
$psi.RedirectStandardInput = $true; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true
$psi.WorkingDirectory = [IO.Directory]::GetCurrentDirectory()
$proc = [Diagnostics.Process]::Start($psi)
$err = [Console]::OpenStandardError()
$t1 = $proc.StandardOutput.BaseStream.CopyToAsync($out)
$t2 = $proc.StandardError.BaseStream.CopyToAsync($err)
try {{ $stdin.CopyTo($proc.StandardInput.BaseStream) }} catch {{ }}
try {{ $proc.StandardInput.Close() }} catch {{ }}
$proc.WaitForExit(); $t1.Wait(); $t2.Wait(); $out.Flush(); $err.Flush()
exit $proc.ExitCode
"#,
                prog = q(prog)?,
                args = q(&argv_to_cmdline(&args)?)?,
            ));
        }
    }
    Ok(s)
}

/// A file operation as one script and its stdin (None for [`Op::Exec`]).
pub fn file_job(op: &Op) -> Option<Result<super::ssh_script::FileJob, ScriptError>> {
    use super::ssh_script::{write_input, FileJob};
    let script = |s: Result<String, ScriptError>| {
        Some(s.map(|script| FileJob {
            script,
            stdin: None,
        }))
    };
    match op {
        Op::Write {
            path,
            content,
            attrs,
            backup,
            follow,
        } => {
            let names = backup.then(Suffixes::now);
            Some(
                write_script(path, attrs, *follow, content.len(), names.as_ref()).map(|script| {
                    FileJob {
                        script,
                        stdin: Some(write_input(content)),
                    }
                }),
            )
        }
        Op::SetAttrs {
            path,
            attrs,
            follow,
        } => script(set_attrs_script(path, attrs, *follow)),
        Op::Mkdir { path, attrs } => script(mkdir_script(path, attrs)),
        Op::Remove { path } => script(remove_script(path).map_err(AclError::from)),
        Op::Symlink { src, path, force } => {
            script(symlink_script(src, path, *force).map_err(AclError::from))
        }
        Op::Touch { path, attrs } => script(touch_script(path, attrs)),
        Op::Exec(_) => None,
    }
}

/// The backup the write script made, from its stdout.
pub fn backup_made(stdout: &[u8]) -> Option<String> {
    let name = stdout.strip_prefix(format!("{BACKUP_TAG} ").as_bytes())?;
    Some(String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::pwsh_quote::tests::{hazardous, read_verbatim};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The value of the verbatim literal that follows `marker` in `script`.
    fn literal_after(script: &str, marker: &str) -> String {
        let at = script
            .find(marker)
            .unwrap_or_else(|| panic!("{marker:?} not in {script}"))
            + marker.len();
        read_verbatim(&script[at..])
            .unwrap_or_else(|| panic!("no literal after {marker:?}"))
            .0
    }

    fn key_attrs() -> Attrs {
        Attrs {
            owner: Some("NT SERVICE\\CASTStorageService4".into()),
            group: None,
            mode: Some(0o600),
        }
    }

    #[test]
    fn the_command_line_is_fixed_and_safe_for_cmd_and_powershell() {
        for bad in ['"', '\'', '%', '`', '\n', '\r', '^', '!', '<', '>', '|'] {
            assert!(!BOOTSTRAP.contains(bad), "bootstrap holds {bad:?}");
        }
        assert_eq!(
            command_line(Flavour::Cmd),
            format!("powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command \"{BOOTSTRAP}\"")
        );
        assert_eq!(
            command_line(Flavour::PowerShell),
            format!("powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command '{BOOTSTRAP}'")
        );
        assert!(!command_line(Flavour::Cmd).contains("EncodedCommand"));
        // It reads the header a byte at a time, exactly N bytes after it, checks the nonce.
        assert!(BOOTSTRAP.contains("$i.ReadByte()"));
        assert!(BOOTSTRAP.contains("$i.Read($b,$o,$n-$o)"));
        assert!(BOOTSTRAP.contains("EndsWith($e,[StringComparison]::Ordinal)){exit 125}"));
        assert!(BOOTSTRAP.contains("& ([ScriptBlock]::Create($s)) $i"));
        // Braces and parentheses balance (a typo would be a parse error on every host).
        for (o, c) in [('{', '}'), ('(', ')'), ('[', ']')] {
            assert_eq!(
                BOOTSTRAP.matches(o).count(),
                BOOTSTRAP.matches(c).count(),
                "{o}{c}"
            );
        }
    }

    #[test]
    fn shell_types() {
        let v = |s: serde_json::Value| {
            let mut m = serde_json::Map::new();
            m.insert("ansible_shell_type".into(), s);
            Flavour::from_vars(&m)
        };
        assert_eq!(Flavour::from_vars(&serde_json::Map::new()), Ok(None));
        assert_eq!(v("powershell".into()), Ok(Some(Flavour::PowerShell)));
        assert_eq!(v("cmd".into()), Ok(Some(Flavour::Cmd)));
        assert_eq!(v("sh".into()), Ok(None));
        assert!(v("fish".into()).unwrap_err().contains("not supported"));
        assert!(v(3.into()).unwrap_err().contains("expected a string"));
    }

    #[test]
    fn every_script_balances_and_starts_with_the_prelude() {
        let a = key_attrs();
        let p = "C:\\CAST\\ssl/server.key";
        let scripts = [
            stat_script(
                p,
                Want {
                    content: true,
                    checksum: true,
                    follow: false,
                },
            )
            .unwrap(),
            stat_script(
                p,
                Want {
                    checksum: true,
                    ..Want::default()
                },
            )
            .unwrap(),
            write_script(p, &a, true, 10, Some(&Suffixes::now())).unwrap(),
            set_attrs_script(p, &a, false).unwrap(),
            mkdir_script(p, &a).unwrap(),
            remove_script(p).unwrap(),
            symlink_script("C:\\x", p, true).unwrap(),
            touch_script(p, &a).unwrap(),
            // Arguments are passed as they are (not paths to convert).
            exec_script(&ExecRequest {
                argv: vec!["icacls.exe".into(), "C:\\x".into()],
                ..ExecRequest::default()
            })
            .unwrap(),
            exec_script(&ExecRequest {
                shell: Some("Get-Service".into()),
                chdir: Some("C:\\".into()),
                ..ExecRequest::default()
            })
            .unwrap(),
        ];
        for s in &scripts {
            assert!(
                s.starts_with("param($stdin)\n$ErrorActionPreference = 'Stop'"),
                "{s}"
            );
            for (o, c) in [('{', '}'), ('(', ')')] {
                assert_eq!(s.matches(o).count(), s.matches(c).count(), "{o}{c} in {s}");
            }
            // Paths are in Windows form.
            assert!(!s.contains("ssl/server.key"), "{s}");
        }
    }

    #[test]
    fn stat_script_text() {
        let s = stat_script(
            "C:\\CAST\\ssl\\server.crt",
            Want {
                checksum: true,
                ..Want::default()
            },
        )
        .unwrap();
        assert!(s.contains("$p = 'C:\\CAST\\ssl\\server.crt'; $follow = $false\n"));
        assert!(s.contains("Get-Item -LiteralPath $p -Force"));
        assert!(s.contains("Out-Text \"castellan-stat missing`n\"; exit 0"));
        assert!(
            s.contains("if ($kind -eq 'l') { Out-Text ((B64 @($it.Target)[0]) + \"`n\"); exit 0 }")
        );
        assert!(s.contains("SHA256]::Create().ComputeHash($x)"));
        assert!(!s.contains("ReadAllBytes($it.FullName); $out.Write"));
        let s = stat_script(
            "C:\\x",
            Want {
                content: true,
                follow: true,
                ..Want::default()
            },
        )
        .unwrap();
        assert!(s.contains("$follow = $true"));
        assert!(
            s.contains("$x = [IO.File]::ReadAllBytes($it.FullName); $out.Write($x, 0, $x.Length)")
        );
        assert!(!s.contains("if ($kind -eq 'l')"));
    }

    fn stat_out(rest: &[u8]) -> Vec<u8> {
        let mut v = b"castellan-stat f 5 1700000000123 1700000000999 S-1-5-80-1 S-1-5-18 ".to_vec();
        // "NT SERVICE\CASTStorageService4" and "NT AUTHORITY\SYSTEM" in base64.
        v.extend_from_slice(
            b"TlQgU0VSVklDRVxDQVNUU3RvcmFnZVNlcnZpY2U0 TlQgQVVUSE9SSVRZXFNZU1RFTQ== 3\n",
        );
        v.extend_from_slice(
            b"S-1-5-18 Allow 2032127\nS-1-5-32-544 Allow 2032127\nS-1-5-80-1 Allow 278\n",
        );
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn parse_stat_reads_kind_times_acl_and_content() {
        let st = parse_stat(b"castellan-stat missing\n", Want::default()).unwrap();
        assert!(!st.exists());
        let st = parse_stat(
            &stat_out(b"a\r\nb\xff"),
            Want {
                content: true,
                checksum: true,
                follow: false,
            },
        )
        .unwrap();
        assert_eq!(st.kind, FileKind::File);
        assert_eq!(st.size, 5);
        assert_eq!(st.mtime, 1_700_000_000.123);
        assert_eq!(st.owner, "CASTStorageService4");
        assert_eq!(st.group, "SYSTEM");
        assert_eq!(st.mode, 0o200, "Write only for the owner");
        assert_eq!(
            st.content.as_deref(),
            Some(&b"a\r\nb\xff"[..]),
            "bytes as they are"
        );
        assert_eq!(st.sha256.as_deref().map(str::len), Some(64));
        let sums = format!("{} {}\n", "a".repeat(64), "b".repeat(40));
        let st = parse_stat(
            &stat_out(sums.as_bytes()),
            Want {
                checksum: true,
                ..Want::default()
            },
        )
        .unwrap();
        assert_eq!(st.sha1.as_deref(), Some("b".repeat(40).as_str()));
        // A link not followed: its target, in base64.
        let out = b"castellan-stat l 0 1000 1000 S-1-5-32-544 S-1-5-18 - - 0\nQzpcdMOpc3Q=\n";
        let st = parse_stat(out, Want::default()).unwrap();
        assert_eq!(st.link_target.as_deref(), Some("C:\\t\u{e9}st"));
        assert_eq!(st.owner, "S-1-5-32-544", "no name: the SID");
        for bad in [
            &b"garbage\n"[..],
            b"castellan-stat f 1 2\n",
            b"castellan-stat f 1 2 3 a b - - 2\nS-1 Allow 1\n",
        ] {
            assert!(
                parse_stat(bad, Want::default()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn write_script_text() {
        let sfx = Suffixes {
            usual: ".42.2026-01-02@03:04:05~".into(),
            fallback: ".42.2026-01-02@03:04:05.ab~".into(),
        };
        let s = write_script(
            "C:/CAST/ssl/server.key",
            &key_attrs(),
            false,
            1234,
            Some(&sfx),
        )
        .unwrap();
        assert!(s.contains("$dest = 'C:\\CAST\\ssl\\server.key'; $size = 1234; $s1 = '.42.2026-01-02@03-04-05~'; $s2 = '.42.2026-01-02@03-04-05.ab~'; $hasattrs = $true\n"));
        assert!(s.contains("if ($false) {"), "follow off");
        assert!(s.contains("[IO.FileMode]::CreateNew"));
        assert!(s.contains("$f.Flush($true)"));
        assert!(s.contains("(SHA-256 mismatch)"));
        // ACL on the temp file before it becomes the file, and again after Replace.
        let acl_tmp = s
            .find("if ($hasattrs) { Set-CastAcl $tmp $false }")
            .unwrap();
        let replace = s.find("[IO.File]::Replace($tmp, $dest, $bk)").unwrap();
        let acl_dest = s
            .find("if ($hasattrs) { Set-CastAcl $dest $false }")
            .unwrap();
        assert!(acl_tmp < replace && replace < acl_dest);
        assert!(s.contains("[IO.File]::Move($tmp, $dest)"));
        assert!(s.contains("SetAccessRuleProtection($true, $false)"));
        // The temp file is in the destination's directory.
        assert!(s.contains("$tmp = [IO.Path]::Combine($d, '.' + $b + '.castellan-tmp-'"));
        // Never the content, never its digest.
        let w = write_script("C:\\a", &Attrs::default(), true, 0, None).unwrap();
        assert!(w.contains("$s1 = $null; $s2 = $null; $hasattrs = $false"));
        assert!(w.contains("if ($true) {"));
        let job = file_job(&Op::Write {
            path: "C:\\a".into(),
            content: Arc::new(b"secret\r\n".to_vec()),
            attrs: Attrs::default(),
            backup: false,
            follow: false,
        })
        .unwrap()
        .unwrap();
        assert!(!job.script.contains("secret"));
        assert!(job.stdin.unwrap().starts_with(b"secret\r\n"));
        assert_eq!(
            backup_made(b"castellan-backup C:\\a.1~"),
            Some("C:\\a.1~".into())
        );
        assert_eq!(backup_made(b""), None);
    }

    #[test]
    fn other_file_scripts_text() {
        let s = set_attrs_script("C:\\d", &key_attrs(), true).unwrap();
        assert!(s.contains("Set-CastAcl $p ([bool]$it.PSIsContainer)"));
        assert!(s.contains("if ($true -and $it.LinkType -eq 'SymbolicLink')"));
        let s = mkdir_script("C:\\CAST\\ssl", &key_attrs()).unwrap();
        assert!(s.contains("$p = [IO.Path]::GetFullPath('C:\\CAST\\ssl')"));
        assert!(s.contains("[void][IO.Directory]::CreateDirectory($x)\n  Set-CastAcl $x $true"));
        assert!(s.contains("if (-not $made) { Set-CastAcl $p $true }"));
        let s = remove_script("C:\\CAST\\old").unwrap();
        assert!(
            s.contains("[IO.Directory]::Delete($it.FullName, $false)"),
            "a link is removed, not its target"
        );
        assert!(s.contains("Remove-Item -LiteralPath $p -Recurse -Force"));
        let s = symlink_script("C:\\t", "C:\\l", false).unwrap();
        assert!(s.contains("$p = 'C:\\l'; $s = 'C:\\t'; $force = $false"));
        assert!(s.contains("New-Item -ItemType SymbolicLink -Path $tmp -Value $s"));
        let s = touch_script("C:\\f", &Attrs::default()).unwrap();
        assert!(s.contains("[IO.FileMode]::CreateNew"));
        assert!(s.contains("SetLastWriteTimeUtc"));
        assert!(mkdir_script(
            "C:\\x",
            &Attrs {
                mode: Some(0o1777),
                ..Attrs::default()
            }
        )
        .is_err());
        assert!(file_job(&Op::Exec(ExecRequest::default())).is_none());
        assert!(file_job(&Op::Remove {
            path: "C:\\x\0".into()
        })
        .unwrap()
        .is_err());
    }

    #[test]
    fn exec_script_text() {
        let s = exec_script(&ExecRequest {
            argv: vec![
                "C:\\Program Files\\PostgreSQL\\bin\\psql.exe".into(),
                "-c".into(),
                "select 'a b'".into(),
            ],
            ..ExecRequest::default()
        })
        .unwrap();
        assert!(s.contains("$prog = 'C:\\Program Files\\PostgreSQL\\bin\\psql.exe'"));
        assert!(s.contains("ProcessStartInfo($cmd.Source, '-c \"select ''a b''\"')"));
        assert!(s.contains("[Errno 2] No such file or directory: $prog"));
        assert!(s.contains("$stdin.CopyTo($proc.StandardInput.BaseStream)"));
        let s = exec_script(&ExecRequest {
            shell: Some("Restart-Service 'x'; exit 3".into()),
            chdir: Some("C:\\w d".into()),
            ..ExecRequest::default()
        })
        .unwrap();
        assert!(s.contains("$wd = 'C:\\w d'"));
        assert!(s.contains("$user = [ScriptBlock]::Create('Restart-Service ''x''; exit 3')"));
        assert!(s.contains("exit $LASTEXITCODE"));
        assert!(exec_script(&ExecRequest::default())
            .unwrap()
            .contains("Fail 'no command given'"));
    }

    proptest! {
        #[test]
        fn paths_and_values_stay_literal_in_every_script(p in hazardous(), t in hazardous(), cmd in hazardous()) {
            let want = win_path(&p);
            let a = Attrs { owner: Some(t.clone()), group: None, mode: Some(0o640) };
            prop_assert_eq!(literal_after(&stat_script(&p, Want::default()).unwrap(), "$p = "), want.clone());
            let w = write_script(&p, &a, false, 3, None).unwrap();
            prop_assert_eq!(literal_after(&w, "$dest = "), want.clone());
            prop_assert_eq!(literal_after(&w, "$o = "), t.clone());
            prop_assert_eq!(literal_after(&set_attrs_script(&p, &a, false).unwrap(), "$p = "), want.clone());
            prop_assert_eq!(literal_after(&mkdir_script(&p, &a).unwrap(), "GetFullPath("), want.clone());
            prop_assert_eq!(literal_after(&remove_script(&p).unwrap(), "$p = "), want.clone());
            let l = symlink_script(&t, &p, true).unwrap();
            prop_assert_eq!(literal_after(&l, "$p = "), want.clone());
            prop_assert_eq!(literal_after(&l, "; $s = "), win_path(&t));
            prop_assert_eq!(literal_after(&touch_script(&p, &a).unwrap(), "$p = "), want.clone());
            let e = exec_script(&ExecRequest { shell: Some(cmd.clone()), chdir: Some(p.clone()), ..ExecRequest::default() }).unwrap();
            prop_assert_eq!(literal_after(&e, "$wd = "), want);
            prop_assert_eq!(literal_after(&e, "[ScriptBlock]::Create("), cmd.clone());
            let e = exec_script(&ExecRequest { argv: vec![t.clone(), cmd.clone(), p.clone()], ..ExecRequest::default() }).unwrap();
            prop_assert_eq!(literal_after(&e, "$prog = "), t);
            let line = literal_after(&e, "ProcessStartInfo($cmd.Source, ");
            prop_assert_eq!(crate::connection::pwsh_quote::tests::split_cmdline(&line), vec![cmd, p]);
        }
    }
}
