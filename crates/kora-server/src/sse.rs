//! Server-Sent Events: `GET /v1/data/{path}` with `Accept: text/event-stream`.
//!
//! The stream opens with the current value (`event: value`), then sends each change under the
//! path (`event: change`, the part under the path only). Every event's id is its sequence
//! number, so a client that reconnects with `Last-Event-ID` (or `?since=`) receives exactly
//! the changes it missed — or a fresh `value` when the change log no longer covers them.
//!
//! ```text
//! event: value
//! id: 41
//! data: {"seq":41,"value":{"t1":{"text":"hi"}}}
//!
//! event: change
//! id: 42
//! data: {"seq":42,"stamp":"01J…","mutation":{"merge":{"todos":{"t2":{"text":"yo"}}},"delete":{}}}
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use kora_core::{PathQuery, Value};
use kora_engine::{Error, Initial, Push, Resume};
use kora_store::Seq;
use serde_json::json;

use kora_transport::error::ApiError;
use kora_transport::state::AppState;

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn resume_point(
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Option<Seq>, Error> {
    let text = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| params.get("since").cloned());
    text.map(|t| {
        t.trim()
            .parse()
            .map_err(|_| Error::bad_request(format!("resume point {t:?} is not a sequence")))
    })
    .transpose()
}

fn value_event(seq: Seq, value: Option<Value>) -> Event {
    Event::default()
        .event("value")
        .id(seq.to_string())
        .data(json!({"seq": seq, "value": value.unwrap_or(Value::Null)}).to_string())
}

fn change_event(seq: Seq, stamp: kora_core::Stamp, mutation: &kora_core::Mutation) -> Event {
    Event::default()
        .event("change")
        .id(seq.to_string())
        .data(json!({"seq": seq, "stamp": stamp, "mutation": mutation}).to_string())
}

fn first_events(initial: Initial) -> Vec<Event> {
    match initial {
        Initial::Snapshot { seq, value } | Initial::Reset { seq, value } => {
            vec![value_event(seq, value)]
        }
        Initial::Replay { changes, .. } => changes
            .iter()
            .map(|c| change_event(c.seq, c.stamp, &c.mutation))
            .collect(),
    }
}

/// Opens an event stream on one path query.
pub async fn stream(
    state: AppState,
    ctx: kora_engine::Context,
    peer: std::net::IpAddr,
    query: PathQuery,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let since = resume_point(params, headers)?;
    let guard = state.admit(peer)?;
    let mut session = state.kora.session(ctx);
    let initial = session
        .subscribe("sse", query, since.map(Resume::after))
        .await?;
    let first = stream::iter(first_events(initial).into_iter().map(Ok::<_, Infallible>));
    let live = stream::unfold((session, guard), |(mut session, guard)| async move {
        let push = session.next().await?;
        let event = match push {
            Push::Change {
                seq,
                stamp,
                mutation,
                ..
            } => change_event(seq, stamp, &mutation),
            Push::Reset { seq, value, .. } => value_event(seq, value),
            Push::Ended { error, .. } => Event::default()
                .event("error")
                .data(kora_transport::error::body(&error).to_string()),
        };
        Some((Ok(event), (session, guard)))
    });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> =
        Box::pin(first.chain(live));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
