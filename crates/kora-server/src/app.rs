//! The routes, in one place.

use std::time::Duration;

use axum::http::HeaderValue;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::{backup, console, effects, export, http, metrics, web_client, ws};
use kora_transport::mount::Mount;
use kora_transport::state::AppState;

/// Every route of the server: the core's, then those of `mounts`.
pub fn router(state: AppState, mounts: &[Box<dyn Mount>]) -> Router {
    let cors = cors(&state.config.cors_origins);
    let core = Router::new()
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
        .route("/v1/backup", get(backup::backup))
        .route("/v1/effects/dead", get(effects::dead))
        .route(
            "/v1/effects/dead/{id}",
            axum::routing::delete(effects::discard),
        )
        .route("/v1/effects/dead/{id}/retry", post(effects::retry))
        .route("/healthz", get(http::healthz))
        .route("/metrics", get(metrics::metrics))
        .with_state(state.clone());
    mounts
        .iter()
        .fold(core, |app, mount| app.merge(mount.routes(state.clone())))
        .fallback(kora_transport::http::not_found)
        .layer(cors)
        .layer(TraceLayer::new_for_http())
}

/// How long a browser may reuse a preflight's answer.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(3600);

/// Cross-origin requests from the configured origins, for every route (a mounted
/// protocol's as much as Kora's): preflights answered, any method and header allowed.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers(Any)
        .max_age(CORS_MAX_AGE)
}
