//! Module names, including fully qualified ones (`ansible.builtin.copy`).
use super::{commands, control, files, packages, pki, postgres, services, wait, windows, Module};

static MODULES: &[&dyn Module] = &[
    &files::copy::Copy,
    &files::template::Template,
    &files::file::File,
    &files::stat::Stat,
    &files::lineinfile::LineInFile,
    &files::blockinfile::BlockInFile,
    &files::ini_file::IniFile,
    &files::env_file::EnvFile,
    &commands::command::Command,
    &commands::shell::Shell,
    &control::debug::Debug,
    &control::assert::Assert,
    &control::fail::Fail,
    &control::set_fact::SetFact,
    &pki::ca::PkiCa,
    &pki::cert::PkiCert,
    &pki::crl::PkiCrl,
    &pki::check::PkiCheck,
    &pki::csr::PkiCsr,
    &pki::rollover::PkiRollover,
    &pki::secret::SecretModule,
    &postgres::pg_facts::PgFacts,
    &postgres::pg_service::PgService,
    &postgres::pg_verify::PgVerify,
    &postgres::pg_conf::PgConf,
    &postgres::pg_hba::PgHba,
    &packages::package::Package,
    &packages::apt::Apt,
    &packages::dnf::Dnf,
    &packages::yum::Yum,
    &services::service::Service,
    &windows::win_environment::WinEnvironment,
    &services::systemd::Systemd,
    &wait::wait_for::WaitFor,
    &postgres::patroni_config::PatroniConfig,
];

/// Collections whose module names resolve to ours.
const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "community.general.",
    "ansible.windows.",
    "castellan.",
];

/// Other names of modules (Ansible's redirects): alias -> module name.
const ALIASES: &[(&str, &str)] = &[("systemd_service", "systemd"), ("win_service", "service")];

/// Find a module by its short or fully qualified name, or an alias of one.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    let short = ALIASES
        .iter()
        .find(|(alias, _)| *alias == short)
        .map_or(short, |(_, m)| m);
    MODULES.iter().copied().find(|m| m.name() == short)
}

/// Every module name, for "did you mean" and `--help`.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|m| m.name())
}
