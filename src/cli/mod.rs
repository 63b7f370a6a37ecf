//! The command line: clap definitions and dispatch. Errors map to DESIGN.md's exit codes.
pub mod certs;
pub mod extra_vars;
pub mod inventory;
pub mod lock;
pub mod pki;
pub mod playbook;
pub mod schedule;
pub mod vault;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "castellan",
    version,
    about = "Declarative provisioning for mutual-TLS PostgreSQL fleets, in the spirit of Ansible",
    long_about = "castellan runs Ansible-style playbooks (YAML inventory, roles, handlers, templates) \
                  against local and SSH hosts, and manages the certificates that turn on mutual TLS.\n\n\
                  Exit codes: 0 ok, 1 internal error, 2 a host failed (certs status: a renewal is \
                  due, a certificate differs from the PKI or is missing), 3 a host was unreachable, \
                  4 invalid input (nothing was contacted), 5 bad usage, 75 another run holds the \
                  --lock file (nothing was done), 130 interrupted (SIGINT), 143 terminated (SIGTERM).",
    after_help = "Examples:\n  castellan playbook playbooks/example.yml -i playbooks/inventory/local.yml --check --diff\n  \
                  castellan playbook playbooks/example.yml -i tests/fleet/inventory.yml -l 'db*' -f 50\n  \
                  castellan inventory -i playbooks/inventory/local.yml --list\n  \
                  castellan inventory -i vagrant:vagrant --list\n  \
                  castellan pki issue --dir pki server db1 --san db1.example.com --san 10.0.0.5\n  \
                  castellan certs status -i inventory.yml --output prometheus --prometheus-file /var/lib/prometheus/node-exporter/castellan.prom\n  \
                  castellan schedule install --name rotate -- playbook playbooks/rotate-certs.yml -i inventory.yml --output json"
)]
pub struct Cli {
    /// Run only while holding this lock file (flock): a second run that finds it held says
    /// which PID holds it and exits 75, having done nothing
    #[arg(long = "lock", value_name = "FILE", global = true)]
    pub lock: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run playbooks against an inventory (like ansible-playbook)
    Playbook(PlaybookArgs),
    /// Show an inventory as JSON (like ansible-inventory)
    Inventory(InventoryArgs),
    /// Local CA work: create a CA, issue, revoke, list and export certificates (no hosts needed)
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Certificates in use: what the servers serve and the files clients hold, expiry, whether
    /// they match the PKI (text, JSON or Prometheus metrics)
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Run a castellan command on a timer: systemd service + timer units, or a cron file
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
}

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Every server's certificate as served (TLS probe, no login) and the certificate files on
    /// the hosts (read over SSH: certificates only, never a key file): expiry, issuer, match with
    /// the PKI. Exit 0 ok, 2 when one expires within --warn-days, differs from the PKI or is
    /// missing, else 3 when a host is unreachable.
    #[command(
        after_help = "Which files: those of the holder roles of a host's groups (pem_agents, \
                      cast_imaging, cap_web, cap_worker) and the host variable \
                      castellan_cert_files (paths, or {path, name, kind} mappings). Servers: the \
                      hosts of group postgres (castellan_status_server: true/false overrides)."
    )]
    Status(CertsStatusArgs),
}

#[derive(Args, Debug)]
pub struct CertsStatusArgs {
    /// Inventory file or directory, or vagrant:DIR (a Vagrant environment; vagrant:FILE, a saved `vagrant ssh-config`) (repeatable)
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        required = true
    )]
    pub inventory: Vec<PathBuf>,
    /// Only these hosts (a pattern, default all)
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Warn (exit 2) when a certificate expires within this many days
    #[arg(long = "warn-days", default_value_t = 30)]
    pub warn_days: i64,
    /// The PKI directory to compare with (default: the hosts' `pki_dir` variable)
    #[arg(long = "pki-dir", value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Seconds to wait for each server (1 to 3600)
    #[arg(long = "timeout", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// How many hosts to check at once (1 to 1000)
    #[arg(short = 'f', long = "forks", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub forks: u32,
    /// Output format: a table, one JSON document, or Prometheus text (node_exporter textfile)
    #[arg(long = "output", value_enum, default_value_t = StatusOutput::Text)]
    pub output: StatusOutput,
    /// Also write the Prometheus metrics to this file, atomically (a temporary file in the same
    /// directory renamed over it), for node_exporter's textfile collector (name it *.prom)
    #[arg(long = "prometheus-file", value_name = "PATH")]
    pub prometheus_file: Option<PathBuf>,
    #[command(flatten)]
    pub vault: vault::VaultArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// `certs status --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusOutput {
    Text,
    Json,
    Prometheus,
}

#[derive(Args, Debug)]
pub struct PlaybookArgs {
    /// Playbook files to run, in order
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Inventory file or directory, or vagrant:DIR (a Vagrant environment; vagrant:FILE, a saved `vagrant ssh-config`) (repeatable)
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        required = true
    )]
    pub inventory: Vec<PathBuf>,
    /// Further limit the hosts with a pattern (`db1`, `postgres:!db2`, `db*`)
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Only run tasks with these tags (comma-separated, repeatable)
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags (comma-separated, repeatable)
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Change nothing; report what would change
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Show a unified diff of every text change (key material is redacted)
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    /// Extra variables: `key=value ...`, `@vars.yml`, or inline YAML/JSON (repeatable; highest precedence)
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// How many hosts to work on at once (1 to 1000: each SSH host holds a master process)
    #[arg(short = 'f', long = "forks", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub forks: u32,
    /// At most N SSH connections (master processes) open at once (1 to 100000): when N are open, a
    /// host that needs one waits for an idle one to be closed (it reconnects when it needs it
    /// again; hosts holding one run each task first); a host's connection is closed when it fails
    /// or is unreachable, the others at the end
    #[arg(long = "max-connections", value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,
    /// Output format: an Ansible-like text stream, or one JSON document on stdout
    #[arg(long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Only check the playbooks, roles, templates and variables; contact no host
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// Accept (and record in the inventory's known_hosts file) host keys never seen before
    #[arg(long = "accept-new-host-keys")]
    pub accept_new_host_keys: bool,
    /// More output (repeatable)
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub vault: vault::VaultArgs,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["list", "host"])))]
pub struct InventoryArgs {
    /// Inventory file or directory, or vagrant:DIR (a Vagrant environment; vagrant:FILE, a saved `vagrant ssh-config`) (repeatable)
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        required = true
    )]
    pub inventory: Vec<PathBuf>,
    /// Print every group and host with their variables
    #[arg(long)]
    pub list: bool,
    /// Print one host's variables
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[command(flatten)]
    pub vault: vault::VaultArgs,
}

/// The subcommand's name, as a lock file records it.
fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Playbook(_) => "playbook",
        Command::Inventory(_) => "inventory",
        Command::Pki(_) => "pki",
        Command::Certs(_) => "certs status",
        Command::Schedule(_) => "schedule",
    }
}

/// Run the command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    // Held until this function returns: the whole run.
    let _lock = match &cli.lock {
        Some(path) => match lock::acquire(path, command_name(&cli.command)) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: {}", shown_error(&e.to_string()));
                return e.exit_code();
            }
        },
        None => None,
    };
    let result = match cli.command {
        Command::Playbook(args) => playbook::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Certs(CertsCommand::Status(args)) => certs::run(args),
        Command::Schedule(cmd) => schedule::run(cmd),
        Command::Pki(cmd) => {
            return match pki::run(cmd, false) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {}", shown_error(&e.to_string()));
                    e.exit_code()
                }
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", shown_error(&e.to_string()));
            e.exit_code()
        }
    }
}

/// An error message as printed: no known secret value (a vault value quoted by a template
/// error), no raw control character.
fn shown_error(msg: &str) -> String {
    crate::error::printable(&crate::report::secret::mask(msg))
}
