//! The expression grammar, parsed by precedence climbing into a tree whose depth is capped
//! at [`MAX_EXPRESSION_DEPTH`] while it is built, so neither parsing, evaluating nor dropping
//! it can exhaust the stack.
//!
//! ```text
//! expr    := or ('?' expr ':' expr)?
//! or      := and ('||' and)*            and := equal ('&&' equal)*
//! equal   := rel (('==' | '!=') rel)*   rel := sum (('<' | '<=' | '>' | '>=' | 'in') sum)*
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/' | '%') unary)*
//! unary   := ('!' | '-') unary | postfix
//! postfix := primary ('.' name | '.' name '(' args ')' | '[' expr ']')*
//! primary := number | string | true | false | null | auth | data | newData | now
//!          | $capture | name '(' args ')' | '(' expr ')' | '[' list ']' | '{' map '}'
//! ```

use std::sync::Arc;

use kora_core::Path;
use regex::Regex;
use serde_json::Value;

use super::lexer::{tokens, Op, Tok, Token};
use super::SyntaxError;
use crate::limits::{MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH, MAX_REGEX_BYTES};

/// A node of the expression tree, with the byte offset it starts at and its depth.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub at: usize,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Literal(Value),
    Var(Var),
    Capture(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
    Member(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
    Matches(Box<Node>, Arc<Regex>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Auth,
    Data,
    NewData,
    Now,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// The built-in functions (`matches` is parsed apart: its pattern is compiled at load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Size,
    IsString,
    IsNumber,
    IsInt,
    IsBool,
    IsMap,
    IsList,
    StartsWith,
    EndsWith,
    Contains,
    Lower,
    Upper,
    Str,
    Keys,
    Root,
    NewRoot,
}

impl Func {
    const ALL: [Func; 16] = [
        Func::Size,
        Func::IsString,
        Func::IsNumber,
        Func::IsInt,
        Func::IsBool,
        Func::IsMap,
        Func::IsList,
        Func::StartsWith,
        Func::EndsWith,
        Func::Contains,
        Func::Lower,
        Func::Upper,
        Func::Str,
        Func::Keys,
        Func::Root,
        Func::NewRoot,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::Size => "size",
            Func::IsString => "is_string",
            Func::IsNumber => "is_number",
            Func::IsInt => "is_int",
            Func::IsBool => "is_bool",
            Func::IsMap => "is_map",
            Func::IsList => "is_list",
            Func::StartsWith => "startsWith",
            Func::EndsWith => "endsWith",
            Func::Contains => "contains",
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Str => "string",
            Func::Keys => "keys",
            Func::Root => "root",
            Func::NewRoot => "newRoot",
        }
    }

    fn arity(self) -> usize {
        match self {
            Func::StartsWith | Func::EndsWith | Func::Contains => 2,
            _ => 1,
        }
    }

    fn by_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Parses `source`; `captures` are the names `$name` may use.
pub(crate) fn parse(source: &str, captures: &[&str]) -> Result<Node, SyntaxError> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(SyntaxError {
            offset: 0,
            message: format!(
                "expression is {} bytes long; the limit is {MAX_EXPRESSION_BYTES}",
                source.len()
            ),
        });
    }
    let tokens = tokens(source)?;
    if tokens.first().is_some_and(|t| t.tok == Tok::End) {
        return Err(SyntaxError {
            offset: 0,
            message: "empty expression".into(),
        });
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        captures,
        nesting: 0,
    };
    let node = parser.expr(0)?;
    match parser.peek() {
        Tok::End => Ok(node),
        _ => Err(parser.error_here("unexpected text after the expression")),
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    captures: &'a [&'a str],
    nesting: usize,
}

/// Binding powers of the ternary (right associative: its `else` part binds at this level).
const TERNARY_BP: u8 = 2;
/// Binding power of prefix `!` and `-`.
const PREFIX_BP: u8 = 15;

enum Infix {
    Or,
    And,
    Binary(BinOp),
}

fn infix(tok: &Tok) -> Option<(u8, u8, Infix)> {
    let binary = |l, op| Some((l, l + 1, Infix::Binary(op)));
    match tok {
        Tok::Op(Op::Or) => Some((3, 4, Infix::Or)),
        Tok::Op(Op::And) => Some((5, 6, Infix::And)),
        Tok::Op(Op::Eq) => binary(7, BinOp::Eq),
        Tok::Op(Op::Ne) => binary(7, BinOp::Ne),
        Tok::Op(Op::Lt) => binary(9, BinOp::Lt),
        Tok::Op(Op::Le) => binary(9, BinOp::Le),
        Tok::Op(Op::Gt) => binary(9, BinOp::Gt),
        Tok::Op(Op::Ge) => binary(9, BinOp::Ge),
        Tok::Ident(name) if name == "in" => binary(9, BinOp::In),
        Tok::Op(Op::Plus) => binary(11, BinOp::Add),
        Tok::Op(Op::Minus) => binary(11, BinOp::Sub),
        Tok::Op(Op::Star) => binary(13, BinOp::Mul),
        Tok::Op(Op::Slash) => binary(13, BinOp::Div),
        Tok::Op(Op::Percent) => binary(13, BinOp::Rem),
        _ => None,
    }
}

fn children(kind: &Kind) -> Vec<&Node> {
    match kind {
        Kind::Literal(_) | Kind::Var(_) | Kind::Capture(_) => Vec::new(),
        Kind::List(items) | Kind::Call(_, items) => items.iter().collect(),
        Kind::Map(entries) => entries.iter().map(|(_, n)| n).collect(),
        Kind::Member(a, _) | Kind::Not(a) | Kind::Neg(a) | Kind::Matches(a, _) => vec![a],
        Kind::Index(a, b) | Kind::Binary(_, a, b) | Kind::And(a, b) | Kind::Or(a, b) => {
            vec![a, b]
        }
        Kind::Cond(a, b, c) => vec![a, b, c],
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.tokens
            .get(self.pos)
            .map(|t| &t.tok)
            .unwrap_or(&Tok::End)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map(|t| t.at).unwrap_or_default()
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        tok
    }

    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            offset: self.at(),
            message: message.into(),
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), SyntaxError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            Err(self.error_here(format!("expected {what}")))
        }
    }

    /// Builds a node, refusing trees deeper than the limit.
    fn node(&self, kind: Kind, at: usize) -> Result<Node, SyntaxError> {
        let depth = 1 + children(&kind).iter().map(|n| n.depth).max().unwrap_or(0);
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(SyntaxError {
                offset: at,
                message: format!("expression nests deeper than {MAX_EXPRESSION_DEPTH} levels"),
            });
        }
        Ok(Node { kind, at, depth })
    }

    fn expr(&mut self, min_bp: u8) -> Result<Node, SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_EXPRESSION_DEPTH {
            return Err(self.error_here(format!(
                "expression nests deeper than {MAX_EXPRESSION_DEPTH} levels"
            )));
        }
        let result = self.expr_inner(min_bp);
        self.nesting -= 1;
        result
    }

    fn expr_inner(&mut self, min_bp: u8) -> Result<Node, SyntaxError> {
        let mut lhs = self.prefix()?;
        loop {
            if *self.peek() == Tok::Question {
                if TERNARY_BP < min_bp {
                    break;
                }
                lhs = self.ternary(lhs)?;
                continue;
            }
            let Some((left_bp, right_bp, op)) = infix(self.peek()) else {
                break;
            };
            if left_bp < min_bp {
                break;
            }
            self.bump();
            let rhs = self.expr(right_bp)?;
            let at = lhs.at;
            let (a, b) = (Box::new(lhs), Box::new(rhs));
            let kind = match op {
                Infix::Or => Kind::Or(a, b),
                Infix::And => Kind::And(a, b),
                Infix::Binary(op) => Kind::Binary(op, a, b),
            };
            lhs = self.node(kind, at)?;
        }
        Ok(lhs)
    }

    fn ternary(&mut self, condition: Node) -> Result<Node, SyntaxError> {
        self.bump();
        let then = self.expr(0)?;
        self.expect(Tok::Colon, "`:` of `?:`")?;
        let otherwise = self.expr(TERNARY_BP)?;
        let at = condition.at;
        let kind = Kind::Cond(Box::new(condition), Box::new(then), Box::new(otherwise));
        self.node(kind, at)
    }

    fn prefix(&mut self) -> Result<Node, SyntaxError> {
        let at = self.at();
        match self.peek() {
            Tok::Op(Op::Not) => {
                self.bump();
                let operand = self.expr(PREFIX_BP)?;
                self.node(Kind::Not(Box::new(operand)), at)
            }
            Tok::Op(Op::Minus) => {
                self.bump();
                let operand = self.expr(PREFIX_BP)?;
                self.node(Kind::Neg(Box::new(operand)), at)
            }
            _ => {
                let primary = self.primary()?;
                self.postfix(primary)
            }
        }
    }

    fn postfix(&mut self, mut node: Node) -> Result<Node, SyntaxError> {
        loop {
            let at = node.at;
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    let name_at = self.at();
                    let Tok::Ident(name) = self.bump() else {
                        return Err(SyntaxError {
                            offset: name_at,
                            message: "expected a name after `.`".into(),
                        });
                    };
                    node = if *self.peek() == Tok::LParen {
                        self.method(node, &name, name_at)?
                    } else {
                        self.node(Kind::Member(Box::new(node), name), at)?
                    };
                }
                Tok::LBracket => {
                    self.bump();
                    let index = self.expr(0)?;
                    self.expect(Tok::RBracket, "`]`")?;
                    node = self.node(Kind::Index(Box::new(node), Box::new(index)), at)?;
                }
                _ => return Ok(node),
            }
        }
    }

    /// `x.f(args)` is `f(x, args)`.
    fn method(&mut self, receiver: Node, name: &str, at: usize) -> Result<Node, SyntaxError> {
        self.bump();
        let mut args = vec![receiver];
        args.extend(self.items(Tok::RParen, "`)`")?);
        self.call(name, args, at)
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let at = self.at();
        match self.bump() {
            Tok::Number(n) => self.node(Kind::Literal(Value::Number(n)), at),
            Tok::Str(s) => self.node(Kind::Literal(Value::String(s)), at),
            Tok::Ident(name) => self.name(&name, at),
            Tok::Capture(name) => self.capture(name, at),
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(inner)
            }
            Tok::LBracket => {
                let items = self.items(Tok::RBracket, "`]`")?;
                self.node(Kind::List(items), at)
            }
            Tok::LBrace => self.map(at),
            Tok::End => Err(SyntaxError {
                offset: at,
                message: "expression ends where a value is expected".into(),
            }),
            _ => Err(SyntaxError {
                offset: at,
                message: "expected a value".into(),
            }),
        }
    }

    fn name(&mut self, name: &str, at: usize) -> Result<Node, SyntaxError> {
        let kind = match name {
            "true" => Kind::Literal(Value::Bool(true)),
            "false" => Kind::Literal(Value::Bool(false)),
            "null" => Kind::Literal(Value::Null),
            "auth" => Kind::Var(Var::Auth),
            "data" => Kind::Var(Var::Data),
            "newData" => Kind::Var(Var::NewData),
            "now" => Kind::Var(Var::Now),
            _ if *self.peek() == Tok::LParen => {
                self.bump();
                let args = self.items(Tok::RParen, "`)`")?;
                return self.call(name, args, at);
            }
            _ => {
                return Err(SyntaxError {
                    offset: at,
                    message: format!(
                        "unknown name `{name}`; the variables are auth, data, newData, now and the pattern's $captures"
                    ),
                })
            }
        };
        self.node(kind, at)
    }

    fn capture(&mut self, name: String, at: usize) -> Result<Node, SyntaxError> {
        if !self.captures.contains(&name.as_str()) {
            let known = if self.captures.is_empty() {
                "the pattern captures nothing".to_string()
            } else {
                format!(
                    "the pattern captures {}",
                    self.captures
                        .iter()
                        .map(|c| format!("${c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(SyntaxError {
                offset: at,
                message: format!("unknown capture `${name}`; {known}"),
            });
        }
        self.node(Kind::Capture(name), at)
    }

    /// Comma-separated expressions up to `close` (a trailing comma is allowed).
    fn items(&mut self, close: Tok, what: &str) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            if *self.peek() == close {
                self.bump();
                return Ok(items);
            }
            items.push(self.expr(0)?);
            if *self.peek() == Tok::Comma {
                self.bump();
            } else {
                self.expect(close, what)?;
                return Ok(items);
            }
        }
    }

    fn map(&mut self, at: usize) -> Result<Node, SyntaxError> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        loop {
            let key_at = self.at();
            let key = match self.bump() {
                Tok::RBrace => return self.node(Kind::Map(entries), at),
                Tok::Str(key) | Tok::Ident(key) => key,
                _ => {
                    return Err(SyntaxError {
                        offset: key_at,
                        message: "expected a key (a name or a string) or `}`".into(),
                    })
                }
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(SyntaxError {
                    offset: key_at,
                    message: format!("key {key:?} appears twice"),
                });
            }
            self.expect(Tok::Colon, "`:` after the key")?;
            entries.push((key, self.expr(0)?));
            if *self.peek() == Tok::Comma {
                self.bump();
            } else {
                self.expect(Tok::RBrace, "`,` or `}`")?;
                return self.node(Kind::Map(entries), at);
            }
        }
    }

    fn call(&mut self, name: &str, args: Vec<Node>, at: usize) -> Result<Node, SyntaxError> {
        if name == "matches" {
            return self.matches(args, at);
        }
        let Some(func) = Func::by_name(name) else {
            return Err(SyntaxError {
                offset: at,
                message: format!("unknown function `{name}`"),
            });
        };
        if args.len() != func.arity() {
            return Err(SyntaxError {
                offset: at,
                message: format!(
                    "`{name}` takes {} argument(s), found {}",
                    func.arity(),
                    args.len()
                ),
            });
        }
        if let (Func::Root | Func::NewRoot, Some(path)) = (func, args.first()) {
            check_literal_path(path)?;
        }
        self.node(Kind::Call(func, args), at)
    }

    /// `matches(text, 'regex')`: the pattern must be a string literal, compiled here.
    fn matches(&mut self, args: Vec<Node>, at: usize) -> Result<Node, SyntaxError> {
        let [text, pattern]: [Node; 2] = args.try_into().map_err(|_| SyntaxError {
            offset: at,
            message: "`matches` takes 2 arguments: a string and a regular expression".into(),
        })?;
        let Kind::Literal(Value::String(source)) = &pattern.kind else {
            return Err(SyntaxError {
                offset: pattern.at,
                message: "the regular expression of `matches` must be a string literal".into(),
            });
        };
        let regex = regex::RegexBuilder::new(source)
            .size_limit(MAX_REGEX_BYTES)
            .build()
            .map_err(|e| SyntaxError {
                offset: pattern.at,
                message: format!("bad regular expression: {}", one_line(&e.to_string())),
            })?;
        self.node(Kind::Matches(Box::new(text), Arc::new(regex)), at)
    }
}

/// A literal argument of `root`/`newRoot` must be a valid path.
fn check_literal_path(arg: &Node) -> Result<(), SyntaxError> {
    if let Kind::Literal(Value::String(text)) = &arg.kind {
        Path::parse(text).map_err(|e| SyntaxError {
            offset: arg.at,
            message: format!("{text:?} is not a path: {e}"),
        })?;
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when the expression reads the tree (`data`, `newData`, `root`, `newRoot`).
pub(crate) fn reads_tree(node: &Node) -> bool {
    match &node.kind {
        Kind::Var(Var::Data | Var::NewData) => true,
        Kind::Call(Func::Root | Func::NewRoot, _) => true,
        kind => children(kind).into_iter().any(reads_tree),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(source: &str) -> Node {
        parse(source, &["uid", "id"]).unwrap_or_else(|e| panic!("{source}: {e:?}"))
    }

    fn err(source: &str) -> SyntaxError {
        parse(source, &["uid"]).expect_err(source)
    }

    #[test]
    fn precedence_and_associativity() {
        let node = ok("1 + 2 * 3 == 7 && !false");
        let Kind::And(left, _) = node.kind else {
            panic!("expected &&")
        };
        let Kind::Binary(BinOp::Eq, sum, _) = left.kind else {
            panic!("expected ==")
        };
        assert!(matches!(sum.kind, Kind::Binary(BinOp::Add, ..)));
        let node = ok("true ? 1 : false ? 2 : 3");
        let Kind::Cond(_, _, otherwise) = node.kind else {
            panic!("expected a ternary")
        };
        assert!(matches!(otherwise.kind, Kind::Cond(..)));
        let node = ok("1 - 2 - 3");
        let Kind::Binary(BinOp::Sub, left, _) = node.kind else {
            panic!("expected subtraction")
        };
        assert!(matches!(left.kind, Kind::Binary(BinOp::Sub, ..)));
        let node = ok("data.a || data.b ? 1 : 2");
        assert!(matches!(node.kind, Kind::Cond(..)));
    }

    #[test]
    fn postfix_members_indexes_and_methods() {
        assert!(matches!(ok("data.user.name").kind, Kind::Member(..)));
        assert!(matches!(ok("data['a b']").kind, Kind::Index(..)));
        assert!(matches!(
            ok("newData.text.size()").kind,
            Kind::Call(Func::Size, _)
        ));
        assert!(matches!(
            ok("auth.email.matches('@x\\\\.com$')").kind,
            Kind::Matches(..)
        ));
        assert!(matches!(
            ok("$uid in data.members").kind,
            Kind::Binary(BinOp::In, ..)
        ));
    }

    #[test]
    fn literals_lists_and_maps() {
        assert!(matches!(ok("[1, 'a', [], {},]").kind, Kind::List(ref l) if l.len() == 4));
        assert!(matches!(ok("{a: 1, 'b c': now}").kind, Kind::Map(ref m) if m.len() == 2));
        assert!(matches!(ok("null").kind, Kind::Literal(Value::Null)));
    }

    #[test]
    fn names_and_captures_are_checked() {
        assert!(err("dta.owner").message.contains("unknown name `dta`"));
        assert!(err("$id == 1").message.contains("unknown capture `$id`"));
        assert!(err("frobnicate(1)").message.contains("unknown function"));
        assert!(err("size(1, 2)").message.contains("takes 1"));
        assert!(err("matches(data, data)")
            .message
            .contains("string literal"));
        assert!(err("matches(data, '(')")
            .message
            .contains("bad regular expression"));
        assert!(err("root('a//b')").message.contains("not a path"));
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token() {
        assert_eq!(err("1 +").offset, 3);
        assert_eq!(err("(1").offset, 2);
        assert_eq!(err("a.1").offset, 0);
        assert_eq!(err("data.x 5").offset, 7);
        assert_eq!(err("").message, "empty expression");
        assert_eq!(err("   ").message, "empty expression");
        assert!(err("{a: 1, a: 2}").message.contains("twice"));
        assert!(err("true ? 1").message.contains("`:`"));
    }

    #[test]
    fn depth_is_limited_for_every_kind_of_nesting() {
        let parens = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(err(&parens).message.contains("deeper"));
        let lists = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert!(err(&lists).message.contains("deeper"));
        let nots = format!("{}true", "!".repeat(100));
        assert!(err(&nots).message.contains("deeper"));
        let chain = vec!["1"; 100].join(" + ");
        assert!(err(&chain).message.contains("deeper"));
        let members = format!("data{}", ".a".repeat(100));
        assert!(err(&members).message.contains("deeper"));
        let fine = vec!["1"; 40].join(" + ");
        assert!(parse(&fine, &[]).is_ok());
    }

    #[test]
    fn long_expressions_are_refused() {
        let long = format!("'{}'", "x".repeat(MAX_EXPRESSION_BYTES));
        assert!(err(&long).message.contains("bytes long"));
    }

    #[test]
    fn reads_tree_spots_data_and_lookups() {
        assert!(reads_tree(&ok("auth.sub == data.owner")));
        assert!(reads_tree(&ok("root('a') == 1")));
        assert!(reads_tree(&ok("[newData]")));
        assert!(!reads_tree(&ok(
            "auth != null && auth.sub == $uid && now > 0"
        )));
    }
}
