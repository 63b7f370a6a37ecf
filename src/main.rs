use clap::Parser;

fn main() {
    let cli = match castellan::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 5,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    std::process::exit(castellan::cli::run(cli));
}
