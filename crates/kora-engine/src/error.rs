//! Errors as codes a program can branch on (docs/design.md §9), each with a message for people.

use kora_core::{MutationError, PathError};
use kora_protocol::ErrorBody;
pub use kora_protocol::{Code, Current};
use kora_store::StoreError;
use serde::{Deserialize, Serialize};

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

    /// The error as the protocol shows it: code and message, and for a `conflict`, which
    /// conditions failed, the values now at their paths and the commit those include.
    pub fn body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(self.code, self.message.clone());
        if let Some(conflict) = &self.conflict {
            body.failed = Some(conflict.failed.clone());
            body.current = Some(conflict.current.clone());
            body.seq = Some(conflict.seq);
        }
        body
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
            StoreError::Unsupported(_) | StoreError::BadBackup(_) => Code::BadRequest,
            _ => Code::Internal,
        };
        Error::new(code, error.to_string())
    }
}
