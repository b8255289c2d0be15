//! Loading `database.rules.json` into a tree of rule locations.
//!
//! The file is JSON with comments (`//` and `/* */`, which Firebase accepts) holding one key,
//! `rules`. Below it each key is a location: `.read`, `.write`, `.validate` are rules (an
//! expression string or a boolean), `.indexOn` names indexed children, a `$variable` key
//! matches any key (at most one per location), any other key matches itself.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::RulesError;
use crate::expr::{self, Expr, Kind, Scope};
use crate::limits::{MAX_RULES_BYTES, MAX_RULES_DEPTH};

/// A parsed rules file, ready to decide requests (see `decide`). Cheap to share across
/// threads.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) root: Node,
}

/// One location of the rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub read: Option<Rule>,
    pub write: Option<Rule>,
    pub validate: Option<Rule>,
    pub index_on: Vec<String>,
    pub children: BTreeMap<String, Node>,
    /// The `$variable` child: its name, and its rules.
    pub wild: Option<(String, Box<Node>)>,
}

/// One rule: where it is (`rules/users/$uid/.write`), its text, and its parsed expression.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub at: String,
    pub source: String,
    pub expr: Expr,
}

impl Node {
    /// The rules for the child `key`, and the `$variable` it binds if it is the wildcard.
    pub(crate) fn child(&self, key: &str) -> Option<(&Node, Option<&str>)> {
        if let Some(node) = self.children.get(key) {
            return Some((node, None));
        }
        self.wild
            .as_ref()
            .map(|(name, node)| (node.as_ref(), Some(name.as_str())))
    }
}

impl Rules {
    /// Parses a rules file. Every expression is parsed and type-checked now; an error names
    /// where it is, e.g. `rules/users/$uid/.write: …`.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        if text.len() > MAX_RULES_BYTES {
            return Err(RulesError::TooLarge {
                size: text.len(),
                max: MAX_RULES_BYTES,
            });
        }
        let json = strip_comments(text)?;
        let value: Value = serde_json::from_str(&json).map_err(|e| RulesError::Json {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
        let rules = match &value {
            Value::Object(top) if top.len() == 1 => top.get("rules"),
            _ => None,
        };
        let Some(rules) = rules else {
            return Err(RulesError::at(
                "rules file",
                "expected an object with one key, \"rules\"",
            ));
        };
        let mut builder = Builder {
            stack: vec!["rules".into()],
            wild: Vec::new(),
        };
        Ok(Rules {
            root: builder.node(rules)?,
        })
    }

    /// The `.indexOn` declarations: each location's pattern (`users/$uid`, `""` for the
    /// root) and the children it indexes (`.value` for the values themselves), so the
    /// caller can build its indexes.
    pub fn index_on(&self) -> Vec<(String, Vec<String>)> {
        let mut found = Vec::new();
        collect_indexes(&self.root, &mut Vec::new(), &mut found);
        found
    }
}

fn collect_indexes(node: &Node, path: &mut Vec<String>, found: &mut Vec<(String, Vec<String>)>) {
    if !node.index_on.is_empty() {
        found.push((path.join("/"), node.index_on.clone()));
    }
    let wild = node.wild.as_ref().map(|(name, node)| (name, node.as_ref()));
    for (key, child) in node.children.iter().chain(wild) {
        path.push(key.clone());
        collect_indexes(child, path, found);
        path.pop();
    }
}

/// Walks the JSON of the rules, knowing where it is.
struct Builder {
    /// `rules`, then each key down to the current location.
    stack: Vec<String>,
    /// The `$variables` bound above and at the current location.
    wild: Vec<String>,
}

impl Builder {
    fn at(&self) -> String {
        self.stack.join("/")
    }

    fn at_key(&self, key: &str) -> String {
        format!("{}/{key}", self.at())
    }

    fn node(&mut self, value: &Value) -> Result<Node, RulesError> {
        let Value::Object(map) = value else {
            return Err(RulesError::at(
                self.at(),
                format!("expected an object of rules, got {}", json_type(value)),
            ));
        };
        if self.stack.len() > MAX_RULES_DEPTH + 1 {
            return Err(RulesError::at(
                self.at(),
                format!("rules nest more than {MAX_RULES_DEPTH} locations deep (MAX_RULES_DEPTH)"),
            ));
        }
        self.only_one_wildcard(map)?;
        let mut node = Node::default();
        for (key, value) in map {
            if key.starts_with('.') {
                self.rule_entry(&mut node, key, value)?;
            } else if key.starts_with('$') {
                node.wild = Some((key.clone(), Box::new(self.wild_child(key, value)?)));
            } else {
                check_key(key).map_err(|message| RulesError::at(self.at_key(key), message))?;
                self.stack.push(key.clone());
                let child = self.node(value);
                self.stack.pop();
                node.children.insert(key.clone(), child?);
            }
        }
        Ok(node)
    }

    fn only_one_wildcard(&self, map: &Map<String, Value>) -> Result<(), RulesError> {
        let wild: Vec<&str> = map
            .keys()
            .filter(|k| k.starts_with('$'))
            .map(String::as_str)
            .collect();
        if wild.len() > 1 {
            return Err(RulesError::at(
                self.at(),
                format!(
                    "a location can have only one $variable child, found {}",
                    wild.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn wild_child(&mut self, key: &str, value: &Value) -> Result<Node, RulesError> {
        let name_ok = key.len() > 1
            && key[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if !name_ok {
            return Err(RulesError::at(
                self.at_key(key),
                "a $variable name may only hold letters, digits and `_`",
            ));
        }
        if self.wild.iter().any(|w| w == key) {
            return Err(RulesError::at(
                self.at_key(key),
                format!("`{key}` is already bound by a location above"),
            ));
        }
        self.stack.push(key.to_string());
        self.wild.push(key.to_string());
        let child = self.node(value);
        self.wild.pop();
        self.stack.pop();
        child
    }

    fn rule_entry(&self, node: &mut Node, key: &str, value: &Value) -> Result<(), RulesError> {
        match key {
            ".read" => node.read = Some(self.rule(key, value, false)?),
            ".write" => node.write = Some(self.rule(key, value, true)?),
            ".validate" => node.validate = Some(self.rule(key, value, true)?),
            ".indexOn" => node.index_on = self.index_on(key, value)?,
            other => {
                return Err(RulesError::at(
                    self.at_key(other),
                    format!(
                    "unknown rule type `{other}` (expected .read, .write, .validate or .indexOn)"
                ),
                ))
            }
        }
        Ok(())
    }

    fn rule(&self, key: &str, value: &Value, write: bool) -> Result<Rule, RulesError> {
        let at = self.at_key(key);
        let scope = Scope {
            write,
            wild: &self.wild,
        };
        let (source, expr) = match value {
            Value::Bool(b) => (
                b.to_string(),
                Expr {
                    kind: Kind::Bool(*b),
                    at: 0,
                    depth: 1,
                },
            ),
            Value::String(source) => {
                let expr = expr::load(source, &scope).map_err(|e| {
                    RulesError::at(
                        at.clone(),
                        format!("{} (at byte {} of `{source}`)", e.message, e.offset),
                    )
                })?;
                (source.clone(), expr)
            }
            other => {
                return Err(RulesError::at(
                    at,
                    format!(
                        "expected an expression string or a boolean, got {}",
                        json_type(other)
                    ),
                ))
            }
        };
        Ok(Rule { at, source, expr })
    }

    fn index_on(&self, key: &str, value: &Value) -> Result<Vec<String>, RulesError> {
        let fail = || {
            RulesError::at(
                self.at_key(key),
                format!(
                    "expected a string or an array of strings, got {}",
                    json_type(value)
                ),
            )
        };
        match value {
            Value::String(child) => Ok(vec![child.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(String::from).ok_or_else(fail))
                .collect(),
            _ => Err(fail()),
        }
    }
}

/// A plain key of the rules must be a possible key of the data.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("an empty key cannot match any location".into());
    }
    if let Some(c) = key
        .chars()
        .find(|c| matches!(c, '.' | '#' | '$' | '[' | ']' | '/') || c.is_control())
    {
        return Err(format!("a key cannot contain {c:?}"));
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The text with `//` and `/* */` comments outside strings replaced by spaces (keeping line
/// breaks, so JSON errors point at the right line).
pub(crate) fn strip_comments(text: &str) -> Result<String, RulesError> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                    out.push(' ');
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                let start = line;
                chars.next();
                out.push_str("  ");
                loop {
                    match chars.next() {
                        None => {
                            return Err(RulesError::at(
                                "rules file",
                                format!("unterminated /* comment starting on line {start}"),
                            ))
                        }
                        Some('*') if chars.peek() == Some(&'/') => {
                            chars.next();
                            out.push_str("  ");
                            break;
                        }
                        Some('\n') => {
                            line += 1;
                            out.push('\n');
                        }
                        Some(_) => out.push(' '),
                    }
                }
            }
            '\n' => {
                line += 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}
