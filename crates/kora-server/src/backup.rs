//! `GET /v1/backup`, for the administrator: a consistent backup of the running server's
//! store, streamed as it is read (the format is `kora_store::embedded::backup`'s).
//!
//! The store reads one snapshot while commits go on; the bytes flow to the client through a
//! small bounded channel, so a slow client slows the read rather than filling memory. An
//! error before the first byte is an ordinary error answer (a store backed up with its own
//! tools gets `bad_request` saying so); one later cuts the response short, and the cut
//! backup lacks its end marker, which `kora restore` refuses.

use std::collections::HashMap;
use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Query as UrlQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use kora_engine::Error;
use tokio::sync::mpsc;

use kora_transport::error::ApiError;
use kora_transport::state::AppState;

/// Chunks of the backup (each about 1 MiB, the store's write buffer) held between the
/// store and a client that reads slower than the store writes.
pub const BACKUP_CHUNKS_IN_FLIGHT: usize = 4;

type Chunk = io::Result<Bytes>;

/// `GET /v1/backup`.
pub async fn backup(
    State(state): State<AppState>,
    UrlQuery(params): UrlQuery<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.require_admin(&headers, params.get("token").map(String::as_str))?;
    if let Some(other) = params.keys().find(|k| k.as_str() != "token") {
        return Err(Error::bad_request(format!("unknown parameter {other:?}")).into());
    }
    let (tx, mut rx) = mpsc::channel::<Chunk>(BACKUP_CHUNKS_IN_FLIGHT);
    let store = state.kora.store().clone();
    let task = tokio::spawn(async move {
        let out = ChannelWriter { tx: tx.clone() };
        let result = store.backup(Box::new(out)).await;
        match &result {
            Ok(b) => tracing::info!(
                seq = b.seq,
                bytes = b.bytes,
                entries = b.entries,
                "backup sent"
            ),
            Err(error) => {
                tracing::warn!(%error, "backup failed");
                let _ = tx.send(Err(io::Error::other(error.to_string()))).await;
            }
        }
        result
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        // Failed before writing anything: answer with the store's error.
        _ => {
            let error = match task.await {
                Ok(Err(error)) => Error::from(error),
                Ok(Ok(_)) => Error::internal("the backup ended without writing anything"),
                Err(error) => Error::internal(format!("the backup task failed: {error}")),
            };
            return Err(error.into());
        }
    };
    let rest = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let body = Body::from_stream(futures_util::StreamExt::chain(
        stream::once(async move { Ok::<_, io::Error>(first) }),
        rest,
    ));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// A blocking writer that sends what it is given to the response, one chunk per write.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
