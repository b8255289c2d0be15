//! The expression language of rules: a small, fully specified language of its own
//! (docs/rules.md explains why not CEL).
//!
//! - **Variables**: `auth` (the caller's claims, or `null`), `data` (the value at the rule's
//!   path before the write), `newData` (after it), `now` (milliseconds since the epoch), and
//!   the pattern's captures written `$uid`.
//! - **Operators**: `== != < <= > >= && || ! + - * / % ?: in`, member access `a.b` and
//!   `a[b]`, literals (`null`, booleans, numbers, strings, lists, maps).
//! - **Functions**: see `functions.rs` — `size`, `is_string`…, `matches`,
//!   `startsWith`, `endsWith`, `contains`, `root`, `newRoot`, …
//! - **Nulls and errors**: a missing member is `null`, never an error. Operands of the wrong
//!   type are errors; a rule whose expression errs counts as false.
//!
//! Parsing never panics and builds trees of bounded depth; evaluation is bounded in steps
//! and in reads of the tree (see `crate::limits`). Evaluation never blocks: reading a value
//! that is not loaded stops with the paths to load (see `crate::lookup`).
//!
//! Not here: which expression runs when — that is the rules' business (`crate::rules`).

mod eval;
mod functions;
mod lexer;
mod ops;
pub(crate) mod parser;

use kora_core::{Mutation, Path, Value};

pub(crate) use eval::{evaluate, Env};
pub(crate) use ops::type_name;

use crate::error::NeedsData;
use crate::lookup::{minimal, Lookup};
use crate::pattern::Captures;
use crate::world::{Side, World};

/// An expression that does not parse: what is wrong, and where (a byte offset into it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Why an evaluation did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The expression failed (wrong types, a limit, …); final.
    Error(String),
    /// The expression needs these paths loaded.
    Needs(Vec<Path>),
}

impl Stop {
    /// Both sides were needed: an error is final, otherwise every missing path.
    pub(crate) fn strict(self, other: Stop) -> Stop {
        match (self, other) {
            (Stop::Error(e), _) | (_, Stop::Error(e)) => Stop::Error(e),
            (Stop::Needs(mut a), Stop::Needs(b)) => {
                a.extend(b);
                Stop::Needs(a)
            }
        }
    }

    /// Either side could decide: missing data first (loading it may decide), else the
    /// first error.
    pub(crate) fn either(self, other: Stop) -> Stop {
        match (self, other) {
            (Stop::Needs(mut a), Stop::Needs(b)) => {
                a.extend(b);
                Stop::Needs(a)
            }
            (Stop::Needs(a), Stop::Error(_)) | (Stop::Error(_), Stop::Needs(a)) => Stop::Needs(a),
            (Stop::Error(e), Stop::Error(_)) => Stop::Error(e),
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    root: parser::Node,
    reads_tree: bool,
}

/// What a standalone evaluation sees (see [`Expression::evaluate`]).
pub struct Bindings<'a> {
    /// The caller's claims; `None` is anonymous (`auth == null`).
    pub auth: Option<&'a Value>,
    /// Milliseconds since the epoch.
    pub now: i64,
    /// The path `data` and `newData` refer to.
    pub path: &'a Path,
    pub captures: &'a Captures,
    /// The write: `newData` is `data` with it applied.
    pub mutation: &'a Mutation,
}

/// A standalone evaluation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    NeedsData(NeedsData),
}

impl Expression {
    /// Parses `source`; `captures` are the capture names `$name` may use.
    pub fn parse(source: &str, captures: &[&str]) -> Result<Expression, SyntaxError> {
        let root = parser::parse(source, captures)?;
        Ok(Expression {
            source: source.to_string(),
            reads_tree: parser::reads_tree(&root),
            root,
        })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when it reads the tree (`data`, `newData`, `root`, `newRoot`): its value may
    /// change when the data does.
    pub fn reads_tree(&self) -> bool {
        self.reads_tree
    }

    pub(crate) fn eval(&self, env: &Env) -> Result<Value, Stop> {
        evaluate(&self.root, env)
    }

    /// Evaluates on its own — for tools and tests; rules evaluate through decisions.
    pub fn evaluate(&self, bindings: &Bindings, lookup: &dyn Lookup) -> Result<Value, EvalError> {
        let world = World::new(lookup, bindings.mutation);
        let null = Value::Null;
        let env = Env {
            world: &world,
            auth: bindings.auth.unwrap_or(&null),
            now: bindings.now,
            captures: bindings.captures,
            node: bindings.path.segments(),
            data: Side::Before,
            new_data: Side::After,
        };
        self.eval(&env).map_err(|stop| match stop {
            Stop::Error(message) => EvalError::Failed(message),
            Stop::Needs(paths) => EvalError::NeedsData(NeedsData {
                paths: minimal(paths),
            }),
        })
    }
}

#[cfg(test)]
mod tests;
