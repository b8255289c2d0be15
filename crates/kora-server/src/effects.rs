//! Dead letters over HTTP, for the administrator (`[auth] admin_secret`): effects that ran out
//! of tries wait in the store's outbox until someone retries or discards them.
//!
//! - `GET /v1/effects/dead?limit=N`: `{"pending", "dead", "effects": [...]}`, the counts by
//!   state and the oldest `N` dead effects (default [`DEFAULT_DEAD_LISTED`], at most
//!   [`MAX_DEAD_LISTED`]), each with its `id`, `seq`, `kind`, `payload`, `attempts` and
//!   `last_error`.
//! - `POST /v1/effects/dead/{id}/retry`: back to pending with its tries reset; the runner
//!   picks it up at once.
//! - `DELETE /v1/effects/dead/{id}`: forgotten for good.
//!
//! Both answer 404 `not_found` when no dead effect has that id (a pending effect is never
//! touched: it may be running).

use std::collections::HashMap;

use axum::extract::{Path as UrlPath, Query as UrlQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use kora_engine::Error;
use serde_json::{json, Value};

use kora_transport::error::ApiError;
use kora_transport::state::AppState;

/// Dead effects listed when the request names no `limit`.
pub const DEFAULT_DEAD_LISTED: usize = 100;

/// The most dead effects one request lists.
pub const MAX_DEAD_LISTED: usize = 1_000;

/// `GET /v1/effects/dead`.
pub async fn dead(
    State(state): State<AppState>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.require_admin(&headers, params.get("token").map(String::as_str))?;
    if let Some(other) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "limit" | "token"))
    {
        return Err(Error::bad_request(format!("unknown parameter {other:?}")).into());
    }
    let limit = match params.get("limit") {
        None => DEFAULT_DEAD_LISTED,
        Some(text) => parse_limit(text)?,
    };
    let store = state.kora.store();
    let counts = store.effect_counts().await?;
    let effects = store.dead_effects(limit).await?;
    Ok(Json(json!({
        "pending": counts.pending,
        "dead": counts.dead,
        "effects": effects,
    })))
}

fn parse_limit(text: &str) -> Result<usize, Error> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_DEAD_LISTED).contains(&n) => Ok(n),
        _ => Err(Error::bad_request(format!(
            "limit must be a whole number from 1 to {MAX_DEAD_LISTED}, not {text:?}"
        ))),
    }
}

/// A request about one dead effect: the administrator's, with a well-formed id.
pub struct DeadEffect {
    state: AppState,
    id: u64,
}

impl axum::extract::FromRequestParts<AppState> for DeadEffect {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let UrlQuery(params) =
            UrlQuery::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| Error::bad_request(e.to_string()))?;
        state.require_admin(&parts.headers, params.get("token").map(String::as_str))?;
        let UrlPath(id) = UrlPath::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::bad_request(e.to_string()))?;
        let id = id.parse().map_err(|_| {
            Error::bad_request(format!("an effect id is a whole number, not {id:?}"))
        })?;
        Ok(DeadEffect {
            state: state.clone(),
            id,
        })
    }
}

/// `POST /v1/effects/dead/{id}/retry`.
pub async fn retry(DeadEffect { state, id }: DeadEffect) -> Result<Json<Value>, ApiError> {
    state.kora.retry_dead_effect(id).await?;
    Ok(Json(json!({ "retried": id })))
}

/// `DELETE /v1/effects/dead/{id}`.
pub async fn discard(DeadEffect { state, id }: DeadEffect) -> Result<Json<Value>, ApiError> {
    state.kora.store().discard_effect(id).await?;
    Ok(Json(json!({ "discarded": id })))
}
