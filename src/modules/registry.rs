//! Module names, including fully qualified ones (`ansible.builtin.copy`).
use super::{commands, control, files, pki, postgres, Module};

static MODULES: &[&dyn Module] = &[
    &files::copy::Copy,
    &files::template::Template,
    &files::file::File,
    &files::stat::Stat,
    &files::lineinfile::LineInFile,
    &files::blockinfile::BlockInFile,
    &files::ini_file::IniFile,
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
    &pki::secret::SecretModule,
    &postgres::pg_facts::PgFacts,
    &postgres::pg_service::PgService,
    &postgres::pg_verify::PgVerify,
    &postgres::pg_conf::PgConf,
    &postgres::pg_hba::PgHba,
];

/// Collections whose module names resolve to ours.
const PREFIXES: &[&str] = &[
    "ansible.builtin.",
    "ansible.legacy.",
    "community.general.",
    "castellan.",
];

/// Find a module by its short or fully qualified name.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    MODULES.iter().copied().find(|m| m.name() == short)
}

/// Every module name, for "did you mean" and `--help`.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|m| m.name())
}
