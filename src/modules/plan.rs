//! A module's answer ([`Plan`]): what it found, as one of three outcomes that cannot contradict
//! each other, the result keys to register, and the facts to set. JetPorch's Query →
//! IsMatched / NeedsCreation / NeedsModification, pyinfra's generator of commands: the module
//! only reads and decides; the engine acts on [`Outcome::Change`] (or, in check mode, reports it).
use serde_json::{Map, Value};

use super::{Action, Diff};
use crate::connection::Op;

/// One thing to do, in order: a primitive file op the connection applies, or a deferred action.
#[derive(Debug)]
pub enum Step {
    Op(Op),
    Action(Box<dyn Action>),
}

/// What the module found.
#[derive(Debug, Default)]
pub enum Outcome {
    /// The host already is as wanted (or the module only reads: `stat`, `debug`, `pg_facts`).
    #[default]
    Matched,
    /// The task does not apply, and why (`creates` exists...).
    Skipped(String),
    /// Steps to take (never empty) and the diff to show for them.
    Change {
        steps: Vec<Step>,
        diff: Option<Diff>,
    },
}

#[derive(Debug, Default)]
pub struct Plan {
    pub outcome: Outcome,
    /// Result keys registered for the task besides `changed`/`failed` (`dest`, `stat`, ...).
    pub result: Map<String, Value>,
    /// Facts to set on the host (`set_fact`, `pg_facts`).
    pub facts: Map<String, Value>,
}

impl Plan {
    /// Nothing to change.
    pub fn ok() -> Self {
        Plan::default()
    }

    /// The task does not apply.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Plan {
            outcome: Outcome::Skipped(reason.into()),
            ..Plan::default()
        }
    }

    /// These file ops with their diff; no ops is [`Outcome::Matched`].
    pub fn ops(ops: Vec<Op>, diff: Option<Diff>) -> Self {
        Plan::steps(ops.into_iter().map(Step::Op).collect(), diff)
    }

    /// One deferred action.
    pub fn action(a: impl Action + 'static) -> Self {
        Plan::steps(vec![Step::Action(Box::new(a))], None)
    }

    /// These steps with their diff; no steps is [`Outcome::Matched`].
    pub fn steps(steps: Vec<Step>, diff: Option<Diff>) -> Self {
        let outcome = if steps.is_empty() {
            Outcome::Matched
        } else {
            Outcome::Change { steps, diff }
        };
        Plan {
            outcome,
            ..Plan::default()
        }
    }

    /// Register `key` with the result.
    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.insert(key.to_string(), v.into());
        self
    }

    /// Replace the result keys.
    pub fn with_result(mut self, result: Map<String, Value>) -> Self {
        self.result = result;
        self
    }

    /// The diff to show, when there are changes.
    pub fn diff_mut(&mut self) -> Option<&mut Diff> {
        match &mut self.outcome {
            Outcome::Change { diff, .. } => diff.as_mut(),
            _ => None,
        }
    }

    /// Whether the plan changes something.
    pub fn changes(&self) -> bool {
        matches!(&self.outcome, Outcome::Change { steps, .. } if !steps.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ops_is_matched() {
        let p = Plan::ops(Vec::new(), None);
        assert!(matches!(p.outcome, Outcome::Matched));
        assert!(!p.changes());
        let p = Plan::ops(
            vec![Op::Remove {
                path: "/tmp/x".into(),
            }],
            None,
        );
        assert!(p.changes());
    }
}
