//! Modules for Windows hosts only (`ansible_shell_type: powershell|cmd`): what has no POSIX
//! counterpart among the other modules. `service` and the file modules serve Windows hosts
//! themselves (through the connection's PowerShell scripts).
pub mod win_environment;
