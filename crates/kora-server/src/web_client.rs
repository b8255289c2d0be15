//! The web client (clients/web), served at `GET /v1/client.js` so that a page can
//! `import { connect } from "/v1/client.js"` with no build step. The bundle is built from
//! clients/web/src by esbuild and committed (clients/web/dist/kora.js), so a server builds
//! without Node; clients/web's tests fail when the committed file is not what its source builds.

use axum::http::header;
use axum::response::IntoResponse;

/// The built module.
pub const SCRIPT: &str = include_str!("../../../clients/web/dist/kora.js");

/// `GET /v1/client.js`.
pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The module changes with the server binary; a short cache keeps upgrades visible.
            (header::CACHE_CONTROL, "public, max-age=300"),
            // Module scripts are fetched with CORS: pages of other origins (an app served from
            // its own host) may import it. It is public code, the same for everyone.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        SCRIPT,
    )
}
