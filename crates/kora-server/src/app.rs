//! The routes, in one place.

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{console, export, firebase, http, metrics, web_client, ws};

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(console::page))
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/client.js", get(web_client::script))
        .route(
            "/v1/data",
            get(http::get)
                .put(http::put)
                .patch(http::patch)
                .delete(http::delete),
        )
        .route(
            "/v1/data/{*path}",
            get(http::get)
                .put(http::put)
                .patch(http::patch)
                .delete(http::delete),
        )
        .route("/v1/mutate", post(http::mutate))
        .route("/v1/export", get(export::export))
        .route("/v1/export/{*path}", get(export::export))
        .route("/healthz", get(http::healthz))
        .route("/metrics", get(metrics::metrics))
        // Firebase: its WebSocket protocol, and REST at `/{path}.json` (the fallback).
        .route("/.ws", get(firebase::ws::upgrade))
        .fallback(firebase::rest::fallback)
        .with_state(state)
}
