//! One error type for every HTTP answer: each code maps to its status here, once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kora_engine::{Code, Error};
use serde_json::json;

/// An engine error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(error.into())
    }
}

/// The HTTP status for an error code.
pub fn status(code: Code) -> StatusCode {
    match code {
        Code::BadRequest | Code::InvalidPath => StatusCode::BAD_REQUEST,
        Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Conflict => StatusCode::CONFLICT,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body of an error: `{"error": {"code", "message"}}`.
pub fn body(error: &Error) -> serde_json::Value {
    json!({"error": error_json(error)})
}

/// An error as the protocol shows it: `{"code", "message"}`, and for a conditional write's
/// `conflict`, `failed` (the conditions that did not hold), `current` (the values now at their
/// paths that the caller may read) and `seq` (the commit those values include).
pub fn error_json(error: &Error) -> serde_json::Value {
    serde_json::to_value(error.body()).unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (status(self.0.code), Json(body(&self.0))).into_response()
    }
}
