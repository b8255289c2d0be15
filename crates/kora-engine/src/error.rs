//! Errors as codes a program can branch on (DESIGN.md §9), each with a message for people.

use std::fmt;

use kora_core::{MutationError, PathError};
use kora_store::StoreError;
use serde::{Deserialize, Serialize};

/// What kind of failure: the transports map each code to its HTTP status once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    BadRequest,
    InvalidPath,
    TooLarge,
    PermissionDenied,
    ValidationFailed,
    NotFound,
    Conflict,
    Unavailable,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::InvalidPath => "invalid_path",
            Code::TooLarge => "too_large",
            Code::PermissionDenied => "permission_denied",
            Code::ValidationFailed => "validation_failed",
            Code::NotFound => "not_found",
            Code::Conflict => "conflict",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its code. Interceptors and handlers return these to refuse a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// For a write refused because its conditions did not hold: which, and what is there now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Box<Conflict>>,
}

/// What a `conflict` refusal tells the writer (docs/protocol.md, "Conditional writes").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The indexes of the write's conditions that did not hold.
    pub failed: Vec<usize>,
    /// The current values at the paths of those conditions that the writer may read.
    pub current: Vec<Current>,
    /// The last commit those values include.
    pub seq: kora_store::Seq,
}

/// The value at one path now (`null`: nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    pub path: String,
    pub value: Option<serde_json::Value>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            conflict: None,
        }
    }

    /// A write refused because of its conditions, with what is there now.
    pub fn conflict(message: impl Into<String>, conflict: Conflict) -> Self {
        Error {
            conflict: Some(Box::new(conflict)),
            ..Error::new(Code::Conflict, message)
        }
    }

    /// True for a refusal with code `conflict`.
    pub fn is_conflict(&self) -> bool {
        self.code == Code::Conflict
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::new(Code::BadRequest, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Error::new(Code::PermissionDenied, message)
    }

    pub fn validation_failed(message: impl Into<String>) -> Self {
        Error::new(Code::ValidationFailed, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(Code::NotFound, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Error::new(Code::TooLarge, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Code::Internal, message)
    }
}

impl From<PathError> for Error {
    fn from(error: PathError) -> Self {
        Error::new(Code::InvalidPath, error.to_string())
    }
}

impl From<MutationError> for Error {
    fn from(error: MutationError) -> Self {
        let code = match error {
            MutationError::InvalidKey { .. } => Code::InvalidPath,
            _ => Code::BadRequest,
        };
        Error::new(code, error.to_string())
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        let code = match error {
            StoreError::Unavailable(_) | StoreError::Closed | StoreError::Locked { .. } => {
                Code::Unavailable
            }
            StoreError::TooLarge { .. } => Code::TooLarge,
            StoreError::NoSuchEffect(_) => Code::NotFound,
            StoreError::Conflict(_) => Code::Conflict,
            _ => Code::Internal,
        };
        Error::new(code, error.to_string())
    }
}
