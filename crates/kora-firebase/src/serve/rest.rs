//! Firebase's REST API: `GET/PUT/PATCH/POST/DELETE /{path}.json` with Firebase's answers,
//! query parameters, ETags, and event streams (`Accept: text/event-stream`, see
//! [`crate::serve::stream`]). Errors are Firebase's `{"error": "…"}` (docs/firebase-protocol.md §6).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use kora_core::Path;
use kora_engine::{Code, Context, Error};
use serde_json::{json, Value};

use crate::query::FbQuery;
use crate::write::{self, Expect, Refusal};
use crate::FirebaseState;
use crate::{node, Namespace};
use kora_transport::http::JsonBody;

/// An error as Firebase's REST API answers it.
pub struct RestError {
    status: StatusCode,
    message: String,
    /// The current value and its ETag, for a failed `if-match` (412).
    current: Option<(Value, String)>,
}

impl From<Error> for RestError {
    fn from(error: Error) -> Self {
        let status = match error.code {
            // Firebase answers 401 for both: a `.validate` failure is a denial too.
            Code::PermissionDenied | Code::ValidationFailed => StatusCode::UNAUTHORIZED,
            code => kora_transport::error::status(code),
        };
        RestError {
            status,
            message: error.message,
            current: None,
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        match self.current {
            Some((value, etag)) => {
                let mut response = json_response(self.status, &value, false);
                set_etag(response.headers_mut(), &etag);
                response
            }
            None => json_response(self.status, &json!({"error": self.message}), false),
        }
    }
}

fn json_response(status: StatusCode, value: &Value, pretty: bool) -> Response {
    let body = match pretty {
        true => serde_json::to_string_pretty(value).unwrap_or_default(),
        false => value.to_string(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn set_etag(headers: &mut HeaderMap, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
}

/// `/{path}.json` is Firebase REST; any other path the core does not serve is not found.
pub async fn route(
    State(state): State<FirebaseState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let firebase = state.settings.enabled && request.uri().path().ends_with(".json");
    if !firebase {
        return kora_transport::http::not_found().await.into_response();
    }
    match serve(state, peer, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// A REST request's parameters, in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn bad(message: impl Into<String>) -> RestError {
    Error::bad_request(message.into()).into()
}

async fn serve(
    state: FirebaseState,
    peer: SocketAddr,
    request: Request,
) -> Result<Response, RestError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
            .map_err(|e| bad(format!("query string: {e}")))?;
    let params = Params(params);
    let raw = request.uri().path().trim_end_matches(".json");
    let text = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("the path is not UTF-8"))?;
    if text.trim_start_matches('/').starts_with(".settings") {
        // Firebase's rules upload: Kora's rules are its own file (docs/firebase.md).
        return Err(Error::not_found(
            "Firebase rules are not read: Kora's rules file applies (docs/firebase.md)",
        )
        .into());
    }
    let namespace = Namespace::new(&state.settings, params.get("ns"))?;
    let path = namespace.path(&text, &state.config.path_limits())?;
    let headers = request.headers().clone();
    let token = kora_transport::auth::presented(&headers, None)
        .or_else(|| params.get("auth"))
        .or_else(|| params.get("access_token"));
    let (ctx, expires) = crate::serve::auth::context(&state, token)?;
    let mut method = request.method().clone();
    if method == Method::POST {
        if let Some(over) = headers.get("x-http-method-override") {
            method = Method::from_bytes(over.as_bytes()).map_err(|_| bad("bad method override"))?;
        }
    }
    let silent = params.get("print") == Some("silent");
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if method == Method::GET && wants_stream {
        return Ok(crate::serve::stream::open(state, ctx, expires, peer, path).await?);
    }
    let outcome = match method {
        Method::GET => get(&state, &ctx, &path, &params, &headers).await?,
        Method::DELETE => put(&state, &ctx, &path, Value::Null, &headers).await?,
        _ => {
            let JsonBody(body) = JsonBody::from_request(request, &state)
                .await
                .map_err(|e| RestError::from(e.0))?;
            match method {
                Method::PUT => put(&state, &ctx, &path, body, &headers).await?,
                Method::PATCH => patch(&state, &ctx, &path, body).await?,
                Method::POST => post(&state, &ctx, &path, body).await?,
                _ => return Err(bad(format!("method {method} is not supported"))),
            }
        }
    };
    if silent {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(outcome.into_response(&params))
}

/// A successful answer: its value and, when asked for, its ETag.
struct Answer {
    value: Value,
    etag: Option<String>,
    not_modified: bool,
}

impl Answer {
    fn into_response(self, params: &Params) -> Response {
        if self.not_modified {
            return StatusCode::NOT_MODIFIED.into_response();
        }
        let pretty = params.get("print") == Some("pretty");
        let mut response = match params.get("callback") {
            Some(callback) if is_identifier(callback) => {
                let body = format!("{callback}({});", self.value);
                let mut response = body.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/javascript; charset=utf-8"),
                );
                response
            }
            _ => json_response(StatusCode::OK, &self.value, pretty),
        };
        if let Some(etag) = &self.etag {
            set_etag(response.headers_mut(), etag);
        }
        response
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
}

fn wants_etag(headers: &HeaderMap) -> bool {
    headers
        .get("x-firebase-etag")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

async fn get(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Answer, RestError> {
    let query = FbQuery::from_rest(&params.0).map_err(bad)?;
    let shallow = params.get("shallow") == Some("true");
    if shallow && query.is_some() {
        return Err(bad("shallow cannot be combined with a query"));
    }
    let value = crate::index::read(state, ctx, path, query.as_ref()).await?;
    let etag = write::etag(value.as_ref());
    let mut value = match shallow {
        true => Some(node::shallow(value.as_ref())),
        false => value,
    };
    if params.get("format") != Some("export") {
        value = value.map(without_priorities);
    }
    let not_modified = header_text(headers, "if-none-match") == Some(etag.as_str());
    Ok(Answer {
        value: value.unwrap_or(Value::Null),
        etag: wants_etag(headers).then_some(etag),
        not_modified,
    })
}

/// A value as Firebase's REST API shows it without `format=export`: no priorities, and
/// objects whose keys are mostly the integers 0..n as arrays (the SDK's `val()` rule: every
/// key an integer, the largest below twice their number).
pub fn without_priorities(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if let Some(inner) = map.remove(".value") {
                return inner;
            }
            map.remove(".priority");
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, without_priorities(v)))
                .collect();
            as_array(map)
        }
        other => other,
    }
}

fn as_array(map: serde_json::Map<String, Value>) -> Value {
    let index = |key: &str| {
        let integer =
            key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
        integer.then(|| key.parse::<usize>().ok()).flatten()
    };
    let max = map
        .keys()
        .map(|k| index(k))
        .try_fold(0usize, |max, i| i.map(|i| max.max(i)));
    match max {
        Some(max) if !map.is_empty() && max < 2 * map.len() => {
            let mut array = vec![Value::Null; max + 1];
            for (key, value) in map {
                if let Some(i) = index(&key) {
                    array[i] = value;
                }
            }
            Value::Array(array)
        }
        _ => Value::Object(map),
    }
}

async fn put(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    body: Value,
    headers: &HeaderMap,
) -> Result<Answer, RestError> {
    let expect = match header_text(headers, "if-match") {
        Some(etag) => Expect::Hash(etag.trim_matches('"').to_string()),
        None => Expect::Anything,
    };
    let conditional = expect != Expect::Anything;
    match write::put(state, ctx, path, body, expect).await {
        Ok(written) => Ok(Answer {
            etag: (conditional || wants_etag(headers)).then(|| write::etag(written.value.as_ref())),
            value: written.value.map(without_priorities).unwrap_or(Value::Null),
            not_modified: false,
        }),
        Err(Refusal::Stale { current }) => Err(RestError {
            status: StatusCode::PRECONDITION_FAILED,
            message: "ETag mismatch".into(),
            current: Some((
                current.clone().unwrap_or(Value::Null),
                write::etag(current.as_ref()),
            )),
        }),
        Err(Refusal::Error(error)) => Err(error.into()),
    }
}

async fn patch(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    body: Value,
) -> Result<Answer, RestError> {
    let Value::Object(children) = body.clone() else {
        return Err(bad("PATCH takes an object"));
    };
    write::update(state, ctx, path, children).await?;
    Ok(Answer {
        value: body,
        etag: None,
        not_modified: false,
    })
}

async fn post(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    body: Value,
) -> Result<Answer, RestError> {
    let name = write::push_id(state);
    let child = path.child(name.clone()).map_err(Error::from)?;
    match write::put(state, ctx, &child, body, Expect::Anything).await {
        Ok(_) => Ok(Answer {
            value: json!({"name": name}),
            etag: None,
            not_modified: false,
        }),
        Err(Refusal::Error(error)) => Err(error.into()),
        Err(Refusal::Stale { .. }) => {
            Err(Error::internal("unconditional write found stale").into())
        }
    }
}
