//! What every decision shares: the caller, the verdict of a boolean rule, the paths still
//! to load, the budget of nodes, and the walk over existing data beneath a path.
//!
//! A decision collects missing data instead of stopping at the first gap, so the caller
//! loads everything one round needs at once. A refusal is final only when nothing was
//! missing before it; otherwise the decision asks for the data first, so that the refusal
//! reported is the one a complete evaluation would report first.

use kora_core::{Path, Value};

use crate::error::{CheckError, Code, Denial, NeedsData};
use crate::expr::{type_name, Env, Stop};
use crate::limits::MAX_RULE_NODES;
use crate::lookup::minimal;
use crate::pattern::Captures;
use crate::rules::{Clause, Has, Match, Rules};
use crate::world::{to_path, Side, World};

/// Who asks, and when.
pub(crate) struct Caller {
    pub auth: Value,
    pub now: i64,
}

impl Caller {
    pub(crate) fn new(auth: Option<&Value>, now: i64) -> Self {
        Caller {
            auth: auth.cloned().unwrap_or(Value::Null),
            now,
        }
    }

    /// The environment of a rule at `node`.
    pub(crate) fn env<'a>(
        &'a self,
        world: &'a World<'a>,
        captures: &'a Captures,
        node: &'a [String],
        data: Side,
        new_data: Side,
    ) -> Env<'a> {
        Env {
            world,
            auth: &self.auth,
            now: self.now,
            captures,
            node,
            data,
            new_data,
        }
    }
}

/// The outcome of a boolean rule (`read`, `write`, `validate`, `when`).
pub(crate) enum Verdict {
    Allow,
    /// The rule is `false`.
    False,
    /// The rule gave another type or failed; it counts as false.
    Invalid(String),
    Needs(Vec<Path>),
}

impl Verdict {
    /// Why a `False` or `Invalid` verdict denies.
    pub(crate) fn reason(self) -> String {
        match self {
            Verdict::Invalid(reason) => reason,
            _ => "is false".into(),
        }
    }
}

/// Evaluates a boolean rule: anything but `true` — `false`, another type, an error — denies.
pub(crate) fn verdict(clause: &Clause, env: &Env) -> Verdict {
    match clause.eval(env) {
        Ok(Value::Bool(true)) => Verdict::Allow,
        Ok(Value::Bool(false)) => Verdict::False,
        Ok(other) => Verdict::Invalid(format!("gave a {}, not a bool", type_name(&other))),
        Err(Stop::Error(message)) => Verdict::Invalid(format!("failed: {message}")),
        Err(Stop::Needs(paths)) => Verdict::Needs(paths),
    }
}

/// Missing paths and the node budget of one decision.
#[derive(Default)]
pub(crate) struct Progress {
    needs: Vec<Path>,
    nodes: usize,
}

impl Progress {
    pub(crate) fn need(&mut self, paths: Vec<Path>) {
        self.needs.extend(paths);
    }

    /// Records a stop: missing data is collected, an error is returned.
    pub(crate) fn stop(&mut self, stop: Stop) -> Option<String> {
        match stop {
            Stop::Needs(paths) => {
                self.need(paths);
                None
            }
            Stop::Error(message) => Some(message),
        }
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.needs.is_empty()
    }

    /// A refusal, final only when nothing is missing so far.
    pub(crate) fn refuse(&mut self, denial: Denial) -> Result<(), CheckError> {
        if self.is_complete() {
            Err(denial.into())
        } else {
            Ok(())
        }
    }

    /// Counts one node against [`MAX_RULE_NODES`].
    pub(crate) fn count(&mut self, path: &[String]) -> Result<(), CheckError> {
        self.nodes += 1;
        if self.nodes <= MAX_RULE_NODES {
            return Ok(());
        }
        let denial = Denial {
            code: Code::TooLarge,
            path: to_path(path).unwrap_or_default(),
            rule: None,
            reason: format!(
                "the request reaches more than {MAX_RULE_NODES} nodes governed by rules"
            ),
        };
        Err(denial.into())
    }

    /// `Ok(())` when complete, else the data to load.
    pub(crate) fn finish(self) -> Result<(), CheckError> {
        if self.needs.is_empty() {
            Ok(())
        } else {
            Err(CheckError::NeedsData(NeedsData {
                paths: minimal(self.needs),
            }))
        }
    }
}

/// A denial by a rule's clause at `node`.
pub(crate) fn denial(
    code: Code,
    node: &[String],
    m: &Match,
    clause: &Clause,
    reason: String,
) -> Denial {
    Denial {
        code,
        path: to_path(node).unwrap_or_default(),
        rule: Some(clause.rule_ref(&m.rule.pattern)),
        reason,
    }
}

/// Existing nodes strictly beneath `root` (on the tree before the write) that a rule with
/// `what` matches, in tree order. Missing data is collected in `progress`.
pub(crate) fn existing_beneath<'r>(
    rules: &'r Rules,
    world: &World,
    root: &[String],
    what: Has,
    progress: &mut Progress,
) -> Result<Vec<(Vec<String>, Match<'r>)>, CheckError> {
    let mut out = Vec::new();
    if !rules.may_have_beneath(root, what) {
        return Ok(out);
    }
    let value = match world.value(Side::Before, root) {
        Ok(Some(value)) => value,
        Ok(None) => return Ok(out),
        Err(stop) => {
            progress.stop(stop);
            return Ok(out);
        }
    };
    let mut stack: Vec<(Vec<String>, &Value)> = vec![(root.to_vec(), &value)];
    while let Some((path, node)) = stack.pop() {
        let Some(children) = node.as_object() else {
            continue;
        };
        for (key, child) in children.iter().rev() {
            let mut child_path = path.clone();
            child_path.push(key.clone());
            progress.count(&child_path)?;
            if rules.may_have_beneath(&child_path, what) {
                stack.push((child_path.clone(), child));
            }
            if let Some(m) = rules.most_specific(&child_path, what) {
                out.push((child_path, m));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_waits_for_missing_data() {
        let denial = Denial {
            code: Code::PermissionDenied,
            path: Path::root(),
            rule: None,
            reason: "no".into(),
        };
        let mut progress = Progress::default();
        assert!(progress.refuse(denial.clone()).is_err());
        progress.need(vec![Path::parse("x").unwrap()]);
        assert!(progress.refuse(denial).is_ok());
        assert!(matches!(progress.finish(), Err(CheckError::NeedsData(_))));
    }

    #[test]
    fn the_node_budget_is_enforced() {
        let mut progress = Progress::default();
        for _ in 0..MAX_RULE_NODES {
            assert!(progress.count(&[]).is_ok());
        }
        let error = progress.count(&["k".to_string()]).unwrap_err();
        assert_eq!(error.denial().map(|d| d.code), Some(Code::TooLarge));
    }

    #[test]
    fn stops_are_split_into_needs_and_errors() {
        let mut progress = Progress::default();
        assert_eq!(
            progress.stop(Stop::Error("bad".into())),
            Some("bad".to_string())
        );
        assert!(progress.is_complete());
        assert_eq!(progress.stop(Stop::Needs(vec![Path::root()])), None);
        assert!(!progress.is_complete());
    }
}
