//! Package modules, Ansible's names and arguments (the common subset): `apt`, `dnf`, `yum`,
//! and `package`, which picks one of them (`use: auto` reads `ansible_pkg_mgr` or looks for
//! `apt-get`, `dnf`, `yum` on the host). Each plan reads the installed versions in one query and
//! defers the install or removal to an action that reads them again afterwards
//! (`apt_plan.rs`, `rpm_plan.rs`); the host needs only `sh`, coreutils and its package manager.
pub mod apt;
pub mod apt_plan;
pub mod dnf;
pub mod package;
pub mod request;
pub mod rpm_plan;
pub mod run;
pub mod yum;

use crate::modules::{Arg, Args, Kind};

/// The arguments of `dnf` and `yum`.
pub const RPM_ARGS: &[Arg] = &[
    Arg::new("name", Kind::ListCsv).aliases(&["pkg"]),
    Arg::new("state", Kind::Str).choices(request::STATES),
    Arg::new("update_cache", Kind::Bool).aliases(&["expire-cache"]),
    Arg::new("disable_gpg_check", Kind::Bool),
    Arg::new("enablerepo", Kind::ListCsv),
    Arg::new("disablerepo", Kind::ListCsv),
    Arg::new("allow_downgrade", Kind::Bool),
];

/// `dnf`/`yum`: something to do, and names that can be packages.
pub fn validate_rpm(args: &Args) -> Result<(), String> {
    if !args.has("name") && !args.has("update_cache") {
        return Err("one of the following is required: name, update_cache".into());
    }
    request::check_literal_names(args, request::Family::Rpm)
}
