//! A loaded rules file: rules per path pattern, and how a path finds the rule that speaks
//! for it.
//!
//! For every clause the **most specific** pattern that matches a path and has that clause
//! decides (see `crate::pattern`). `read` and `write` are also inherited: a path without its
//! own rule is governed by its **nearest** ancestor that has one ([`Rules::nearest`]).
//!
//! The decisions themselves live in `crate::write` and `crate::read`.

use std::sync::Arc;

use crate::error::{LoadError, Location, RuleRef};
use crate::expr::{Env, Expression, Stop};
use crate::limits::MAX_RULES_FILE_BYTES;
use crate::pattern::{Captures, Pattern};
use crate::template::Template;

/// One expression of a rule, with where it was written.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub expression: Expression,
    /// `read`, `write`, `validate`, `set.created`, `index[0].value`, `effects[1].when`, …
    pub name: String,
    pub location: Location,
}

impl Clause {
    pub(crate) fn eval(&self, env: &Env) -> Result<kora_core::Value, Stop> {
        self.expression.eval(env)
    }

    pub(crate) fn rule_ref(&self, pattern: &Pattern) -> RuleRef {
        RuleRef {
            pattern: pattern.to_string(),
            clause: self.name.clone(),
            expression: self.expression.source().to_string(),
            location: self.location.clone(),
        }
    }
}

/// A derived write: `path` filled from a node's state, holding `value`.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub path: Template,
    /// `index[0].path`, for refusals that name the template.
    pub path_clause: String,
    pub path_location: Location,
    pub value: Clause,
}

impl IndexEntry {
    pub(crate) fn path_ref(&self, pattern: &Pattern) -> RuleRef {
        RuleRef {
            pattern: pattern.to_string(),
            clause: self.path_clause.clone(),
            expression: self.path.source().to_string(),
            location: self.path_location.clone(),
        }
    }
}

/// A webhook to call after a node changes, when `when` holds.
#[derive(Debug, Clone)]
pub(crate) struct EffectRule {
    pub url: String,
    pub when: Option<Clause>,
    pub body: Option<Clause>,
}

/// Everything the file says about one pattern.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub pattern: Pattern,
    pub location: Location,
    pub read: Option<Clause>,
    pub write: Option<Clause>,
    pub validate: Option<Clause>,
    pub set: Vec<(String, Clause)>,
    pub index: Vec<IndexEntry>,
    pub effects: Vec<EffectRule>,
}

/// Which part of a rule a decision looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Has {
    Read,
    Write,
    Validate,
    Set,
    Index,
    Effects,
}

impl Rule {
    pub(crate) fn has(&self, what: Has) -> bool {
        match what {
            Has::Read => self.read.is_some(),
            Has::Write => self.write.is_some(),
            Has::Validate => self.validate.is_some(),
            Has::Set => !self.set.is_empty(),
            Has::Index => !self.index.is_empty(),
            Has::Effects => !self.effects.is_empty(),
        }
    }
}

/// A rule matched at a path, with what its pattern captured.
#[derive(Debug, Clone)]
pub(crate) struct Match<'r> {
    pub rule: &'r Rule,
    pub captures: Captures,
}

/// A loaded rules file, or the allow-all mode of a server without one.
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    allow_all: bool,
}

impl Rules {
    /// Parses the text of a rules file. `file` names it in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Rules, LoadError> {
        let rules = crate::load::load(Arc::from(file), text)?;
        Ok(Rules {
            rules,
            allow_all: false,
        })
    }

    /// Reads and parses a rules file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Rules, LoadError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |source| LoadError::Io {
            file: name.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_RULES_FILE_BYTES as u64 {
            return Err(io(std::io::Error::other(format!(
                "the file is {size} bytes; the limit is {MAX_RULES_FILE_BYTES}"
            ))));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Rules::parse(&name, &text)
    }

    /// Every read and write allowed, nothing validated, set or derived: for a server
    /// without a rules file (loopback only, or `--insecure`).
    pub fn allow_all() -> Rules {
        Rules {
            rules: Vec::new(),
            allow_all: true,
        }
    }

    /// True in allow-all mode.
    pub fn allows_all(&self) -> bool {
        self.allow_all
    }

    /// The patterns of the file, in file order.
    pub fn patterns(&self) -> impl Iterator<Item = &Pattern> {
        self.rules.iter().map(|r| &r.pattern)
    }

    /// The most specific rule matching `path` exactly that has `what`.
    pub(crate) fn most_specific<S: AsRef<str>>(&self, path: &[S], what: Has) -> Option<Match<'_>> {
        self.rules
            .iter()
            .filter(|rule| rule.has(what))
            .filter_map(|rule| rule.pattern.matches(path).map(|c| (rule, c)))
            .max_by(|(a, _), (b, _)| a.pattern.rank(path.len()).cmp(&b.pattern.rank(path.len())))
            .map(|(rule, captures)| Match { rule, captures })
    }

    /// The rule with `what` at `path` or its nearest ancestor having one, with the depth of
    /// the node it matched.
    pub(crate) fn nearest<S: AsRef<str>>(
        &self,
        path: &[S],
        what: Has,
    ) -> Option<(Match<'_>, usize)> {
        (0..=path.len())
            .rev()
            .find_map(|end| self.most_specific(&path[..end], what).map(|m| (m, end)))
    }

    /// True when some rule with `what` could match a path strictly beneath `path`.
    pub(crate) fn may_have_beneath<S: AsRef<str>>(&self, path: &[S], what: Has) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.has(what) && rule.pattern.may_match_beneath(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse("test.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn segs(text: &str) -> Vec<&str> {
        text.split('/').filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn the_most_specific_pattern_decides() {
        let r = rules(
            "rules:\n  a/$x:\n    read: 'false'\n  a/b:\n    read: 'true'\n  a/**:\n    read: 'null'\n",
        );
        let pick = |p: &str| {
            r.most_specific(&segs(p), Has::Read)
                .map(|m| m.rule.pattern.to_string())
        };
        assert_eq!(pick("a/b").as_deref(), Some("a/b"));
        assert_eq!(pick("a/c").as_deref(), Some("a/$x"));
        assert_eq!(pick("a/c/d").as_deref(), Some("a/**"));
        assert_eq!(pick("a").as_deref(), Some("a/**"));
        assert_eq!(pick("z"), None);
    }

    #[test]
    fn nearest_walks_up_to_the_first_rule_with_the_clause() {
        let r = rules("rules:\n  a:\n    write: 'true'\n  a/$x/c:\n    read: 'true'\n");
        let (m, depth) = r.nearest(&segs("a/b/c/d"), Has::Write).unwrap();
        assert_eq!((m.rule.pattern.to_string(), depth), ("a".to_string(), 1));
        let (m, depth) = r.nearest(&segs("a/b/c/d"), Has::Read).unwrap();
        assert_eq!(
            (m.rule.pattern.to_string(), depth),
            ("a/$x/c".to_string(), 3)
        );
        assert_eq!(m.captures["x"], "b");
        assert!(r.nearest(&segs("z"), Has::Write).is_none());
        assert!(r.may_have_beneath(&segs("a"), Has::Read));
        assert!(!r.may_have_beneath(&segs("a/b/c"), Has::Read));
    }

    #[test]
    fn allow_all_has_no_rules() {
        let r = Rules::allow_all();
        assert!(r.allows_all());
        assert_eq!(r.patterns().count(), 0);
        assert!(!rules("rules: {}\n").allows_all());
    }

    #[test]
    fn loading_a_missing_file_names_it() {
        let error = Rules::load("/nonexistent/kora.rules.yaml").unwrap_err();
        assert!(error.to_string().contains("/nonexistent/kora.rules.yaml"));
    }
}
