//! Deciding reads, sets and updates, as the Realtime Database does.
//!
//! - **`.read` and `.write` cascade**: access is granted when any rule from the root down to
//!   the location (inclusive) is true; a grant above cannot be taken back below, and rules
//!   below the location are not consulted.
//! - **`.validate` does not cascade, and all must pass**: after a write is granted, every
//!   `.validate` rule is evaluated at each location on the way to the written one where the
//!   new data exists, and at every location of the written value that has rules. Locations
//!   left without data (deletions) are not validated.
//! - **Rules that err are false.**
//! - An update checks each of its paths as a write, against the tree after all of them.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::data::{normalize, After, Data, Write};
use crate::expr::eval::{evaluate, Env};
use crate::query::QueryParams;
use crate::rules::{Node, Rule, Rules};

/// Who asks, and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The `auth` variable: the verified token's payload (`uid`, `provider`, `token`…), or
    /// `None` for an unauthenticated caller.
    pub auth: Option<&'a Value>,
    /// The server's time, in milliseconds since the epoch (`now`, and the value of
    /// `{".sv": "timestamp"}`).
    pub now: i64,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Denial),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Why a request was refused. Firebase answers every refusal with `permission_denied`; the
/// rest is for logs and for the developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The location refused, e.g. `/users/bob`: the request's, or for a `.validate` rule
    /// the location it checked.
    pub path: String,
    /// The rule that refused (`rules/users/$uid/.validate`), or `None` when no `.read` or
    /// `.write` rule granted access, or the request itself was invalid.
    pub rule: Option<String>,
    /// What happened, naming the rules evaluated and their results.
    pub message: String,
}

impl Denial {
    /// The error code Firebase sends: always `permission_denied`.
    pub fn code(&self) -> &'static str {
        "permission_denied"
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "permission_denied at {}: {}", self.path, self.message)
    }
}

impl std::error::Error for Denial {}

/// One location on the way down a path: its rules, how deep it is, and how many
/// `$variables` were bound down to it.
struct Step<'r> {
    node: &'r Node,
    depth: usize,
    bound: usize,
}

/// The rule locations matching `path` from the root down, as far as rules go, and the
/// `$variables` they bind.
fn walk<'r>(root: &'r Node, path: &[String]) -> (Vec<Step<'r>>, Vec<(String, String)>) {
    let mut steps = vec![Step {
        node: root,
        depth: 0,
        bound: 0,
    }];
    let mut wild = Vec::new();
    let mut node = root;
    for (i, key) in path.iter().enumerate() {
        let Some((child, variable)) = node.child(key) else {
            break;
        };
        if let Some(variable) = variable {
            wild.push((variable.to_string(), key.clone()));
        }
        node = child;
        steps.push(Step {
            node,
            depth: i + 1,
            bound: wild.len(),
        });
    }
    (steps, wild)
}

/// What one rule said, for messages.
fn outcome(rule: &Rule, result: &Result<bool, String>) -> String {
    match result {
        Ok(value) => format!("{} = {value}", rule.at),
        Err(error) => format!("{} failed: {error}", rule.at),
    }
}

fn display(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

/// A request's path: keys separated by `/`; surrounding slashes do not matter.
fn parse_path(text: &str) -> Result<Vec<String>, Denial> {
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = trimmed.split('/').map(String::from).collect();
    for key in &keys {
        let bad = key.is_empty()
            || key
                .chars()
                .any(|c| matches!(c, '.' | '#' | '$' | '[' | ']') || c.is_control());
        if bad {
            return Err(Denial {
                path: format!("/{trimmed}"),
                rule: None,
                message: format!(
                    "invalid path: key {key:?} is empty or holds one of . # $ [ ] or a control character"
                ),
            });
        }
    }
    Ok(keys)
}

impl Rules {
    /// May `ctx` read `path` (with `query`, `None` for a plain read) in `data`?
    pub fn can_read(
        &self,
        path: &str,
        ctx: &Context<'_>,
        data: &dyn Data,
        query: Option<&QueryParams>,
    ) -> Decision {
        let path = match parse_path(path) {
            Ok(path) => path,
            Err(denial) => return Decision::Deny(denial),
        };
        let plain = QueryParams::default();
        let (steps, wild) = walk(&self.root, &path);
        let mut outcomes = Vec::new();
        for step in &steps {
            let Some(rule) = &step.node.read else {
                continue;
            };
            let env = Env {
                auth: ctx.auth,
                now: ctx.now,
                before: data,
                after: None,
                path: &path[..step.depth],
                wild: &wild[..step.bound],
                query: Some(query.unwrap_or(&plain)),
            };
            let result = evaluate(&rule.expr, &env);
            if result == Ok(true) {
                return Decision::Allow;
            }
            outcomes.push(outcome(rule, &result));
        }
        Decision::Deny(no_grant("read", &path, &outcomes))
    }

    /// May `ctx` set `value` at `path` (`None` or `null` deletes) in `data`?
    pub fn can_write(
        &self,
        path: &str,
        value: Option<&Value>,
        ctx: &Context<'_>,
        data: &dyn Data,
    ) -> Decision {
        let path = match parse_path(path) {
            Ok(path) => path,
            Err(denial) => return Decision::Deny(denial),
        };
        let write = Write {
            path,
            value: value.and_then(|v| normalize(v, Some(ctx.now))),
        };
        self.decide_writes(&[write], ctx, data)
    }

    /// May `ctx` update `path` with `children` (relative paths such as `"a"` or `"a/b"` to
    /// their new values, `null` deleting) in `data`? Every path must be writable and every
    /// `.validate` rule hold in the tree after all of them. An empty update changes nothing
    /// and is allowed; paths that overlap (`a` and `a/b`) are refused, as Firebase does.
    pub fn can_update(
        &self,
        path: &str,
        children: &Map<String, Value>,
        ctx: &Context<'_>,
        data: &dyn Data,
    ) -> Decision {
        match self.update_writes(path, children, ctx.now) {
            Ok(writes) => self.decide_writes(&writes, ctx, data),
            Err(denial) => Decision::Deny(denial),
        }
    }

    fn update_writes(
        &self,
        path: &str,
        children: &Map<String, Value>,
        now: i64,
    ) -> Result<Vec<Write>, Denial> {
        let base = parse_path(path)?;
        let mut writes = Vec::with_capacity(children.len());
        for (relative, value) in children {
            let mut full = base.clone();
            full.extend(parse_path(relative)?);
            writes.push(Write {
                path: full,
                value: normalize(value, Some(now)),
            });
        }
        let mut sorted: Vec<&Vec<String>> = writes.iter().map(|w| &w.path).collect();
        sorted.sort();
        for pair in sorted.windows(2) {
            if pair[1].starts_with(pair[0]) {
                return Err(Denial {
                    path: display(&base),
                    rule: None,
                    message: format!(
                        "invalid update: {} is at or above {}",
                        display(pair[0]),
                        display(pair[1])
                    ),
                });
            }
        }
        Ok(writes)
    }

    fn decide_writes(&self, writes: &[Write], ctx: &Context<'_>, data: &dyn Data) -> Decision {
        let after = After {
            before: data,
            writes,
        };
        let check = Check {
            ctx,
            before: data,
            after: &after,
        };
        for write in writes {
            if let Err(denial) = check.granted(&self.root, &write.path) {
                return Decision::Deny(denial);
            }
        }
        let mut validated = HashSet::new();
        for write in writes {
            if let Err(denial) = check.valid(&self.root, &write.path, &mut validated) {
                return Decision::Deny(denial);
            }
        }
        Decision::Allow
    }
}

fn no_grant(access: &str, path: &[String], outcomes: &[String]) -> Denial {
    let evaluated = if outcomes.is_empty() {
        format!("no .{access} rule applies")
    } else {
        outcomes.join("; ")
    };
    Denial {
        path: display(path),
        rule: None,
        message: format!("no .{access} rule allowed the {access} ({evaluated})"),
    }
}

/// One write request being checked.
struct Check<'a> {
    ctx: &'a Context<'a>,
    before: &'a dyn Data,
    after: &'a After<'a>,
}

impl Check<'_> {
    fn evaluate(
        &self,
        rule: &Rule,
        path: &[String],
        wild: &[(String, String)],
    ) -> Result<bool, String> {
        let env = Env {
            auth: self.ctx.auth,
            now: self.ctx.now,
            before: self.before,
            after: Some(self.after),
            path,
            wild,
            query: None,
        };
        evaluate(&rule.expr, &env)
    }

    /// Some `.write` rule from the root down to `path` is true.
    fn granted(&self, root: &Node, path: &[String]) -> Result<(), Denial> {
        let (steps, wild) = walk(root, path);
        let mut outcomes = Vec::new();
        for step in &steps {
            let Some(rule) = &step.node.write else {
                continue;
            };
            let result = self.evaluate(rule, &path[..step.depth], &wild[..step.bound]);
            if result == Ok(true) {
                return Ok(());
            }
            outcomes.push(outcome(rule, &result));
        }
        Err(no_grant("write", path, &outcomes))
    }

    /// Every `.validate` rule on the way to `path` and in the value written there holds.
    /// `validated` holds the locations already validated by another path of an update.
    fn valid(
        &self,
        root: &Node,
        path: &[String],
        validated: &mut HashSet<Vec<String>>,
    ) -> Result<(), Denial> {
        let (steps, mut wild) = walk(root, path);
        for step in &steps {
            let location = &path[..step.depth];
            if step.node.validate.is_none() || validated.contains(location) {
                continue;
            }
            validated.insert(location.to_vec());
            if self.after.exists(location) {
                self.validate(step.node, location, &wild[..step.bound])?;
            }
        }
        let reached = steps.last().filter(|step| step.depth == path.len());
        if let (Some(step), Some(value)) = (reached, self.after.get(path)) {
            let mut location = path.to_vec();
            self.validate_below(step.node, &mut location, &value, &mut wild)?;
        }
        Ok(())
    }

    /// The `.validate` rules of every location inside the written `value` that has rules.
    fn validate_below(
        &self,
        node: &Node,
        location: &mut Vec<String>,
        value: &Value,
        wild: &mut Vec<(String, String)>,
    ) -> Result<(), Denial> {
        let Value::Object(children) = value else {
            return Ok(());
        };
        for (key, child_value) in children {
            let Some((child, variable)) = node.child(key) else {
                continue;
            };
            location.push(key.clone());
            if let Some(variable) = variable {
                wild.push((variable.to_string(), key.clone()));
            }
            let result = self
                .validate(child, location, wild)
                .and_then(|()| self.validate_below(child, location, child_value, wild));
            if variable.is_some() {
                wild.pop();
            }
            location.pop();
            result?;
        }
        Ok(())
    }

    fn validate(
        &self,
        node: &Node,
        location: &[String],
        wild: &[(String, String)],
    ) -> Result<(), Denial> {
        let Some(rule) = &node.validate else {
            return Ok(());
        };
        match self.evaluate(rule, location, wild) {
            Ok(true) => Ok(()),
            result => Err(Denial {
                path: display(location),
                rule: Some(rule.at.clone()),
                message: format!(
                    "{} (`{}`) refused the new data at {}",
                    outcome(rule, &result),
                    rule.source,
                    display(location)
                ),
            }),
        }
    }
}
