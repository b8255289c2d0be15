//! `GET /v1/export/{path}`: the stored leaves at and beneath a path as JSON lines, read page
//! by page so that a tree of any size streams in constant memory. `kora export` reads it and
//! `kora import` writes the same lines back.
//!
//! Each line is `{"path": "a/b", "value": 1}`, in key order; the last line is
//! `{"end": {"leaves": N}}`, so a reader can tell a complete export from a cut connection. An
//! error after the first page ends the stream with `{"error": {"code", "message"}}` instead.
//!
//! `?full=true` (the administrator's): every leaf with its stamp,
//! `{"path": "a/b", "value": 1, "stamp": "…"}`, and every tombstone,
//! `{"path": "a/c", "deleted": "…"}`, ending `{"end": {"leaves": N, "tombstones": M}}`.
//! `kora import` applies those as writes with the same stamps, so a dump merged into a live
//! server resolves conflicts as the original would have. (Branch stamps — a newer write once
//! made beneath a path and since deleted — are kept only by backups.)

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use kora_core::{Path, Value};
use kora_engine::{Context, Error, Kora};
use serde_json::json;

use crate::http::data_path;
use kora_transport::error::ApiError;
use kora_transport::state::AppState;

/// Leaves read from the store per page.
pub const EXPORT_PAGE: usize = 1_000;

/// The media type of the stream.
pub const JSON_LINES: &str = "application/x-ndjson";

/// Where a stream stands between pages.
struct Cursor {
    kora: Kora,
    ctx: Context,
    under: Path,
    full: bool,
    page: Page,
    leaves: u64,
    tombstones: u64,
    finished: bool,
}

/// The lines of one page, and the last path read (where the next page starts).
#[derive(Default)]
struct Page {
    lines: Vec<Value>,
    last: Option<Path>,
    /// The store returned a whole page: there may be more.
    more: bool,
}

/// Reads the page after `after`.
async fn read_page(
    kora: &Kora,
    ctx: &Context,
    under: &Path,
    full: bool,
    after: Option<&Path>,
) -> Result<Page, Error> {
    let page = kora_store::Page::new(under, after, EXPORT_PAGE);
    if !full {
        let leaves = kora.export(ctx, page).await?;
        return Ok(Page {
            more: leaves.len() == EXPORT_PAGE,
            last: leaves.last().map(|(path, _)| path.clone()),
            lines: leaves
                .into_iter()
                .map(|(path, value)| json!({"path": path.to_string(), "value": value}))
                .collect(),
        });
    }
    let records = kora.export_records(ctx, page).await?;
    Ok(Page {
        more: records.len() == EXPORT_PAGE,
        last: records.last().map(|(path, _)| path.clone()),
        lines: records
            .iter()
            .filter_map(|(p, r)| stamped_line(p, r))
            .collect(),
    })
}

/// A record's line: its leaf with the stamp, or its tombstone. A tombstone no newer than the
/// leaf beside it is implied by the leaf's write; branch stamps are not exported.
fn stamped_line(path: &Path, record: &kora_core::records::Record) -> Option<Value> {
    match (&record.leaf, record.tombstone) {
        (Some((stamp, value)), _) => {
            Some(json!({"path": path.to_string(), "value": value, "stamp": stamp}))
        }
        (None, Some(stamp)) => Some(json!({"path": path.to_string(), "deleted": stamp})),
        (None, None) => None,
    }
}

pub async fn export(
    State(state): State<AppState>,
    path: Option<UrlPath<String>>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(other) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "after" | "token" | "full"))
    {
        return Err(Error::bad_request(format!("unknown parameter {other:?}")).into());
    }
    let full = match params.get("full").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::bad_request(format!("full is true or false, not {other:?}")).into())
        }
    };
    let under = data_path(&state, path.as_ref().map(|p| p.0.as_str()))?;
    let after = match params.get("after") {
        Some(text) => Some(data_path(&state, Some(text))?),
        None => None,
    };
    let ctx = state.context_for(&headers, params.get("token").map(String::as_str))?;
    // The first page is read before answering, so a refusal gets its own status.
    let kora = state.kora.clone();
    let page = read_page(&kora, &ctx, &under, full, after.as_ref()).await?;
    let cursor = Cursor {
        kora,
        ctx,
        under,
        full,
        page,
        leaves: 0,
        tombstones: 0,
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
    let page = std::mem::take(&mut cursor.page);
    let mut text = Vec::new();
    for entry in &page.lines {
        if entry.get("deleted").is_some() {
            cursor.tombstones += 1;
        } else {
            cursor.leaves += 1;
        }
        // Serialising a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut text, entry);
        text.push(b'\n');
    }
    if !page.more {
        let end = match cursor.full {
            true => json!({"end": {"leaves": cursor.leaves, "tombstones": cursor.tombstones}}),
            false => json!({"end": {"leaves": cursor.leaves}}),
        };
        text.extend_from_slice(&line(&end));
        cursor.finished = true;
        return Some((Bytes::from(text), cursor));
    }
    let (kora, ctx, under) = (&cursor.kora, &cursor.ctx, &cursor.under);
    match read_page(kora, ctx, under, cursor.full, page.last.as_ref()).await {
        Ok(next) => cursor.page = next,
        Err(error) => {
            text.extend_from_slice(&line(&json!({"error": {
                "code": error.code.as_str(),
                "message": error.message,
            }})));
            cursor.finished = true;
        }
    }
    Some((Bytes::from(text), cursor))
}

fn line(value: &Value) -> Bytes {
    let mut text = value.to_string().into_bytes();
    text.push(b'\n');
    Bytes::from(text)
}
