//! `set_fact`: set host variables for the rest of the run.
use async_trait::async_trait;

use crate::modules::{Arg, Args, Module, ModuleCtx, ModuleError, Plan};

pub struct SetFact;

#[async_trait]
impl Module for SetFact {
    fn name(&self) -> &'static str {
        "set_fact"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        None
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if args.map.keys().all(|k| k == "cacheable") {
            return Err("set_fact needs at least one variable to set".into());
        }
        for k in args.map.keys() {
            let valid = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("the variable name '{k}' is not valid"));
            }
        }
        Ok(())
    }

    fn facts_from_args(&self, args: &Args) -> Vec<String> {
        args.map
            .keys()
            .filter(|k| *k != "cacheable")
            .cloned()
            .collect()
    }

    async fn plan(&self, _ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let mut plan = Plan::ok();
        for (k, v) in &args.map {
            if k != "cacheable" {
                plan.facts.insert(k.clone(), v.clone());
            }
        }
        plan.result.insert(
            "ansible_facts".into(),
            serde_json::Value::Object(plan.facts.clone()),
        );
        Ok(plan)
    }
}
