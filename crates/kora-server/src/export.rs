//! `GET /v1/export/{path}`: the stored leaves at and beneath a path as JSON lines, read page
//! by page so that a tree of any size streams in constant memory. `kora export` reads it and
//! `kora import` writes the same lines back.
//!
//! Each line is `{"path": "a/b", "value": 1}`, in key order; the last line is
//! `{"end": {"leaves": N}}`, so a reader can tell a complete export from a cut connection. An
//! error after the first page ends the stream with `{"error": {"code", "message"}}` instead.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use kora_core::{Path, Value};
use kora_engine::{Context, Error, Kora};
use serde_json::json;

use crate::error::ApiError;
use crate::http::data_path;
use crate::state::AppState;

/// Leaves read from the store per page.
pub const EXPORT_PAGE: usize = 1_000;

/// The media type of the stream.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Where a stream stands between pages.
struct Cursor {
    kora: Kora,
    ctx: Context,
    under: Path,
    page: Vec<(Path, Value)>,
    sent: u64,
    finished: bool,
}

pub async fn export(
    State(state): State<AppState>,
    path: Option<UrlPath<String>>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(other) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "after" | "token"))
    {
        return Err(Error::bad_request(format!("unknown parameter {other:?}")).into());
    }
    let under = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    let after = match params.get("after") {
        Some(text) => Some(data_path(&state, Some(text))?),
        None => None,
    };
    let ctx = state.context_for(&headers, params.get("token").map(String::as_str))?;
    // The first page is read before answering, so a refusal gets its own status.
    let kora = state.kora.clone();
    let page = kora
        .export(&ctx, &under, after.as_ref(), EXPORT_PAGE)
        .await?;
    let cursor = Cursor {
        kora,
        ctx,
        under,
        page,
        sent: 0,
        finished: false,
    };
    let stream = futures_util::stream::unfold(cursor, |cursor| async move {
        next_chunk(cursor)
            .await
            .map(|(bytes, cursor)| (Ok::<Bytes, std::convert::Infallible>(bytes), cursor))
    });
    Ok((
        [(header::CONTENT_TYPE, JSON_LINES)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The lines of the current page (reading the next one), then the end line, then nothing.
async fn next_chunk(mut cursor: Cursor) -> Option<(Bytes, Cursor)> {
    if cursor.finished {
        return None;
    }
    if cursor.page.is_empty() {
        cursor.finished = true;
        return Some((line(&json!({"end": {"leaves": cursor.sent}})), cursor));
    }
    let mut text = Vec::new();
    for (path, value) in &cursor.page {
        let entry = json!({"path": path.to_string(), "value": value});
        // Serialising a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut text, &entry);
        text.push(b'\n');
    }
    cursor.sent += cursor.page.len() as u64;
    let full = cursor.page.len() == EXPORT_PAGE;
    let last = cursor.page.pop().map(|(path, _)| path);
    cursor.page = Vec::new();
    if full {
        match cursor
            .kora
            .export(&cursor.ctx, &cursor.under, last.as_ref(), EXPORT_PAGE)
            .await
        {
            Ok(page) => cursor.page = page,
            Err(error) => {
                text.extend_from_slice(&line(&json!({"error": {
                    "code": error.code.as_str(),
                    "message": error.message,
                }})));
                cursor.finished = true;
            }
        }
    }
    Some((Bytes::from(text), cursor))
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string().into_bytes();
    text.push(b'\n');
    Bytes::from(text)
}
