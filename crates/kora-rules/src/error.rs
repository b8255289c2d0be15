//! What can go wrong: a rules file that does not load ([`LoadError`], every problem with its
//! file, line, column and expression), and a decision that refuses ([`Denial`], with a code
//! a program can branch on, the path and the rule) or cannot be made yet ([`NeedsData`]).

use std::fmt;
use std::sync::Arc;

use kora_core::Path;

/// Where something is in a rules file. Lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One thing wrong with a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// The offending expression or template, when the problem is in one.
    pub expression: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some(expression) = &self.expression {
            write!(f, " in `{expression}`")?;
        }
        Ok(())
    }
}

/// A rules file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read the rules file: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found (up to `MAX_REPORTED_PROBLEMS`), in file order.
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl LoadError {
    /// The problems, empty for an I/O error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            LoadError::Invalid(problems) => problems,
            LoadError::Io { .. } => &[],
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a request was refused; the codes are those of the protocol (docs/design.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A `read` or `write` rule is false, or no rule grants access.
    PermissionDenied,
    /// A `validate` rule is false, or a server-computed value could not be computed.
    ValidationFailed,
    /// The request touches more rule nodes than one decision may check.
    TooLarge,
}

impl Code {
    /// The wire name: `permission_denied`, `validation_failed`, `too_large`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Code::PermissionDenied => "permission_denied",
            Code::ValidationFailed => "validation_failed",
            Code::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule behind a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The pattern of the rule, as written (`todos/$uid/$id`).
    pub pattern: String,
    /// The clause: `read`, `write`, `validate`, `set.created`, `index[0].path`, …
    pub clause: String,
    /// The expression's text.
    pub expression: String,
    pub location: Location,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} ({}): `{}`",
            self.clause, self.pattern, self.location, self.expression
        )
    }
}

/// A refusal: the code, the node whose rule refused, the rule (none when no rule grants
/// access: default deny) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} at {path}: {}", self.explain())]
pub struct Denial {
    pub code: Code,
    pub path: Path,
    pub rule: Option<RuleRef>,
    pub reason: String,
}

impl Denial {
    fn explain(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{rule} {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// The decision needs values the lookup does not have. Load these paths (each whole
/// subtree) and decide again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rules need data not loaded yet at: {}", self.paths.iter().map(Path::to_string).collect::<Vec<_>>().join(", "))]
pub struct NeedsData {
    /// Minimal: no path lies beneath another.
    pub paths: Vec<Path>,
}

/// A decision that did not allow: refused, or not decidable without more data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Boxed: a denial is large, and errors travel through every step of a decision.
    #[error(transparent)]
    Denied(Box<Denial>),
    #[error(transparent)]
    NeedsData(NeedsData),
}

impl CheckError {
    /// The denial, if this is one.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            CheckError::Denied(denial) => Some(denial),
            CheckError::NeedsData(_) => None,
        }
    }
}

impl From<NeedsData> for CheckError {
    fn from(needs: NeedsData) -> Self {
        CheckError::NeedsData(needs)
    }
}

impl From<Denial> for CheckError {
    fn from(denial: Denial) -> Self {
        CheckError::Denied(Box::new(denial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location() -> Location {
        Location {
            file: Arc::from("kora.rules.yaml"),
            line: 3,
            column: 12,
        }
    }

    #[test]
    fn problems_read_file_line_column_message_expression() {
        let problem = Problem {
            location: location(),
            expression: Some("dta.x".into()),
            message: "unknown name `dta`".into(),
        };
        assert_eq!(
            problem.to_string(),
            "kora.rules.yaml:3:12: unknown name `dta` in `dta.x`"
        );
        let error = LoadError::Invalid(vec![problem.clone(), problem]);
        assert_eq!(error.to_string().lines().count(), 2);
        assert_eq!(error.problems().len(), 2);
    }

    #[test]
    fn codes_have_their_wire_names() {
        assert_eq!(Code::PermissionDenied.as_str(), "permission_denied");
        assert_eq!(Code::ValidationFailed.to_string(), "validation_failed");
        assert_eq!(Code::TooLarge.as_str(), "too_large");
    }

    #[test]
    fn denials_read_well_with_and_without_a_rule() {
        let path = Path::parse("todos/u1").unwrap();
        let default = Denial {
            code: Code::PermissionDenied,
            path: path.clone(),
            rule: None,
            reason: "no `write` rule at this path or above it".into(),
        };
        assert_eq!(
            default.to_string(),
            "permission_denied at todos/u1: no `write` rule at this path or above it"
        );
        let ruled = Denial {
            rule: Some(RuleRef {
                pattern: "todos/$uid".into(),
                clause: "write".into(),
                expression: "auth.sub == $uid".into(),
                location: location(),
            }),
            reason: "is false".into(),
            ..default
        };
        let error = CheckError::from(ruled);
        assert_eq!(
            error.to_string(),
            "permission_denied at todos/u1: write of todos/$uid (kora.rules.yaml:3:12): `auth.sub == $uid` is false"
        );
        assert!(error.denial().is_some());
        let needs = CheckError::from(NeedsData {
            paths: vec![path.clone(), Path::parse("a").unwrap()],
        });
        assert_eq!(
            needs.to_string(),
            "the rules need data not loaded yet at: todos/u1, a"
        );
        assert!(needs.denial().is_none());
    }
}
