//! Error codes: what kind of failure, for programs to branch on (docs/protocol.md, "Errors").
//! Each transport maps a code to its status once (HTTP in `kora-server`'s `error.rs`).

use std::fmt;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
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

    /// True when sending the same request again later cannot succeed (a refused write is
    /// rolled back rather than retried).
    pub fn is_permanent(self) -> bool {
        !matches!(self, Code::Unavailable | Code::Internal)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
