//! `castellan playbook`: load and check everything, then run.
use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;

use super::{Output, PlaybookArgs};
use crate::engine::{interrupt, Interrupt, RunOptions, Runner};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::playbook::keywords::MAGIC_VARS;
use crate::playbook::{load_playbook, preflight, varcheck, Playbook};
use crate::report::json::JsonReporter;
use crate::report::text::TextReporter;
use crate::report::Reporter;
use crate::template::Templar;

/// Everything loaded and checked, ready to run.
pub struct Loaded {
    pub inventory: Inventory,
    pub playbooks: Vec<Playbook>,
    pub templar: Templar,
}

/// Load the inventory and playbooks and run every check that needs no host.
pub fn load_and_check(
    args: &PlaybookArgs,
    extra: &serde_json::Map<String, serde_json::Value>,
    extra_locs: &crate::vars::VarLocs,
) -> Result<Loaded> {
    let inventory = Inventory::load(&args.inventory)?;
    let templar = Templar::new();
    let mut playbooks = Vec::new();
    let mut uses = Vec::new();
    let mut known: HashSet<String> = MAGIC_VARS.iter().map(|s| s.to_string()).collect();
    for path in &args.playbooks {
        if !path.exists() {
            return Err(Error::Usage(format!(
                "the playbook {} could not be found",
                path.display()
            )));
        }
        let (book, u, defined) = load_playbook(path, &templar)?;
        uses.extend(u);
        known.extend(defined);
        playbooks.push(book);
    }
    for h in inventory.hosts() {
        known.extend(h.vars.keys().cloned());
    }
    known.extend(inventory.implicit_localhost().vars.keys().cloned());
    known.extend(extra.keys().cloned());
    varcheck::check(&uses, &known)?;
    for book in &playbooks {
        for play in &book.plays {
            inventory
                .select(&play.hosts)
                .map_err(|e| Error::invalid(&play.loc, format!("hosts: {e}")))?;
        }
    }
    if let Some(l) = &args.limit {
        inventory
            .select(l)
            .map_err(|e| Error::Usage(format!("--limit: {e}")))?;
    }
    preflight::check(&preflight::Preflight {
        inventory: &inventory,
        playbooks: &playbooks,
        extra,
        extra_locs,
        limit: args.limit.as_deref(),
        templar: &templar,
    })?;
    Ok(Loaded {
        inventory,
        playbooks,
        templar,
    })
}

pub fn run(args: PlaybookArgs) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))?;
    // SIGINT and SIGTERM are ours from here on: a run stops cleanly (engine/interrupt.rs).
    let intr = Interrupt::new();
    {
        let _in_rt = rt.enter();
        interrupt::install(&intr)
            .map_err(|e| Error::Internal(format!("cannot handle SIGINT/SIGTERM: {e}")))?;
    }
    super::vault::load(&args.vault)?;
    let (extra, extra_locs) = super::extra_vars::parse_located(&args.extra_vars)?;
    let loaded = load_and_check(&args, &extra, &extra_locs)?;
    if args.syntax_check {
        for p in &args.playbooks {
            println!("playbook: {}", p.display());
        }
        return Ok(intr.exit_code().unwrap_or(0));
    }
    crate::connection::ssh_session::set_verbosity(args.verbose);
    let opts = RunOptions {
        check: args.check,
        diff: args.diff,
        forks: args.forks as usize,
        max_connections: args.max_connections as usize,
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        extra_vars: extra,
        limit: args.limit.clone(),
        verbosity: args.verbose,
        accept_new_host_keys: args.accept_new_host_keys,
    };
    let reporter: Box<dyn Reporter> = match args.output {
        Output::Json => Box::new(JsonReporter::new()),
        Output::Text => {
            let tty = std::io::stdout().is_terminal();
            let progress =
                crate::report::progress::Progress::new(tty && std::io::stderr().is_terminal());
            Box::new(TextReporter::new(
                Box::new(std::io::stdout()),
                tty,
                args.verbose,
                progress,
            ))
        }
    };
    let code = rt.block_on(async {
        let mut runner = Runner::new(&loaded.inventory, &opts, &loaded.templar, reporter.as_ref());
        runner.interrupt = Arc::clone(&intr);
        let (_, code) = interrupt::run(&mut runner, &loaded.playbooks).await;
        code
    });
    Ok(code)
}
