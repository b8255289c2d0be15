//! Evaluation of an expression tree against an [`Env`].
//!
//! Values read from the tree stay **references** (a side and a path) until an operation
//! needs the value itself, so `data.owner == auth.sub` loads `…/owner`, not the whole
//! record, and `root('company:info/' + $company + '/admins/' + auth.sub)` loads one key.
//!
//! An evaluation ends in a value or a [`Stop`]: an error, or the paths it needs loaded.
//! Strict operators evaluate both operands so that one round collects every missing path;
//! an error in either is final. `&&` and `||` are commutative in the way CEL's are: when
//! one side cannot be evaluated (error or missing data), the other side may still decide
//! (`x || true` is `true`); otherwise the stop is reported, missing data first.

use kora_core::path::{validate_segment, MAX_PATH_DEPTH};
use serde_json::{Map, Value};

use super::functions;
use super::ops;
use super::parser::{Kind, Node, Var};
use super::Stop;
use crate::limits::{MAX_EVAL_STEPS, MAX_READS_PER_EVALUATION};
use crate::pattern::Captures;
use crate::world::{Side, World};

/// Everything an expression can see.
pub(crate) struct Env<'a> {
    pub world: &'a World<'a>,
    pub auth: &'a Value,
    pub now: i64,
    pub captures: &'a Captures,
    /// The path of the node the rule is about (what `data` and `newData` refer to).
    pub node: &'a [String],
    /// The tree `data` and `root()` read.
    pub data: Side,
    /// The tree `newData` and `newRoot()` read.
    pub new_data: Side,
}

/// An intermediate value: a JSON value, or a reference into one of the trees.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Json(Value),
    Ref(Side, Vec<String>),
}

/// Evaluates `node` fully (references resolved).
pub(crate) fn evaluate(node: &Node, env: &Env) -> Result<Value, Stop> {
    let mut evaluator = Evaluator {
        env,
        steps: 0,
        reads: 0,
    };
    evaluator.eval_value(node)
}

pub(crate) struct Evaluator<'a, 'e> {
    pub(crate) env: &'a Env<'e>,
    steps: usize,
    reads: usize,
}

impl Evaluator<'_, '_> {
    fn step(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > MAX_EVAL_STEPS {
            return Err(Stop::Error(format!(
                "evaluation took more than {MAX_EVAL_STEPS} steps"
            )));
        }
        Ok(())
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Val, Stop> {
        self.step()?;
        let value = match &node.kind {
            Kind::Literal(value) => value.clone(),
            Kind::Var(var) => return Ok(self.var(*var)),
            Kind::Capture(name) => {
                Value::String(self.env.captures.get(name).cloned().unwrap_or_default())
            }
            Kind::List(items) => Value::Array(self.values(items)?),
            Kind::Map(entries) => self.map(entries)?,
            Kind::Member(base, name) => return Ok(member(self.eval(base)?, name)),
            Kind::Index(base, index) => return self.index(base, index),
            Kind::Not(operand) => Value::Bool(!self.eval_bool(operand)?),
            Kind::Neg(operand) => ops::negate(&self.eval_value(operand)?).map_err(Stop::Error)?,
            Kind::Binary(op, a, b) => {
                let (a, b) = self.pair(a, b)?;
                ops::binary(*op, &a, &b).map_err(Stop::Error)?
            }
            Kind::And(a, b) => Value::Bool(self.logic(a, b, false)?),
            Kind::Or(a, b) => Value::Bool(self.logic(a, b, true)?),
            Kind::Cond(condition, then, otherwise) => {
                let branch = if self.eval_bool(condition)? {
                    then
                } else {
                    otherwise
                };
                return self.eval(branch);
            }
            Kind::Call(func, args) => return functions::call(self, *func, args),
            Kind::Matches(text, regex) => match self.eval_value(text)? {
                Value::String(text) => Value::Bool(regex.is_match(&text)),
                other => return Err(not_a("string", "matches", &other)),
            },
        };
        Ok(Val::Json(value))
    }

    fn var(&self, var: Var) -> Val {
        match var {
            Var::Auth => Val::Json(self.env.auth.clone()),
            Var::Now => Val::Json(Value::from(self.env.now)),
            Var::Data => Val::Ref(self.env.data, self.env.node.to_vec()),
            Var::NewData => Val::Ref(self.env.new_data, self.env.node.to_vec()),
        }
    }

    /// Evaluates and resolves a reference into its value (`null` when absent).
    pub(crate) fn eval_value(&mut self, node: &Node) -> Result<Value, Stop> {
        let val = self.eval(node)?;
        self.resolve(val)
    }

    pub(crate) fn resolve(&mut self, val: Val) -> Result<Value, Stop> {
        match val {
            Val::Json(value) => Ok(value),
            Val::Ref(side, path) => {
                self.reads += 1;
                if self.reads > MAX_READS_PER_EVALUATION {
                    return Err(Stop::Error(format!(
                        "evaluation read the tree more than {MAX_READS_PER_EVALUATION} times"
                    )));
                }
                Ok(self.env.world.value(side, &path)?.unwrap_or(Value::Null))
            }
        }
    }

    fn eval_bool(&mut self, node: &Node) -> Result<bool, Stop> {
        match self.eval_value(node)? {
            Value::Bool(b) => Ok(b),
            other => Err(Stop::Error(format!(
                "expected a bool, found {}",
                ops::type_name(&other)
            ))),
        }
    }

    /// Both operands, evaluated even when the first stops, to collect missing data.
    fn pair(&mut self, a: &Node, b: &Node) -> Result<(Value, Value), Stop> {
        let a = self.eval_value(a);
        if let Err(Stop::Error(_)) = a {
            return Err(a.err().unwrap_or_else(|| Stop::Error(String::new())));
        }
        let b = self.eval_value(b);
        match (a, b) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            (Err(stop), Ok(_)) | (Ok(_), Err(stop)) => Err(stop),
            (Err(a), Err(b)) => Err(a.strict(b)),
        }
    }

    /// Every item evaluated, stops combined.
    pub(crate) fn values<'n>(
        &mut self,
        nodes: impl IntoIterator<Item = &'n Node>,
    ) -> Result<Vec<Value>, Stop> {
        let mut out = Vec::new();
        let mut stop: Option<Stop> = None;
        for node in nodes {
            match self.eval_value(node) {
                Ok(value) => out.push(value),
                Err(Stop::Error(message)) => return Err(Stop::Error(message)),
                Err(next) => stop = Some(stop.map_or(next.clone(), |s| s.strict(next))),
            }
        }
        stop.map_or(Ok(out), Err)
    }

    fn map(&mut self, entries: &[(String, Node)]) -> Result<Value, Stop> {
        let values = self.values(entries.iter().map(|(_, n)| n))?;
        let map: Map<String, Value> = entries.iter().map(|(k, _)| k.clone()).zip(values).collect();
        Ok(Value::Object(map))
    }

    fn index(&mut self, base: &Node, index: &Node) -> Result<Val, Stop> {
        let base = self.eval(base);
        let index = self.eval_value(index);
        let (base, index) = match (base, index) {
            (Ok(base), Ok(index)) => (base, index),
            (Err(stop), Ok(_)) | (Ok(_), Err(stop)) => return Err(stop),
            (Err(a), Err(b)) => return Err(a.strict(b)),
        };
        match index {
            Value::String(key) => Ok(member(base, &key)),
            Value::Number(n) => {
                let list = self.resolve(base)?;
                let item = n
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| list.as_array().and_then(|items| items.get(i)));
                Ok(Val::Json(item.cloned().unwrap_or(Value::Null)))
            }
            _ => Ok(Val::Json(Value::Null)),
        }
    }

    /// `a && b` (`or` false) or `a || b` (`or` true).
    fn logic(&mut self, a: &Node, b: &Node, or: bool) -> Result<bool, Stop> {
        let decided = or;
        match self.eval_bool(a) {
            Ok(value) if value == decided => Ok(decided),
            Ok(_) => self.eval_bool(b),
            Err(first) => match self.eval_bool(b) {
                Ok(value) if value == decided => Ok(decided),
                Ok(_) => Err(first),
                Err(second) => Err(first.either(second)),
            },
        }
    }
}

/// `base.name`: a deeper reference, the member of a map, or `null`.
fn member(base: Val, name: &str) -> Val {
    match base {
        Val::Ref(side, mut path) => {
            if validate_segment(name, path.len()).is_err() || path.len() >= MAX_PATH_DEPTH {
                return Val::Json(Value::Null);
            }
            path.push(name.to_string());
            Val::Ref(side, path)
        }
        Val::Json(Value::Object(mut map)) => Val::Json(map.remove(name).unwrap_or(Value::Null)),
        Val::Json(_) => Val::Json(Value::Null),
    }
}

/// The error for an argument of the wrong type.
pub(crate) fn not_a(expected: &str, function: &str, found: &Value) -> Stop {
    Stop::Error(format!(
        "`{function}` needs a {expected}, found {}",
        ops::type_name(found)
    ))
}
