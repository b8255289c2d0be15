//! What can go wrong when loading a rules file ([`RulesError`]), and inside one expression
//! (`ExprError`: a syntax or type error at load, found at a byte offset, which the rules
//! file's error then names with the rule it is in).

/// A rules file that does not load. [`RulesError::Invalid`] names the place in the rules,
/// e.g. `rules/users/$uid/.write`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("the rules file is {size} bytes, more than the {max} allowed (MAX_RULES_BYTES)")]
    TooLarge { size: usize, max: usize },
    #[error("the rules file is not valid JSON: {message} (line {line}, column {column})")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

impl RulesError {
    pub(crate) fn at(at: impl Into<String>, message: impl Into<String>) -> RulesError {
        RulesError::Invalid {
            at: at.into(),
            message: message.into(),
        }
    }
}

/// An expression that does not load: a syntax error, or a type error Firebase also reports
/// when rules are deployed. `offset` is a byte offset into the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub(crate) struct ExprError {
    pub offset: usize,
    pub message: String,
}

impl ExprError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            offset,
            message: message.into(),
        }
    }
}
