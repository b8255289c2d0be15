//! HTTP: `GET/PUT/PATCH/DELETE /v1/data/{path}` (query, set, merge, delete) and
//! `POST /v1/mutate`. A `GET` asking for `text/event-stream` streams changes (see `sse`).

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Path as UrlPath, Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kora_core::{Mutation, Path, PathQuery, Query, Stamp, Value};
use kora_engine::{Condition, Error, WriteRequest};
use kora_store::Commit;
use serde_json::json;

use kora_transport::error::ApiError;
use kora_transport::http::{check_size, JsonBody};
use kora_transport::state::AppState;

/// The data path of a request (`/v1/data` is the root).
pub fn data_path(state: &AppState, text: Option<&str>) -> Result<Path, Error> {
    Ok(Path::parse_with(
        text.unwrap_or(""),
        &state.config.path_limits(),
    )?)
}

/// Reads `min`, `max`, `limit`, `reverse`, `by`, `from`, `to` (and allows `since`) from
/// query parameters; `from` and `to` are JSON (`from=5`, `from="a"`).
pub fn path_query(path: Path, params: &HashMap<String, String>) -> Result<PathQuery, Error> {
    let mut query = PathQuery::new(path);
    let json = |name: &str, value: &str| {
        serde_json::from_str::<serde_json::Value>(value).map_err(|_| {
            Error::bad_request(format!(
                "{name} {value:?} is not JSON (quote a string: {name}=\"…\")"
            ))
        })
    };
    let mut by = kora_core::order::ByChild::default();
    for (key, value) in params {
        match key.as_str() {
            "by" => by.child = value.clone(),
            "from" => by.from = Some(json("from", value)?),
            "to" => by.to = Some(json("to", value)?),
            "min" => query.min = Some(value.clone()),
            "max" => query.max = Some(value.clone()),
            "limit" => {
                let limit = value
                    .parse()
                    .map_err(|_| Error::bad_request(format!("limit {value:?} is not a count")))?;
                query.limit = Some(limit);
            }
            "reverse" => query.reverse = parse_bool(value)?,
            "since" | "token" => {}
            other => return Err(Error::bad_request(format!("unknown parameter {other:?}"))),
        }
    }
    match params.contains_key("by") {
        true => query.by = Some(by),
        false if by.from.is_some() || by.to.is_some() => {
            return Err(Error::bad_request(
                "from and to bound a child value: name the child with by=",
            ))
        }
        false => {}
    }
    Ok(query)
}

fn parse_bool(value: &str) -> Result<bool, Error> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::bad_request(format!(
            "{other:?} is not true or false"
        ))),
    }
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// `GET /v1/data/{path}`: the value there (`null` when absent), or an event stream.
pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    path: Option<UrlPath<String>>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    let query = path_query(path, &params)?;
    let ctx = state.context_for(&headers, params.get("token").map(String::as_str))?;
    if wants_event_stream(&headers) {
        return crate::sse::stream(state, ctx, peer.ip(), query, &params, &headers).await;
    }
    let answer = state
        .kora
        .query(&ctx, &Query { paths: vec![query] })
        .await?;
    let value = answer
        .values
        .into_iter()
        .next()
        .flatten()
        .unwrap_or(Value::Null);
    Ok(([("kora-seq", answer.seq.to_string())], Json(value)).into_response())
}

fn committed(commit: Commit) -> Response {
    Json(json!({"seq": commit.seq, "stamp": commit.stamp})).into_response()
}

async fn write(
    state: &AppState,
    caller: &Caller,
    mutation: Mutation,
    stamp: Option<Stamp>,
    conditions: Vec<Condition>,
) -> Result<Response, ApiError> {
    check_size(state, &mutation)?;
    let ctx = state.context_for(&caller.headers, caller.token())?;
    let request = WriteRequest {
        conditions,
        ..WriteRequest::new(mutation, state.kora.stamp(stamp))
    };
    let commit = state.kora.write(&ctx, request).await?;
    Ok(committed(commit))
}

/// Who sent a write: its headers and query parameters (for the token).
pub struct Caller {
    headers: HeaderMap,
    params: HashMap<String, String>,
}

impl Caller {
    fn token(&self) -> Option<&str> {
        self.params.get("token").map(String::as_str)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let UrlQuery(params) =
            UrlQuery::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| Error::bad_request(e.to_string()))?;
        Ok(Caller {
            headers: parts.headers.clone(),
            params,
        })
    }
}

/// `PUT /v1/data/{path}`: replaces the subtree.
pub async fn put(
    State(state): State<AppState>,
    path: Option<UrlPath<String>>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    let path = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    let mutation = Mutation::set(&path, value)?;
    write(&state, &caller, mutation, None, Vec::new()).await
}

/// `PATCH /v1/data/{path}`: merges (a `null` member deletes that child).
pub async fn patch(
    State(state): State<AppState>,
    path: Option<UrlPath<String>>,
    caller: Caller,
    JsonBody(value): JsonBody,
) -> Result<Response, ApiError> {
    let path = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    if !value.is_object() {
        return Err(Error::bad_request("PATCH needs a JSON object").into());
    }
    let mutation = Mutation::merge_with(&path, value, &state.config.path_limits())?;
    write(&state, &caller, mutation, None, Vec::new()).await
}

/// `DELETE /v1/data/{path}`.
pub async fn delete(
    State(state): State<AppState>,
    path: Option<UrlPath<String>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let path = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    write(&state, &caller, Mutation::delete(&path), None, Vec::new()).await
}

/// `POST /v1/mutate`: `{"merge": …, "delete": …}` applied atomically; an optional
/// `"stamp"` field carries the client's stamp, an optional `"conditions"` list the
/// conditions it commits under (a failed one: 409 `conflict`).
pub async fn mutate(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(mut value): JsonBody,
) -> Result<Response, ApiError> {
    let mut field = |name: &str| value.as_object_mut().and_then(|m| m.remove(name));
    let stamp = match field("stamp") {
        None => None,
        Some(stamp) => Some(
            serde_json::from_value::<Stamp>(stamp)
                .map_err(|e| Error::bad_request(format!("stamp: {e}")))?,
        ),
    };
    let conditions = match field("conditions") {
        None => Vec::new(),
        Some(conditions) => serde_json::from_value::<Vec<Condition>>(conditions)
            .map_err(|e| Error::bad_request(format!("conditions: {e}")))?,
    };
    let mutation = Mutation::from_json_with(&value, &state.config.path_limits())?;
    write(&state, &caller, mutation, stamp, conditions).await
}

/// `GET /healthz`: 200 when the store answers, 503 when it does not.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let nats = state
        .kora
        .cluster_connected()
        .map(|up| if up { "connected" } else { "disconnected" });
    match state.kora.store().last_seq().await {
        Ok(seq) => Json(json!({"status": "ok", "store": "ok", "nats": nats, "seq": seq, "delivered": state.kora.delivered_seq()}))
            .into_response(),
        Err(error) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "store": error.to_string()})),
        )
            .into_response(),
    }
}
