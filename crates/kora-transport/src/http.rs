//! HTTP pieces every protocol's routes share: a JSON body read within the body limit, the
//! mutation size limit, and the answer for a path no route serves.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use kora_core::{Mutation, Value};
use kora_engine::Error;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body, refused with `too_large` when its declared length (or its actual
/// length) exceeds `limits.max_body_bytes` — before more than that is read.
pub struct JsonBody(pub Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.limits.max_body_bytes;
        let too_large = || Error::too_large(format!("the body exceeds {limit} bytes"));
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(too_large().into());
        }
        let limited = http_body_util::Limited::new(request.into_body(), limit);
        let bytes = match http_body_util::BodyExt::collect(limited).await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Err(too_large().into())
            }
            Err(error) => {
                return Err(Error::bad_request(format!("reading the body: {error}")).into())
            }
        };
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")).into())
    }
}

/// Refuses a mutation with more leaves than `limits.max_leaves_per_mutation`.
pub fn check_size(state: &AppState, mutation: &Mutation) -> Result<(), Error> {
    let limit = state.config.limits.max_leaves_per_mutation;
    let leaves = mutation.leaf_count();
    if leaves > limit {
        return Err(Error::too_large(format!(
            "the mutation has {leaves} leaves; the limit is {limit}"
        )));
    }
    Ok(())
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError(Error::not_found("no such endpoint"))
}
