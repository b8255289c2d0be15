//! Tokens to a tree, by precedence climbing with JavaScript's precedences:
//! `?:` < `||` < `&&` < equality < comparison < `+ -` < `* / %` < unary < member and call.
//!
//! Everything JavaScript has but Firebase rules do not (assignment, `;`, `typeof`, bitwise
//! operators, object literals, unary `+`…) is a syntax error here.

use super::lex::{tokenize, Tok, Token};
use super::{BinOp, Expr, Kind, Prop, Var};
use crate::error::ExprError;
use crate::limits::{MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH};

/// Binding power of the unary operators: tighter than any binary operator.
const PREFIX: u8 = 14;

/// The expression `source`, which must be one whole expression.
pub(crate) fn parse(source: &str) -> Result<Expr, ExprError> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprError::new(
            0,
            format!(
                "the expression is {} bytes, more than the {MAX_EXPRESSION_BYTES} allowed \
                 (MAX_EXPRESSION_BYTES)",
                source.len()
            ),
        ));
    }
    let mut parser = Parser {
        tokens: tokenize(source)?,
        pos: 0,
    };
    if parser.peek().tok == Tok::End {
        return Err(ExprError::new(0, "the expression is empty"));
    }
    let expr = parser.expr(0, 0)?;
    match &parser.peek().tok {
        Tok::End => Ok(expr),
        other => Err(ExprError::new(
            parser.peek().at,
            format!("unexpected {} after a complete expression", describe(other)),
        )),
    }
}

/// A binary operator: `&&` and `||` evaluate lazily, the others both sides.
enum Infix {
    And,
    Or,
    Bin(BinOp),
}

/// A binary operator and its left and right binding powers; left-associative operators
/// bind their right side one tighter.
fn infix(op: &str) -> Option<(Infix, u8, u8)> {
    let (infix, left) = match op {
        "||" => (Infix::Or, 2),
        "&&" => (Infix::And, 4),
        "==" | "===" => (Infix::Bin(BinOp::Eq), 6),
        "!=" | "!==" => (Infix::Bin(BinOp::Ne), 6),
        "<" => (Infix::Bin(BinOp::Lt), 8),
        "<=" => (Infix::Bin(BinOp::Le), 8),
        ">" => (Infix::Bin(BinOp::Gt), 8),
        ">=" => (Infix::Bin(BinOp::Ge), 8),
        "+" => (Infix::Bin(BinOp::Add), 10),
        "-" => (Infix::Bin(BinOp::Sub), 10),
        "*" => (Infix::Bin(BinOp::Mul), 12),
        "/" => (Infix::Bin(BinOp::Div), 12),
        "%" => (Infix::Bin(BinOp::Rem), 12),
        _ => return None,
    };
    Some((infix, left, left + 1))
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(_) => "string".into(),
        Tok::Regex { .. } => "regular expression".into(),
        Tok::Ident(name) => format!("`{name}`"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::End => "end of expression".into(),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends with `End`, and `bump` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::End {
            self.pos += 1;
        }
        token
    }

    fn is(&self, punct: &str) -> bool {
        matches!(&self.peek().tok, Tok::Punct(p) if *p == punct)
    }

    fn expect(&mut self, punct: &str) -> Result<(), ExprError> {
        if self.is(punct) {
            self.bump();
            return Ok(());
        }
        let token = self.peek();
        Err(ExprError::new(
            token.at,
            format!("expected `{punct}`, found {}", describe(&token.tok)),
        ))
    }

    /// A node, refused when its tree would be deeper than the limit.
    fn node(&self, kind: Kind, at: usize) -> Result<Expr, ExprError> {
        let depth = 1 + children_depth(&kind);
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(ExprError::new(
                at,
                format!("the expression nests more than {MAX_EXPRESSION_DEPTH} deep (MAX_EXPRESSION_DEPTH)"),
            ));
        }
        Ok(Expr { kind, at, depth })
    }

    /// An expression whose operators all bind at least `min` tightly.
    fn expr(&mut self, min: u8, depth: usize) -> Result<Expr, ExprError> {
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(ExprError::new(
                self.peek().at,
                format!("the expression nests more than {MAX_EXPRESSION_DEPTH} deep (MAX_EXPRESSION_DEPTH)"),
            ));
        }
        let mut left = self.prefix(depth)?;
        loop {
            let at = left.at;
            let Tok::Punct(op) = self.peek().tok else {
                break;
            };
            left = match op {
                "." | "[" | "(" => self.postfix(left, depth)?,
                "?" if min <= 1 => {
                    self.bump();
                    let then = self.expr(0, depth + 1)?;
                    self.expect(":")?;
                    let otherwise = self.expr(1, depth + 1)?;
                    self.node(
                        Kind::Cond(Box::new(left), Box::new(then), Box::new(otherwise)),
                        at,
                    )?
                }
                _ => match infix(op) {
                    Some((infix, lbp, rbp)) if lbp >= min => {
                        self.bump();
                        let right = Box::new(self.expr(rbp, depth + 1)?);
                        let left = Box::new(left);
                        let kind = match infix {
                            Infix::And => Kind::And(left, right),
                            Infix::Or => Kind::Or(left, right),
                            Infix::Bin(bin) => Kind::Binary(bin, left, right),
                        };
                        self.node(kind, at)?
                    }
                    _ => break,
                },
            };
        }
        Ok(left)
    }

    fn postfix(&mut self, object: Expr, depth: usize) -> Result<Expr, ExprError> {
        let at = object.at;
        let open = self.bump();
        match open.tok {
            Tok::Punct(".") => {
                let name = self.bump();
                match name.tok {
                    Tok::Ident(name) => {
                        self.node(Kind::Member(Box::new(object), Prop::Name(name)), at)
                    }
                    other => Err(ExprError::new(
                        name.at,
                        format!(
                            "expected a property name after `.`, found {}",
                            describe(&other)
                        ),
                    )),
                }
            }
            Tok::Punct("[") => {
                let index = self.expr(0, depth + 1)?;
                self.expect("]")?;
                self.node(
                    Kind::Member(Box::new(object), Prop::Index(Box::new(index))),
                    at,
                )
            }
            _ => {
                let args = self.list(")", depth)?;
                self.node(Kind::Call(Box::new(object), args), at)
            }
        }
    }

    /// Comma-separated expressions up to `close` (already past the opening bracket).
    fn list(&mut self, close: &str, depth: usize) -> Result<Vec<Expr>, ExprError> {
        let mut items = Vec::new();
        if self.is(close) {
            self.bump();
            return Ok(items);
        }
        loop {
            items.push(self.expr(0, depth + 1)?);
            if self.is(close) {
                self.bump();
                return Ok(items);
            }
            self.expect(",")?;
        }
    }

    fn prefix(&mut self, depth: usize) -> Result<Expr, ExprError> {
        let token = self.bump();
        let at = token.at;
        let kind = match token.tok {
            Tok::Num(n) => Kind::Num(n),
            Tok::Str(s) => Kind::Str(s),
            Tok::Regex { pattern, flags } => {
                let regex = crate::regex::compile(&pattern, &flags)
                    .map_err(|message| ExprError::new(at, message))?;
                Kind::Regex(Box::new(regex))
            }
            Tok::Ident(name) => identifier(&name, at)?,
            Tok::Punct("(") => {
                let inner = self.expr(0, depth + 1)?;
                self.expect(")")?;
                return Ok(inner);
            }
            Tok::Punct("[") => Kind::Array(self.list("]", depth)?),
            Tok::Punct("!") => Kind::Not(Box::new(self.expr(PREFIX, depth + 1)?)),
            Tok::Punct("-") => Kind::Neg(Box::new(self.expr(PREFIX, depth + 1)?)),
            Tok::Punct("+") => {
                return Err(ExprError::new(at, "unary `+` is not supported"));
            }
            other => {
                return Err(ExprError::new(
                    at,
                    format!("unexpected {}", describe(&other)),
                ))
            }
        };
        self.node(kind, at)
    }
}

/// A name: a literal, a variable, or an error naming what is not defined.
fn identifier(name: &str, at: usize) -> Result<Kind, ExprError> {
    Ok(match name {
        "true" => Kind::Bool(true),
        "false" => Kind::Bool(false),
        "null" => Kind::Null,
        "auth" => Kind::Var(Var::Auth),
        "now" => Kind::Var(Var::Now),
        "root" => Kind::Var(Var::Root),
        "data" => Kind::Var(Var::Data),
        "newData" => Kind::Var(Var::NewData),
        "query" => Kind::Var(Var::Query),
        wild if wild.starts_with('$') => Kind::Var(Var::Wild(wild.to_string())),
        other => return Err(ExprError::new(at, format!("`{other}` is not defined"))),
    })
}

fn children_depth(kind: &Kind) -> usize {
    let max = |items: &[&Expr]| items.iter().map(|e| e.depth).max().unwrap_or(0);
    match kind {
        Kind::Null
        | Kind::Bool(_)
        | Kind::Num(_)
        | Kind::Str(_)
        | Kind::Regex(_)
        | Kind::Var(_) => 0,
        Kind::Member(object, Prop::Name(_)) => object.depth,
        Kind::Member(object, Prop::Index(index)) => max(&[object, index]),
        Kind::Call(callee, args) => callee
            .depth
            .max(args.iter().map(|a| a.depth).max().unwrap_or(0)),
        Kind::Array(items) => items.iter().map(|e| e.depth).max().unwrap_or(0),
        Kind::Not(arg) | Kind::Neg(arg) => arg.depth,
        Kind::Binary(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => max(&[a, b]),
        Kind::Cond(a, b, c) => max(&[a, b, c]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as a parenthesized string, to check precedence.
    fn shape(e: &Expr) -> String {
        match &e.kind {
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Num(n) => n.to_string(),
            Kind::Str(s) => format!("'{s}'"),
            Kind::Regex(r) => format!("/{r}/"),
            Kind::Var(v) => format!("{v:?}"),
            Kind::Member(o, Prop::Name(n)) => format!("{}.{n}", shape(o)),
            Kind::Member(o, Prop::Index(i)) => format!("{}[{}]", shape(o), shape(i)),
            Kind::Call(c, args) => format!(
                "{}({})",
                shape(c),
                args.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Kind::Array(items) => format!(
                "[{}]",
                items.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Kind::Not(a) => format!("!{}", shape(a)),
            Kind::Neg(a) => format!("-{}", shape(a)),
            Kind::Binary(op, a, b) => format!("({} {} {})", shape(a), op.symbol(), shape(b)),
            Kind::And(a, b) => format!("({} && {})", shape(a), shape(b)),
            Kind::Or(a, b) => format!("({} || {})", shape(a), shape(b)),
            Kind::Cond(a, b, c) => format!("({} ? {} : {})", shape(a), shape(b), shape(c)),
        }
    }

    fn parsed(source: &str) -> String {
        shape(&parse(source).unwrap())
    }

    #[test]
    fn javascript_precedence() {
        assert_eq!(parsed("1 + 2 * 3 - 4"), "((1 + (2 * 3)) - 4)");
        assert_eq!(
            parsed("$a || $b && $c"),
            r#"(Wild("$a") || (Wild("$b") && Wild("$c")))"#
        );
        assert_eq!(parsed("1 < 2 == true"), "((1 < 2) == true)");
        assert_eq!(
            parsed("!data.exists() || -now < 0"),
            "(!Data.exists() || (-Now < 0))"
        );
        assert_eq!(
            parsed("true ? 1 : false ? 2 : 3"),
            "(true ? 1 : (false ? 2 : 3))"
        );
        assert_eq!(parsed("true || false ? 1 : 2"), "((true || false) ? 1 : 2)");
        assert_eq!(parsed("auth.token['a b'].c"), "Auth.token['a b'].c");
        assert_eq!(
            parsed("data.hasChildren(['a', 'b'])"),
            "Data.hasChildren(['a', 'b'])"
        );
        assert_eq!(parsed("1 - 2 - 3"), "((1 - 2) - 3)");
        assert_eq!(parsed("(1 === 1) !== (2 != 3)"), "((1 == 1) != (2 != 3))");
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "   ",
            "var foo = 8",
            "root = 5",
            "a; b",
            "(2**2) == 4",
            "skies === 'blue'",
            "+1 == 1",
            "data.",
            "data.val(",
            "[1,,2]",
            "(1",
            "1 2",
            "typeof auth == 'object'",
            "/[/.test('a')",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep)
            .unwrap_err()
            .message
            .contains("MAX_EXPRESSION_DEPTH"));
        let long_chain = format!("auth{}", ".a".repeat(200));
        assert!(parse(&long_chain)
            .unwrap_err()
            .message
            .contains("MAX_EXPRESSION_DEPTH"));
        let sum = vec!["1"; 200].join(" + ");
        assert!(parse(&sum)
            .unwrap_err()
            .message
            .contains("MAX_EXPRESSION_DEPTH"));
        let too_long = format!("'{}' == ''", "a".repeat(MAX_EXPRESSION_BYTES));
        assert!(parse(&too_long)
            .unwrap_err()
            .message
            .contains("MAX_EXPRESSION_BYTES"));
    }
}
