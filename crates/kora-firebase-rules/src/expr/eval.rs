//! Evaluating a checked expression against one request.
//!
//! Semantics are JavaScript's as Firebase restricts them: `==` is strict, `+` adds numbers
//! or concatenates when either side is a string, comparisons want two numbers, two strings
//! or two nulls, `x / 0` is `NaN`. A member of `null` is `null`; a missing property is
//! `null`. Everything else that does not fit (a method of `null`, `1 + null`, `'a' < 1`…) is
//! an error, which propagates through the whole expression: the rule is false, even under
//! `||` (`(error) || true` is false in Firebase). `&&`, `||` and `?:` only evaluate the side
//! they need.

use serde_json::Value;

use super::method::Method;
use super::value::{js_char_at, js_compare, js_length, js_number, Snap, Val};
use super::{BinOp, Expr, Kind, Prop, Var};
use crate::data::{normalize, Data};
use crate::limits::MAX_STRING_BYTES;
use crate::query::{OrderBy, QueryParams};

/// What one evaluation sees.
pub(crate) struct Env<'a> {
    pub auth: Option<&'a Value>,
    pub now: i64,
    pub before: &'a dyn Data,
    /// The tree after the write; `None` for reads.
    pub after: Option<&'a dyn Data>,
    /// The location of the rule (what `data` and `newData` point at).
    pub path: &'a [String],
    /// The `$variables` bound on the way to that location.
    pub wild: &'a [(String, String)],
    /// The read's parameters; `None` for writes.
    pub query: Option<&'a QueryParams>,
}

type Result<T> = std::result::Result<T, String>;

/// Evaluates a rule: `Ok(true)` grants, `Ok(false)` does not, `Err` says why the rule erred
/// (which does not grant either).
pub(crate) fn evaluate(expr: &Expr, env: &Env<'_>) -> Result<bool> {
    match eval(expr, env)? {
        Val::Bool(b) => Ok(b),
        other => Err(format!(
            "the rule evaluated to a {}, not a boolean",
            other.type_name()
        )),
    }
}

fn eval<'e>(expr: &'e Expr, env: &Env<'_>) -> Result<Val<'e>> {
    match &expr.kind {
        Kind::Null => Ok(Val::Null),
        Kind::Bool(b) => Ok(Val::Bool(*b)),
        Kind::Num(n) => Ok(Val::Num(*n)),
        Kind::Str(s) => Ok(Val::Str(s.clone())),
        Kind::Regex(r) => Ok(Val::Regex(r)),
        Kind::Var(var) => variable(var, env),
        Kind::Member(object, prop) => {
            let object = eval(object, env)?;
            let key = match prop {
                Prop::Name(name) => name.clone(),
                Prop::Index(index) => property_key(eval(index, env)?)?,
            };
            Ok(member(object, &key, env))
        }
        Kind::Call(callee, args) => {
            let args = args
                .iter()
                .map(|arg| eval(arg, env))
                .collect::<Result<Vec<_>>>()?;
            match eval(callee, env)? {
                Val::Method(receiver, method) => call(*receiver, method, args, env),
                other => Err(format!("a {} is not a function", other.type_name())),
            }
        }
        Kind::Array(items) => Ok(Val::Array(
            items
                .iter()
                .map(|item| eval(item, env))
                .collect::<Result<_>>()?,
        )),
        Kind::Not(arg) => Ok(Val::Bool(!boolean(eval(arg, env)?, "!")?)),
        Kind::Neg(arg) => match eval(arg, env)? {
            Val::Num(n) => Ok(Val::Num(-n)),
            other => Err(format!(
                "unary `-` needs a number, not a {}",
                other.type_name()
            )),
        },
        Kind::Binary(op, left, right) => binary(*op, eval(left, env)?, eval(right, env)?),
        Kind::And(left, right) => Ok(Val::Bool(
            boolean(eval(left, env)?, "&&")? && boolean(eval(right, env)?, "&&")?,
        )),
        Kind::Or(left, right) => Ok(Val::Bool(
            boolean(eval(left, env)?, "||")? || boolean(eval(right, env)?, "||")?,
        )),
        Kind::Cond(test, then, otherwise) => {
            if boolean(eval(test, env)?, "?:")? {
                eval(then, env)
            } else {
                eval(otherwise, env)
            }
        }
    }
}

fn boolean(value: Val<'_>, op: &str) -> Result<bool> {
    match value {
        Val::Bool(b) => Ok(b),
        other => Err(format!(
            "`{op}` needs a boolean, not a {}",
            other.type_name()
        )),
    }
}

fn variable<'e>(var: &Var, env: &Env<'_>) -> Result<Val<'e>> {
    let snapshot = |after: bool, path: &[String]| {
        Val::Snapshot(Snap {
            after,
            path: path.to_vec(),
        })
    };
    Ok(match var {
        Var::Auth => env.auth.map_or(Val::Null, Val::from_json),
        // Milliseconds fit a double exactly for the next 285 000 years.
        #[allow(clippy::cast_precision_loss)]
        Var::Now => Val::Num(env.now as f64),
        Var::Root => snapshot(false, &[]),
        Var::Data => snapshot(false, env.path),
        Var::NewData if env.after.is_some() => snapshot(true, env.path),
        Var::NewData => return Err("`newData` is only defined when writing".into()),
        Var::Query if env.query.is_some() => Val::Query,
        Var::Query => return Err("`query` is only defined when reading".into()),
        Var::Wild(name) => env
            .wild
            .iter()
            .rev()
            .find(|(bound, _)| bound == name)
            .map(|(_, key)| Val::Str(key.clone()))
            .ok_or_else(|| format!("`{name}` is not bound"))?,
    })
}

/// JavaScript's conversion of a computed member's key to a property name.
fn property_key(key: Val<'_>) -> Result<String> {
    match key {
        Val::Str(s) => Ok(s),
        Val::Num(n) => Ok(js_number(n)),
        Val::Bool(b) => Ok(b.to_string()),
        Val::Null => Ok("null".into()),
        other => Err(format!("a {} cannot name a property", other.type_name())),
    }
}

/// `object.key`: a method waiting for its call, a property, or `null` when there is none.
fn member<'e>(object: Val<'e>, key: &str, env: &Env<'_>) -> Val<'e> {
    match object {
        Val::Str(s) => {
            if key == "length" {
                #[allow(clippy::cast_precision_loss)]
                return Val::Num(js_length(&s) as f64);
            }
            if let Some(method) = Method::of_string(key) {
                return Val::Method(Box::new(Val::Str(s)), method);
            }
            js_char_at(&s, key).map_or(Val::Null, Val::Str)
        }
        Val::Object(json) => json.get(key).map_or(Val::Null, Val::from_json),
        Val::List(json) => {
            let Value::Array(items) = json.as_ref() else {
                return Val::Null;
            };
            if key == "length" {
                #[allow(clippy::cast_precision_loss)]
                return Val::Num(items.len() as f64);
            }
            key.parse::<usize>()
                .ok()
                .filter(|i| i.to_string() == key)
                .and_then(|i| items.get(i))
                .map_or(Val::Null, Val::from_json)
        }
        Val::Snapshot(snap) => match Method::of_snapshot(key) {
            Some(method) => Val::Method(Box::new(Val::Snapshot(snap)), method),
            None => Val::Null,
        },
        Val::Query => env
            .query
            .map_or(Val::Null, |query| query_property(query, key)),
        _ => Val::Null,
    }
}

fn query_property(query: &QueryParams, key: &str) -> Val<'static> {
    let bound = |value: &Option<Value>| value.as_ref().map_or(Val::Null, Val::from_json);
    #[allow(clippy::cast_precision_loss)]
    let limit = |value: Option<u64>| value.map_or(Val::Null, |n| Val::Num(n as f64));
    match key {
        "orderByKey" => Val::Bool(query.order_by == OrderBy::Key),
        "orderByValue" => Val::Bool(query.order_by == OrderBy::Value),
        "orderByPriority" => Val::Bool(query.order_by == OrderBy::Priority),
        "orderByChild" => match &query.order_by {
            OrderBy::Child(child) => Val::Str(child.clone()),
            _ => Val::Null,
        },
        "startAt" => bound(&query.start_at),
        "endAt" => bound(&query.end_at),
        "equalTo" => bound(&query.equal_to),
        "limitToFirst" => limit(query.limit_to_first),
        "limitToLast" => limit(query.limit_to_last),
        _ => Val::Null,
    }
}

fn call<'e>(
    receiver: Val<'e>,
    method: Method,
    args: Vec<Val<'e>>,
    env: &Env<'_>,
) -> Result<Val<'e>> {
    match receiver {
        Val::Snapshot(snap) => snapshot_method(&snap, method, args, env),
        Val::Str(s) => string_method(&s, method, args),
        other => Err(format!(
            "{}() called on a {}",
            method.name(),
            other.type_name()
        )),
    }
}

/// The one string argument a method takes.
fn string_arg<'v>(method: Method, args: &'v [Val<'_>], index: usize) -> Result<&'v str> {
    match args.get(index) {
        Some(Val::Str(s)) => Ok(s),
        Some(other) => Err(format!(
            "{}() needs a string argument, not a {}",
            method.name(),
            other.type_name()
        )),
        None => Err(format!("{}() is missing an argument", method.name())),
    }
}

fn snapshot_method<'e>(
    snap: &Snap,
    method: Method,
    args: Vec<Val<'e>>,
    env: &Env<'_>,
) -> Result<Val<'e>> {
    Ok(match method {
        Method::Val => read(snap, env).map_or(Val::Null, |v| Val::from_json(&v)),
        Method::Child => Val::Snapshot(child(snap, string_arg(method, &args, 0)?)),
        Method::Parent => {
            let Some((_, parent)) = snap.path.split_last() else {
                return Err("parent() of the root: it has none".into());
            };
            Val::Snapshot(Snap {
                after: snap.after,
                path: parent.to_vec(),
            })
        }
        Method::HasChild => Val::Bool(has_child(snap, string_arg(method, &args, 0)?, env)),
        Method::HasChildren => match args.first() {
            None => Val::Bool(matches!(read(snap, env), Some(Value::Object(_)))),
            Some(Val::Array(names)) => Val::Bool(has_children(snap, names, env)?),
            Some(other) => {
                return Err(format!(
                    "hasChildren() needs an array, not a {}",
                    other.type_name()
                ))
            }
        },
        Method::Exists => Val::Bool(exists(snap, env)),
        // Priorities are not supported: every location has none.
        Method::GetPriority => Val::Null,
        Method::IsNumber => Val::Bool(matches!(read(snap, env), Some(Value::Number(_)))),
        Method::IsString => Val::Bool(matches!(read(snap, env), Some(Value::String(_)))),
        Method::IsBoolean => Val::Bool(matches!(read(snap, env), Some(Value::Bool(_)))),
        other => return Err(format!("{}() is not a snapshot method", other.name())),
    })
}

/// Every name is a child, checked in order: a non-string fails only when reached.
fn has_children(snap: &Snap, names: &[Val<'_>], env: &Env<'_>) -> Result<bool> {
    for name in names {
        match name {
            Val::Str(name) if has_child(snap, name, env) => {}
            Val::Str(_) => return Ok(false),
            other => {
                return Err(format!(
                    "hasChildren() needs strings, not a {}",
                    other.type_name()
                ))
            }
        }
    }
    Ok(true)
}

fn has_child(snap: &Snap, relative: &str, env: &Env<'_>) -> bool {
    !relative.is_empty() && exists(&child(snap, relative), env)
}

/// The snapshot at `relative` (slash-separated) below `snap`. An empty key anywhere (from
/// `child('')` or `a//b`) names a location that cannot hold data.
fn child(snap: &Snap, relative: &str) -> Snap {
    let mut path = snap.path.clone();
    if relative.is_empty() {
        path.push(String::new());
    } else {
        let trimmed = relative.trim_matches('/');
        if !trimmed.is_empty() {
            path.extend(trimmed.split('/').map(String::from));
        }
    }
    Snap {
        after: snap.after,
        path,
    }
}

fn tree<'d>(snap: &Snap, env: &Env<'d>) -> Option<&'d dyn Data> {
    if snap.path.iter().any(String::is_empty) {
        return None;
    }
    if snap.after {
        env.after
    } else {
        Some(env.before)
    }
}

fn read(snap: &Snap, env: &Env<'_>) -> Option<Value> {
    let value = tree(snap, env)?.get(&snap.path)?;
    // The tree after a write is normalized already; the caller's tree may hold arrays.
    if snap.after {
        Some(value)
    } else {
        normalize(&value, None)
    }
}

fn exists(snap: &Snap, env: &Env<'_>) -> bool {
    tree(snap, env).is_some_and(|data| data.exists(&snap.path))
}

fn string_method<'e>(s: &str, method: Method, args: Vec<Val<'e>>) -> Result<Val<'e>> {
    Ok(match method {
        Method::Contains => Val::Bool(s.contains(string_arg(method, &args, 0)?)),
        Method::BeginsWith => Val::Bool(s.starts_with(string_arg(method, &args, 0)?)),
        Method::EndsWith => Val::Bool(s.ends_with(string_arg(method, &args, 0)?)),
        Method::Replace => {
            let (from, to) = (string_arg(method, &args, 0)?, string_arg(method, &args, 1)?);
            Val::Str(replace_all(s, from, to)?)
        }
        Method::ToLowerCase => Val::Str(bounded(s.to_lowercase())?),
        Method::ToUpperCase => Val::Str(bounded(s.to_uppercase())?),
        Method::Matches => match args.first() {
            Some(Val::Regex(regex)) => Val::Bool(regex.is_match(s)),
            Some(other) => {
                return Err(format!(
                    "matches() needs a regular expression, not a {}",
                    other.type_name()
                ))
            }
            None => return Err("matches() is missing its regular expression".into()),
        },
        other => return Err(format!("{}() is not a string method", other.name())),
    })
}

/// Every occurrence of `from` replaced (Firebase's `replace` is JavaScript's `replaceAll`),
/// refusing results past the limit before building them.
fn replace_all(s: &str, from: &str, to: &str) -> Result<String> {
    let count = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from).count()
    };
    let size = (s.len() + count * to.len()).saturating_sub(count * from.len());
    if size > MAX_STRING_BYTES {
        return Err(too_long(size));
    }
    Ok(s.replace(from, to))
}

fn bounded(s: String) -> Result<String> {
    if s.len() > MAX_STRING_BYTES {
        return Err(too_long(s.len()));
    }
    Ok(s)
}

fn too_long(size: usize) -> String {
    format!(
        "a string of {size} bytes is longer than the {MAX_STRING_BYTES} allowed (MAX_STRING_BYTES)"
    )
}

fn binary<'e>(op: BinOp, left: Val<'e>, right: Val<'e>) -> Result<Val<'e>> {
    match op {
        BinOp::Add => add(left, right),
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            let (Val::Num(a), Val::Num(b)) = (&left, &right) else {
                return Err(mismatch(op, &left, &right));
            };
            Ok(Val::Num(match op {
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                // Firebase divides by zero into NaN, not Infinity.
                BinOp::Div if *b == 0.0 => f64::NAN,
                BinOp::Div => a / b,
                _ => a % b,
            }))
        }
        BinOp::Eq => Ok(Val::Bool(equal(&left, &right)?)),
        BinOp::Ne => Ok(Val::Bool(!equal(&left, &right)?)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, &left, &right).map(Val::Bool),
    }
}

fn mismatch(op: BinOp, left: &Val<'_>, right: &Val<'_>) -> String {
    format!(
        "`{}` cannot take a {} and a {}",
        op.symbol(),
        left.type_name(),
        right.type_name()
    )
}

fn add<'e>(left: Val<'e>, right: Val<'e>) -> Result<Val<'e>> {
    let text = |v: &Val<'_>| match v {
        Val::Str(s) => Some(s.clone()),
        Val::Num(n) => Some(js_number(*n)),
        _ => None,
    };
    match (&left, &right) {
        (Val::Num(a), Val::Num(b)) => Ok(Val::Num(a + b)),
        (Val::Str(_), Val::Str(_) | Val::Num(_)) | (Val::Num(_), Val::Str(_)) => {
            let (a, b) = (
                text(&left).unwrap_or_default(),
                text(&right).unwrap_or_default(),
            );
            if a.len() + b.len() > MAX_STRING_BYTES {
                return Err(too_long(a.len() + b.len()));
            }
            Ok(Val::Str(a + &b))
        }
        _ => Err(mismatch(BinOp::Add, &left, &right)),
    }
}

/// Strict equality over primitives and objects. Two objects are not compared (JavaScript
/// would compare identities, which a database value does not have): an error.
fn equal(left: &Val<'_>, right: &Val<'_>) -> Result<bool> {
    let comparable = |v: &Val<'_>| {
        matches!(
            v,
            Val::Null | Val::Bool(_) | Val::Num(_) | Val::Str(_) | Val::Object(_)
        )
    };
    if !comparable(left) || !comparable(right) {
        return Err(mismatch(BinOp::Eq, left, right));
    }
    Ok(match (left, right) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(a), Val::Bool(b)) => a == b,
        (Val::Num(a), Val::Num(b)) => a == b,
        (Val::Str(a), Val::Str(b)) => a == b,
        (Val::Object(_), Val::Object(_)) => {
            return Err("`==` cannot compare two objects".into());
        }
        _ => false,
    })
}

fn compare(op: BinOp, left: &Val<'_>, right: &Val<'_>) -> Result<bool> {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
        (Val::Str(a), Val::Str(b)) => Some(js_compare(a, b)),
        // JavaScript compares null as 0: only `<=` and `>=` hold.
        (Val::Null, Val::Null) => Some(Ordering::Equal),
        _ => return Err(mismatch(op, left, right)),
    };
    let Some(ordering) = ordering else {
        return Ok(false);
    };
    Ok(match op {
        BinOp::Lt => ordering == Ordering::Less,
        BinOp::Le => ordering != Ordering::Greater,
        BinOp::Gt => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}
