//! The expression language of `.read`, `.write` and `.validate`: a subset of JavaScript
//! expressions, parsed once when the rules load ([`load`]), then evaluated per request.
//!
//! - **Literals**: numbers, strings in single or double quotes with JavaScript's escapes,
//!   `true`, `false`, `null`, and regular expressions `/…/i` (only as `matches`' argument).
//! - **Variables**: `auth`, `now`, `root`, `data`, `newData` (not in `.read`), `query`, and
//!   the `$variables` of the enclosing locations.
//! - **Operators**: `! -` (unary), `* / % + - < <= > >= == != === !== && ||`, `?:`,
//!   member access `.x` and `[x]`, method calls.
//!
//! Loading type-checks the expression the way Firebase does when rules are deployed
//! ([`check`]): `&&` wants booleans, `data.val` must be called, a rule must be a boolean…
//! Values whose type is only known at run time (`auth.…`, `val()`) are checked when
//! evaluated ([`eval`]), and an error there makes the whole rule false, as in Firebase.

pub(crate) mod check;
pub(crate) mod eval;
mod lex;
pub(crate) mod method;
mod parse;
pub(crate) mod value;

use regex::Regex;

use crate::error::ExprError;

pub(crate) use check::Scope;

/// A parsed expression: what it is, where it starts in the source (a byte offset), and how
/// deep its tree is (bounded by `MAX_EXPRESSION_DEPTH`).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: Kind,
    pub at: usize,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Regex(Box<Regex>),
    Var(Var),
    Member(Box<Expr>, Prop),
    Call(Box<Expr>, Vec<Expr>),
    /// An array literal; only `hasChildren([…])` takes one.
    Array(Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// The variables a rule can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Var {
    Auth,
    Now,
    Root,
    Data,
    NewData,
    Query,
    /// A `$variable`: the key its location matched.
    Wild(String),
}

/// The property of a member access: `a.name` or `a[expression]`.
#[derive(Debug, Clone)]
pub(crate) enum Prop {
    Name(String),
    Index(Box<Expr>),
}

/// Binary operators other than `&&` and `||`. `==` and `===` are the same operator in
/// Firebase rules (strict equality), as are `!=` and `!==`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

/// Parses and type-checks one rule expression: it must be a boolean.
pub(crate) fn load(source: &str, scope: &Scope<'_>) -> Result<Expr, ExprError> {
    let expr = parse::parse(source)?;
    check::check_rule(&expr, scope)?;
    Ok(expr)
}
