//! Type checking at load, as Firebase does when rules are deployed.
//!
//! Each expression gets a static type. Most are exact (`data.exists()` is a boolean); two
//! are "fuzzy", known only at run time: `any` (whatever is under `auth`) and `value` (what
//! `val()` returns, a primitive). A fuzzy operand is accepted wherever its run-time value
//! could fit and is checked again when evaluated; an exact operand of the wrong type is an
//! error now. Some places accept no fuzziness at all: both sides of `&&` and `||`, the
//! operand of `!`, the condition of `?:`, and the rule itself must be booleans.
//!
//! The rules of this checker follow what Firebase accepts and refuses (targaryen recorded
//! them against the live service; `tests/firebase_fixtures.json`).

use std::fmt;

use super::method::{query_property, Method, Params};
use super::{BinOp, Expr, Kind, Prop, Var};
use crate::error::ExprError;

/// A static type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Num,
    Str,
    Null,
    Regex,
    Snapshot,
    Query,
    /// Known only at run time, could be anything (`auth.…`).
    Any,
    /// Known only at run time, a primitive (`val()`, `query.startAt`).
    Primitive,
    Array,
    Method(Method),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Ty::Bool => "boolean",
            Ty::Num => "number",
            Ty::Str => "string",
            Ty::Null => "null",
            Ty::Regex => "regular expression",
            Ty::Snapshot => "snapshot",
            Ty::Query => "query",
            Ty::Any => "any",
            Ty::Primitive => "primitive",
            Ty::Array => "array",
            Ty::Method(m) => return write!(f, "method {}()", m.name()),
        };
        f.write_str(name)
    }
}

impl Ty {
    fn fuzzy(self) -> bool {
        matches!(self, Ty::Any | Ty::Primitive)
    }

    /// Could a value of this type be one of `allowed` at run time?
    fn may_be(self, allowed: &[Ty]) -> bool {
        self.fuzzy() || allowed.contains(&self)
    }

    fn primitive(self) -> bool {
        matches!(
            self,
            Ty::Bool | Ty::Num | Ty::Str | Ty::Null | Ty::Primitive
        )
    }
}

/// What a rule can name: `newData` only in `.write` and `.validate`, and the `$variables`
/// of its location and the locations above.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub write: bool,
    pub wild: &'a [String],
}

/// Checks a whole rule: it must be a boolean.
pub(crate) fn check_rule(expr: &Expr, scope: &Scope<'_>) -> Result<(), ExprError> {
    match check(expr, scope)? {
        Ty::Bool => Ok(()),
        other => Err(ExprError::new(
            expr.at,
            format!("the rule must evaluate to a boolean, not a {other}"),
        )),
    }
}

fn check(expr: &Expr, scope: &Scope<'_>) -> Result<Ty, ExprError> {
    let fail = |message: String| Err(ExprError::new(expr.at, message));
    match &expr.kind {
        Kind::Null => Ok(Ty::Null),
        Kind::Bool(_) => Ok(Ty::Bool),
        Kind::Num(_) => Ok(Ty::Num),
        Kind::Str(_) => Ok(Ty::Str),
        Kind::Regex(_) => Ok(Ty::Regex),
        Kind::Var(var) => variable(var, scope).or_else(fail),
        Kind::Member(object, prop) => member(object, prop, scope).or_else(fail),
        Kind::Call(callee, args) => call(callee, args, scope).or_else(fail),
        Kind::Array(items) => {
            for item in items {
                check(item, scope)?;
            }
            Ok(Ty::Array)
        }
        Kind::Not(arg) => match check(arg, scope)? {
            Ty::Bool => Ok(Ty::Bool),
            other => fail(format!("`!` needs a boolean, not a {other}")),
        },
        Kind::Neg(arg) => match check(arg, scope)? {
            t if t.may_be(&[Ty::Num]) => Ok(Ty::Num),
            other => fail(format!("unary `-` needs a number, not a {other}")),
        },
        Kind::Binary(op, left, right) => {
            let (left, right) = (check(left, scope)?, check(right, scope)?);
            binary(*op, left, right).or_else(fail)
        }
        Kind::And(left, right) | Kind::Or(left, right) => {
            let op = if matches!(expr.kind, Kind::And(..)) {
                "&&"
            } else {
                "||"
            };
            for (side, operand) in [("left", left), ("right", right)] {
                let ty = check(operand, scope)?;
                if ty != Ty::Bool {
                    return fail(format!(
                        "the {side} operand of `{op}` must be a boolean, not a {ty}"
                    ));
                }
            }
            Ok(Ty::Bool)
        }
        Kind::Cond(test, then, otherwise) => {
            let test = check(test, scope)?;
            if test != Ty::Bool {
                return fail(format!(
                    "the condition of `?:` must be a boolean, not a {test}"
                ));
            }
            let (then, otherwise) = (check(then, scope)?, check(otherwise, scope)?);
            Ok(if then == otherwise {
                then
            } else if then.primitive() && otherwise.primitive() {
                Ty::Primitive
            } else {
                Ty::Any
            })
        }
    }
}

fn variable(var: &Var, scope: &Scope<'_>) -> Result<Ty, String> {
    Ok(match var {
        Var::Auth => Ty::Any,
        Var::Now => Ty::Num,
        Var::Root | Var::Data => Ty::Snapshot,
        Var::Query => Ty::Query,
        Var::NewData if scope.write => Ty::Snapshot,
        Var::NewData => return Err("`newData` is not defined in a .read rule".into()),
        Var::Wild(name) if scope.wild.contains(name) => Ty::Str,
        Var::Wild(name) => return Err(format!("`{name}` is not defined at this location")),
    })
}

/// `object.name` or `object[index]`. Members of a primitive are those of a string: the only
/// primitive with members.
fn member(object: &Expr, prop: &Prop, scope: &Scope<'_>) -> Result<Ty, String> {
    let object = match check(object, scope).map_err(|e| e.message)? {
        Ty::Primitive => Ty::Str,
        other => other,
    };
    if !matches!(object, Ty::Any | Ty::Str | Ty::Snapshot | Ty::Query) {
        return Err(format!("a {object} has no methods or properties"));
    }
    let name = match prop {
        Prop::Name(name) => name.as_str(),
        Prop::Index(index) => {
            check(index, scope).map_err(|e| e.message)?;
            if object == Ty::Any {
                return Ok(Ty::Any);
            }
            // A computed member of a typed object must be a literal name of it.
            match &index.kind {
                Kind::Str(name) => name.as_str(),
                _ => {
                    return Err(format!(
                    "invalid property access on a {object}: only a quoted name is allowed in `[…]`"
                ))
                }
            }
        }
    };
    if object == Ty::Any {
        return Ok(Ty::Any);
    }
    typed_member(object, name)
        .ok_or_else(|| format!("a {object} has no method or property `{name}`"))
}

fn typed_member(object: Ty, name: &str) -> Option<Ty> {
    match object {
        Ty::Snapshot => Method::of_snapshot(name).map(Ty::Method),
        Ty::Str if name == "length" => Some(Ty::Num),
        Ty::Str => Method::of_string(name).map(Ty::Method),
        Ty::Query => query_property(name),
        _ => None,
    }
}

fn call(callee: &Expr, args: &[Expr], scope: &Scope<'_>) -> Result<Ty, String> {
    let arg_types = args
        .iter()
        .map(|arg| check(arg, scope).map_err(|e| e.message))
        .collect::<Result<Vec<_>, _>>()?;
    if !matches!(callee.kind, Kind::Member(..)) {
        return Err("only a method (`x.name(…)`) can be called".into());
    }
    let method = match check(callee, scope).map_err(|e| e.message)? {
        Ty::Method(method) => method,
        // A call on something only known at run time must be a string method.
        t if t.fuzzy() => string_method(callee)?,
        other => return Err(format!("a {other} is not a function")),
    };
    match method.params() {
        Params::Fixed(params) => {
            if params.len() != arg_types.len() {
                return Err(format!(
                    "{}() takes {} argument(s), not {}",
                    method.name(),
                    params.len(),
                    arg_types.len()
                ));
            }
            for (i, (param, arg)) in params.iter().zip(&arg_types).enumerate() {
                if !arg.may_be(&[*param]) {
                    return Err(format!(
                        "argument {} of {}() must be a {param}, not a {arg}",
                        i + 1,
                        method.name()
                    ));
                }
            }
        }
        Params::HasChildren => has_children_args(args, scope)?,
    }
    Ok(method.returns())
}

/// The string method a call on a run-time-typed member names, or an error.
fn string_method(callee: &Expr) -> Result<Method, String> {
    let name = match &callee.kind {
        Kind::Member(_, Prop::Name(name)) => name.as_str(),
        Kind::Member(_, Prop::Index(index)) => match &index.kind {
            Kind::Str(name) => name.as_str(),
            _ => return Err("invalid method call: only a quoted name is allowed in `[…]`".into()),
        },
        _ => return Err("only a method (`x.name(…)`) can be called".into()),
    };
    Method::of_string(name).ok_or_else(|| format!("`{name}` is not a string method"))
}

fn has_children_args(args: &[Expr], scope: &Scope<'_>) -> Result<(), String> {
    match args {
        [] => Ok(()),
        [list] => {
            let Kind::Array(items) = &list.kind else {
                return Err("hasChildren() takes an array of strings like ['a', 'b']".into());
            };
            if items.is_empty() {
                return Err("hasChildren() got an empty array".into());
            }
            for item in items {
                let ty = check(item, scope).map_err(|e| e.message)?;
                if !ty.may_be(&[Ty::Str]) {
                    return Err(format!("hasChildren() got an array with a {ty}"));
                }
            }
            Ok(())
        }
        _ => Err("hasChildren() takes at most one argument: an array of strings".into()),
    }
}

fn binary(op: BinOp, left: Ty, right: Ty) -> Result<Ty, String> {
    let allowed: &[Ty] = match op {
        BinOp::Add => &[Ty::Str, Ty::Num],
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => &[Ty::Num],
        BinOp::Eq | BinOp::Ne => &[Ty::Str, Ty::Num, Ty::Bool, Ty::Null],
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => &[Ty::Str, Ty::Num, Ty::Null],
    };
    for (side, ty) in [("left", left), ("right", right)] {
        if !ty.may_be(allowed) {
            let names: Vec<String> = allowed.iter().map(Ty::to_string).collect();
            return Err(format!(
                "the {side} operand of `{}` must be a {}, not a {ty}",
                op.symbol(),
                names.join(" or ")
            ));
        }
    }
    Ok(match op {
        BinOp::Add if left == Ty::Str || right == Ty::Str => Ty::Str,
        BinOp::Add if left == Ty::Num && right == Ty::Num => Ty::Num,
        BinOp::Add => Ty::Primitive,
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => Ty::Num,
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
            if !left.fuzzy() && !right.fuzzy() && left != right =>
        {
            return Err(format!(
                "`{}` compares a {left} with a {right}: both sides must have the same type",
                op.symbol()
            ))
        }
        _ => Ty::Bool,
    })
}
