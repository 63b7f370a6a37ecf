//! `castellan` command line. For now only `castellan pki ...`; the other subcommands come with
//! the engine. Exit codes follow DESIGN.md: 0 ok, 1 internal, 4 invalid input, 5 bad usage.

use clap::{Parser, Subcommand};

use castellan::pki::cli::{run as run_pki, PkiCommand};

#[derive(Debug, Parser)]
#[command(
    name = "castellan",
    version,
    about = "Provisioning for mutual-TLS PostgreSQL fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Local CA work: create a CA, issue, revoke and list certificates (no hosts needed)
    #[command(subcommand)]
    Pki(PkiCommand),
}

fn main() {
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return if e.use_stderr() { 5 } else { 0 };
        }
    };
    match cli.command {
        Command::Pki(cmd) => match run_pki(cmd, false) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                e.exit_code()
            }
        },
    }
}
