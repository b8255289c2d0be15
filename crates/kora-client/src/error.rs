//! What can go wrong in the client.

use kora_store::StoreError;
use serde_json::Value;

/// A client error. Server refusals keep the server's code (docs/protocol.md).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request: `code` is one of docs/protocol.md's error codes.
    /// For a conditional write's `conflict`, `conflict` holds the server's `failed`,
    /// `current` and `seq` (see [`ClientError::current`]).
    #[error("{code}: {message}")]
    Refused {
        code: String,
        message: String,
        conflict: Option<Box<serde_json::Value>>,
    },
    /// The request needs the server and the client is not connected.
    #[error("offline: {0}")]
    Offline(String),
    /// The local cache failed.
    #[error("local cache: {0}")]
    Cache(String),
    /// Input the client refuses before sending it (a bad path, a value that is not JSON).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The server said something the client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    pub(crate) fn refused(code: &str, message: &str) -> Self {
        ClientError::Refused {
            code: code.to_string(),
            message: message.to_string(),
            conflict: None,
        }
    }

    /// For a `conflict`: the value now at `path` as the server reported it (`Some(None)`:
    /// nothing there), when the path was one of the failed conditions' and readable.
    pub fn current(&self, path: &str) -> Option<Option<serde_json::Value>> {
        let ClientError::Refused {
            conflict: Some(conflict),
            ..
        } = self
        else {
            return None;
        };
        let current = conflict.get("current")?.as_array()?;
        let found = current
            .iter()
            .find(|c| c.get("path").and_then(|p| p.as_str()) == Some(path))?;
        Some(found.get("value").filter(|v| !v.is_null()).cloned())
    }

    /// The server's error code, for refusals.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when sending the same request again later cannot succeed: the write is rolled
    /// back instead of retried.
    pub fn is_permanent(&self) -> bool {
        let code = self.code().map(|code| Value::String(code.to_string()));
        code.and_then(|code| serde_json::from_value::<kora_protocol::Code>(code).ok())
            .is_some_and(kora_protocol::Code::is_permanent)
    }
}

impl From<StoreError> for ClientError {
    fn from(error: StoreError) -> Self {
        ClientError::Cache(error.to_string())
    }
}

impl From<kora_core::path::PathError> for ClientError {
    fn from(error: kora_core::path::PathError) -> Self {
        ClientError::Invalid(error.to_string())
    }
}

impl From<kora_core::mutation::MutationError> for ClientError {
    fn from(error: kora_core::mutation::MutationError) -> Self {
        ClientError::Invalid(error.to_string())
    }
}

impl From<serde_json::Error> for ClientError {
    fn from(error: serde_json::Error) -> Self {
        ClientError::Invalid(error.to_string())
    }
}
