//! Loops on one host: the list rendered once, then each item run with its own variables
//! (`loop_var`, `index_var`, `ansible_loop`) and `when`, and a label as shown (never key
//! material, nothing of the item for a `no_log` task).
use serde_json::{json, Map, Value};
use tera::Context;

use super::host_task::HostTask;
use super::results::{finish_loop, ItemRun, Outcome};
use super::Runner;
use crate::playbook::Task;
use crate::report::{diff, secret, Status};

impl Runner<'_> {
    /// Run the loop `items` of a task on one host (`vars` and `ctx`: the task's variables).
    /// Err: the list itself could not be had.
    pub(super) async fn run_loop(
        &self,
        ht: &HostTask<'_>,
        items: &Value,
        vars: &Map<String, Value>,
        ctx: &Context,
    ) -> Result<Outcome, String> {
        let task = ht.task;
        let list = match self.templar.render_value(items, ctx) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return Err(format!(
                    "Invalid data passed to 'loop', it requires a list, got this instead: {other}"
                ))
            }
            Err(e) => return Err(format!("loop: {e}")),
        };
        let mut runs = Vec::new();
        let mut labels = Vec::new();
        for (i, item) in list.iter().enumerate() {
            if i > 0 && self.interrupted() {
                runs.push(ItemRun::failed(
                    "interrupted: the remaining items were not run",
                ));
                labels.push("(interrupted)".to_string());
                break;
            }
            let ictx = match Context::from_value(Value::Object(item_vars(task, vars, &list, i))) {
                Ok(c) => c,
                Err(e) => {
                    runs.push(ItemRun::failed(e.to_string()));
                    labels.push(shown_label(task, item, label_of(item)));
                    continue;
                }
            };
            let label = match &task.loop_label {
                Some(l) => self
                    .templar
                    .render_str(l, &ictx)
                    .unwrap_or_else(|_| label_of(item)),
                None => label_of(item),
            };
            labels.push(shown_label(task, item, label));
            let mut run = match self.eval_all(&task.when, &ictx) {
                Ok(true) => self.run_item(ht, ictx).await,
                Ok(false) => ItemRun::condition_false(),
                Err(e) => ItemRun::failed(e),
            };
            run.result.insert(task.loop_var.clone(), item.clone());
            let stop = run.status == Status::Unreachable;
            runs.push(run);
            if stop {
                break;
            }
        }
        Ok(finish_loop(task, ht.host, runs, labels))
    }
}

/// The variables of item `i` of `list`: the task's, the loop variable, the index variable and
/// `ansible_loop`.
pub(super) fn item_vars(
    task: &Task,
    vars: &Map<String, Value>,
    list: &[Value],
    i: usize,
) -> Map<String, Value> {
    let mut ivars = vars.clone();
    ivars.insert(task.loop_var.clone(), list[i].clone());
    if let Some(iv) = &task.index_var {
        ivars.insert(iv.clone(), json!(i));
    }
    ivars.insert("ansible_loop_var".into(), json!(task.loop_var));
    ivars.insert(
        "ansible_loop".into(),
        json!({"index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == list.len(), "length": list.len()}),
    );
    ivars
}

fn label_of(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The label printed for a loop item: nothing of the item for a `no_log` task, and never key
/// material (a default label is the item itself; a custom one may quote it).
fn shown_label(task: &Task, item: &Value, label: String) -> String {
    let from_item = task.loop_label.is_none() && secret::value_is_secret(item);
    if task.no_log || from_item || secret::is_secret_text(&label) {
        diff::REDACTED.to_string()
    } else {
        label
    }
}
