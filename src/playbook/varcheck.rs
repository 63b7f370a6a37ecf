//! The undefined-variable check run before any host is contacted.
use std::collections::HashSet;

use crate::error::{Error, Location, Result};

/// Variables one template or condition reads, and the names local to it (loop variables).
#[derive(Debug, Clone)]
pub struct VarUse {
    pub loc: Location,
    pub names: Vec<String>,
    pub locals: Vec<String>,
}

/// Fail with the first use of a name that nothing defines: not the inventory, the play, a
/// role, a vars file, `register`, `set_fact`, extra vars, nor a magic variable.
pub fn check(uses: &[VarUse], known: &HashSet<String>) -> Result<()> {
    for u in uses {
        for n in &u.names {
            if !known.contains(n) && !u.locals.iter().any(|l| l == n) {
                let hint = crate::modules::args::did_you_mean(n, known.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Error::invalid(
                    &u.loc,
                    format!(
                        "undefined variable `{n}`{hint}: it is not set by the inventory, the play, \
                         a role, a vars file, register, set_fact or -e"
                    ),
                ));
            }
        }
    }
    Ok(())
}
