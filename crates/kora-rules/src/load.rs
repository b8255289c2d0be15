//! Turns the text of a rules file into compiled rules, or into every problem found (up to
//! [`MAX_REPORTED_PROBLEMS`]), each with its file, line, column and expression.
//!
//! ```yaml
//! rules:
//!   todos/$uid/$id:
//!     read: auth.sub == $uid
//!     write: auth.sub == $uid
//!     validate: is_string(newData.text) && size(newData.text) <= 500
//!     set: {owner: auth.sub, created: "data == null ? now : data.created"}
//!     index: [{path: "todos:by-day/{string(newData.day)}/{$id}", value: "true"}]
//!     effects: [{webhook: "https://example.com/hook", when: data == null, body: newData}]
//! ```
//!
//! Every expression is compiled once, here. Unknown keys, wrong types, unknown variables or
//! captures, malformed patterns and templates, and two patterns matching the same paths are
//! all problems: a rules file either loads whole or not at all.

use std::sync::Arc;

use kora_core::path::validate_segment;

use crate::error::{LoadError, Location, Problem};
use crate::expr::{Expression, SyntaxError};
use crate::limits::{MAX_REPORTED_PROBLEMS, MAX_RULES_FILE_BYTES};
use crate::pattern::Pattern;
use crate::rules::{Clause, EffectRule, IndexEntry, Rule};
use crate::template::Template;
use crate::yaml::{self, Kind, Mark, Node, Style};

/// Loads the rules of `text`.
pub(crate) fn load(file: Arc<str>, text: &str) -> Result<Vec<Rule>, LoadError> {
    let mut loader = Loader {
        file,
        problems: Vec::new(),
    };
    let rules = loader.file(text);
    if loader.problems.is_empty() {
        Ok(rules)
    } else {
        loader.problems.truncate(MAX_REPORTED_PROBLEMS);
        Err(LoadError::Invalid(loader.problems))
    }
}

/// One item of a list of maps: its position, its node, and its known fields.
type Item<'n> = (usize, &'n Node, Vec<(&'n str, &'n Node)>);

const RULE_KEYS: [&str; 6] = ["read", "write", "validate", "set", "index", "effects"];

struct Loader {
    file: Arc<str>,
    problems: Vec<Problem>,
}

impl Loader {
    fn location(&self, at: Mark) -> Location {
        Location {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
        }
    }

    fn problem(&mut self, at: Mark, message: impl Into<String>) {
        let location = self.location(at);
        self.problems.push(Problem {
            location,
            expression: None,
            message: message.into(),
        });
    }

    fn file(&mut self, text: &str) -> Vec<Rule> {
        let start = Mark { line: 1, column: 1 };
        if text.len() > MAX_RULES_FILE_BYTES {
            self.problem(
                start,
                format!(
                    "the file is {} bytes; the limit is {MAX_RULES_FILE_BYTES}",
                    text.len()
                ),
            );
            return Vec::new();
        }
        let root = match yaml::read(text) {
            Ok(Some(root)) => root,
            Ok(None) => return Vec::new(),
            Err(e) => {
                self.problem(e.at, format!("YAML: {}", e.message));
                return Vec::new();
            }
        };
        let Some(entries) = self.map(&root, "the rules file") else {
            return Vec::new();
        };
        let mut rules = Vec::new();
        for (key, value) in entries {
            match scalar(key) {
                Some("rules") => rules = self.rules(value),
                _ => self.unknown_key(key, &["rules"]),
            }
        }
        rules
    }

    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            Kind::Map(entries) => Some(entries),
            _ => {
                self.problem(
                    node.start,
                    format!("{what} must be a map, found {}", node.describe()),
                );
                None
            }
        }
    }

    fn unknown_key(&mut self, key: &Node, known: &[&str]) {
        let name = scalar(key).unwrap_or_default();
        self.problem(
            key.start,
            format!(
                "unknown key {name:?}; expected one of: {}",
                known.join(", ")
            ),
        );
    }

    fn rules(&mut self, node: &Node) -> Vec<Rule> {
        let Some(entries) = self.map(node, "`rules`") else {
            return Vec::new();
        };
        let mut rules: Vec<Rule> = Vec::new();
        for (key, body) in entries {
            let Some(rule) = self.rule(key, body) else {
                continue;
            };
            if let Some(twin) = rules.iter().find(|r| r.pattern.same_shape(&rule.pattern)) {
                let message = format!(
                    "pattern `{}` matches the same paths as `{}` (line {}); merge them",
                    rule.pattern, twin.pattern, twin.location.line
                );
                self.problem(key.start, message);
                continue;
            }
            rules.push(rule);
        }
        rules
    }

    fn rule(&mut self, key: &Node, body: &Node) -> Option<Rule> {
        let text = scalar(key).unwrap_or_default();
        let pattern = match Pattern::parse(text) {
            Ok(pattern) => pattern,
            Err(e) => {
                self.problem(key.start, e.to_string());
                return None;
            }
        };
        let entries = self.map(body, &format!("the rule for `{text}`"))?;
        let captures = pattern.capture_names();
        let mut rule = Rule {
            pattern: pattern.clone(),
            location: self.location(key.start),
            read: None,
            write: None,
            validate: None,
            set: Vec::new(),
            index: Vec::new(),
            effects: Vec::new(),
        };
        for (key, value) in entries {
            match scalar(key).unwrap_or_default() {
                "read" => rule.read = self.clause(value, &captures, "read"),
                "write" => rule.write = self.clause(value, &captures, "write"),
                "validate" => rule.validate = self.clause(value, &captures, "validate"),
                "set" => rule.set = self.set(value, &captures),
                "index" => rule.index = self.index(value, &captures),
                "effects" => rule.effects = self.effects(value, &captures),
                _ => self.unknown_key(key, &RULE_KEYS),
            }
        }
        Some(rule)
    }

    /// Compiles the expression written at `node`.
    fn clause(&mut self, node: &Node, captures: &[&str], name: &str) -> Option<Clause> {
        let Kind::Scalar(text, _) = &node.kind else {
            self.problem(
                node.start,
                format!(
                    "`{name}` must be an expression, but YAML read {}; quote the expression",
                    node.describe()
                ),
            );
            return None;
        };
        match Expression::parse(text, captures) {
            Ok(expression) => Some(Clause {
                expression,
                name: name.to_string(),
                location: self.location(node.start),
            }),
            Err(e) => {
                self.syntax_problem(node, text, e);
                None
            }
        }
    }

    /// A problem inside the text of a scalar: placed at the offending character when the
    /// scalar lies on one line, else at the scalar.
    fn syntax_problem(&mut self, node: &Node, text: &str, error: SyntaxError) {
        let mut at = node.start;
        if node.single_line {
            let prefix = text.get(..error.offset).unwrap_or(text);
            let quote = usize::from(matches!(&node.kind, Kind::Scalar(_, Style::Quoted)));
            at.column += quote + prefix.chars().count();
        }
        let location = self.location(at);
        self.problems.push(Problem {
            location,
            expression: Some(text.to_string()),
            message: error.message,
        });
    }

    fn set(&mut self, node: &Node, captures: &[&str]) -> Vec<(String, Clause)> {
        let Some(entries) = self.map(node, "`set`") else {
            return Vec::new();
        };
        let mut fields = Vec::new();
        for (key, value) in entries {
            let field = scalar(key).unwrap_or_default();
            if let Err(e) = validate_segment(field, 0) {
                self.problem(
                    key.start,
                    format!("`set` field {field:?} is not a key: {e}"),
                );
                continue;
            }
            if let Some(clause) = self.clause(value, captures, &format!("set.{field}")) {
                fields.push((field.to_string(), clause));
            }
        }
        fields
    }

    /// The entries of a list of maps, each checked for allowed keys.
    fn entries<'n>(&mut self, node: &'n Node, what: &str, keys: &[&str]) -> Vec<Item<'n>> {
        let Kind::List(items) = &node.kind else {
            self.problem(
                node.start,
                format!("`{what}` must be a list, found {}", node.describe()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(fields) = self.map(item, &format!("`{what}[{i}]`")) else {
                continue;
            };
            let mut known = Vec::new();
            for (key, value) in fields {
                match scalar(key) {
                    Some(name) if keys.contains(&name) => known.push((name, value)),
                    _ => self.unknown_key(key, keys),
                }
            }
            out.push((i, item, known));
        }
        out
    }

    fn index(&mut self, node: &Node, captures: &[&str]) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        for (i, item, fields) in self.entries(node, "index", &["path", "value"]) {
            let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            let Some(path_node) = field("path") else {
                self.problem(item.start, format!("`index[{i}]` needs a `path`"));
                continue;
            };
            let path = self.template(path_node, captures);
            let value = match field("value") {
                Some(value) => self.clause(value, captures, &format!("index[{i}].value")),
                None => self.default_clause(item, captures, &format!("index[{i}].value"), "true"),
            };
            if let (Some(path), Some(value)) = (path, value) {
                out.push(IndexEntry {
                    path,
                    path_clause: format!("index[{i}].path"),
                    path_location: self.location(path_node.start),
                    value,
                });
            }
        }
        out
    }

    fn template(&mut self, node: &Node, captures: &[&str]) -> Option<Template> {
        let Kind::Scalar(text, _) = &node.kind else {
            self.problem(
                node.start,
                format!("`path` must be a path template, found {}", node.describe()),
            );
            return None;
        };
        match Template::parse(text, captures) {
            Ok(template) => Some(template),
            Err(e) => {
                self.syntax_problem(node, text, e);
                None
            }
        }
    }

    fn default_clause(
        &mut self,
        at: &Node,
        captures: &[&str],
        name: &str,
        source: &str,
    ) -> Option<Clause> {
        let default = Node {
            kind: Kind::Scalar(source.to_string(), Style::Plain),
            start: at.start,
            single_line: true,
        };
        self.clause(&default, captures, name)
    }

    fn effects(&mut self, node: &Node, captures: &[&str]) -> Vec<EffectRule> {
        let mut out = Vec::new();
        for (i, item, fields) in self.entries(node, "effects", &["webhook", "when", "body"]) {
            let field = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            let Some(url) = self.url(item, field("webhook"), i) else {
                continue;
            };
            let when =
                field("when").map(|n| self.clause(n, captures, &format!("effects[{i}].when")));
            let body = match field("body") {
                Some(n) => self.clause(n, captures, &format!("effects[{i}].body")),
                None => {
                    self.default_clause(item, captures, &format!("effects[{i}].body"), "newData")
                }
            };
            if when.as_ref().is_some_and(Option::is_none) || body.is_none() {
                continue;
            }
            out.push(EffectRule {
                url,
                when: when.flatten(),
                body,
            });
        }
        out
    }

    fn url(&mut self, item: &Node, node: Option<&Node>, i: usize) -> Option<String> {
        let Some(node) = node else {
            self.problem(item.start, format!("`effects[{i}]` needs a `webhook` URL"));
            return None;
        };
        match &node.kind {
            Kind::Scalar(url, _) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.clone())
            }
            _ => {
                self.problem(node.start, "`webhook` must be an http:// or https:// URL");
                None
            }
        }
    }
}

fn scalar(node: &Node) -> Option<&str> {
    match &node.kind {
        Kind::Scalar(text, _) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match load(Arc::from("kora.rules.yaml"), text) {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    fn one(text: &str) -> Problem {
        let mut all = problems(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn a_full_rule_loads() {
        let text = r#"
rules:
  todos/$uid/$id:
    read: auth.sub == $uid
    write: auth.sub == $uid
    validate: is_string(newData.text)
    set:
      owner: auth.sub
      created: "data == null ? now : data.created"
    index:
      - path: "by-owner/{$uid}/{$id}"
    effects:
      - webhook: https://example.com/hook
        when: data == null
"#;
        let rules = load(Arc::from("f"), text).unwrap();
        assert_eq!(rules.len(), 1);
        let rule = &rules[0];
        assert_eq!(rule.set.len(), 2);
        assert_eq!(rule.index[0].value.expression.source(), "true");
        assert_eq!(
            rule.effects[0].body.as_ref().unwrap().expression.source(),
            "newData"
        );
        assert_eq!(rule.write.as_ref().unwrap().location.line, 5);
    }

    #[test]
    fn empty_files_have_no_rules() {
        assert!(load(Arc::from("f"), "").unwrap().is_empty());
        assert!(load(Arc::from("f"), "rules: {}\n").unwrap().is_empty());
    }

    #[test]
    fn expression_errors_name_file_line_column_and_expression() {
        let p = one("rules:\n  todos/$uid:\n    write: auth.sub == $id\n");
        assert_eq!(p.location.to_string(), "kora.rules.yaml:3:24");
        assert_eq!(p.expression.as_deref(), Some("auth.sub == $id"));
        assert!(p.message.contains("unknown capture `$id`"));
        let p = one("rules:\n  a:\n    read: \"dta.x\"\n");
        assert_eq!(p.location.to_string(), "kora.rules.yaml:3:12");
        assert!(p.to_string().contains("in `dta.x`"), "{p}");
    }

    #[test]
    fn every_problem_is_reported() {
        let all = problems("rules:\n  a:\n    read: 1 +\n    write: (\n  b:\n    raed: true\n");
        assert_eq!(all.len(), 3, "{all:#?}");
        assert_eq!(all[2].location.line, 6);
        assert!(all[2].message.contains("unknown key \"raed\""));
    }

    #[test]
    fn structural_problems() {
        assert!(one("rulez: {}\n").message.contains("unknown key"));
        assert!(one("- a\n").message.contains("must be a map"));
        assert!(one("rules:\n  a//b:\n    read: 'true'\n")
            .message
            .contains("empty"));
        assert!(one("rules:\n  a:\n").message.contains("must be a map"));
        assert!(one("rules:\n  a:\n    read: [1]\n")
            .message
            .contains("quote the expression"));
        assert!(one("rules:\n  a:\n    read: !x\n").message.contains("tag"));
        assert!(
            one("rules:\n  a/$x:\n    read: 'true'\n  a/*:\n    read: 'true'\n")
                .message
                .contains("same paths")
        );
        assert!(one("rules:\n  a:\n    set: {'a/b': now}\n")
            .message
            .contains("not a key"));
        assert!(one("rules:\n  a:\n    index: [{value: 1}]\n")
            .message
            .contains("needs a `path`"));
        assert!(one("rules:\n  a:\n    index: [{path: 'x/{dta}'}]\n")
            .message
            .contains("unknown name"));
        assert!(one("rules:\n  a:\n    effects: [{when: 'true'}]\n")
            .message
            .contains("webhook"));
        assert!(one("rules:\n  a:\n    effects: [{webhook: ftp://x}]\n")
            .message
            .contains("URL"));
        assert!(
            one("rules:\n  a:\n    effects: [{webhook: 'https://x', then: 1}]\n")
                .message
                .contains("unknown key")
        );
        assert!(one("rules:\n  a:\n    effects: {webhook: 'https://x'}\n")
            .message
            .contains("list"));
        assert!(one("rules: [\n").message.starts_with("YAML"));
    }

    #[test]
    fn yaml_literals_are_expressions() {
        let rules = load(
            Arc::from("f"),
            "rules:\n  a:\n    read: true\n    write: false\n",
        )
        .unwrap();
        assert_eq!(rules[0].read.as_ref().unwrap().expression.source(), "true");
    }

    #[test]
    fn the_problem_list_is_bounded() {
        let mut text = String::from("rules:\n");
        for i in 0..(MAX_REPORTED_PROBLEMS + 10) {
            text.push_str(&format!("  p{i}:\n    read: 'nope'\n"));
        }
        assert_eq!(problems(&text).len(), MAX_REPORTED_PROBLEMS);
    }
}
