//! Starting and stopping a server: open the store, build the engine, listen, and on
//! SIGTERM/SIGINT stop accepting, let in-flight requests finish, flush and close the store.

use std::net::SocketAddr;
use std::time::Duration;

use axum::serve::ListenerExt;
use std::sync::Arc;

use kora_engine::{Config, Kora, KoraBuilder, RulesInterceptor};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::router;
use kora_transport::config::ServerConfig;
use kora_transport::state::AppState;

/// The server could not start or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] kora_transport::config::ConfigError),
    #[error("{0}")]
    Engine(#[from] kora_engine::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Insecure(String),
    #[error(transparent)]
    Auth(#[from] kora_transport::auth::AuthError),
    #[error("rules: {0}")]
    Rules(#[from] kora_rules::LoadError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A running server.
pub struct Running {
    /// Where it listens (the port is the real one when `:0` was asked for).
    pub addr: SocketAddr,
    pub kora: Kora,
    /// Work that lives as long as the server (reloading rules).
    background: Vec<JoinHandle<()>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl Running {
    /// Stops accepting, waits for in-flight requests (up to `GRACE`), closes the store.
    pub async fn stop(self) -> Result<(), ServerError> {
        let Running {
            kora,
            stop,
            task,
            background,
            ..
        } = self;
        for work in background {
            work.abort();
        }
        let _ = stop.send(());
        let served = tokio::time::timeout(GRACE, task).await;
        kora.shutdown().await;
        match served {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(join)) => Err(ServerError::Io(std::io::Error::other(join))),
            Err(_) => {
                tracing::warn!("connections still open after {GRACE:?}; closed them");
                Ok(())
            }
        }
    }

    /// Runs until SIGTERM or SIGINT, then stops gracefully.
    pub async fn until_signalled(self) -> Result<(), ServerError> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

/// How long a stopping server waits for open requests and streams.
pub const GRACE: Duration = Duration::from_secs(10);

/// The engine settings a server configuration implies.
pub fn engine_config(config: &ServerConfig) -> Config {
    let mut engine = Config {
        conflicts: config.conflicts,
        retention: Duration::from_secs(config.retention_days.max(1) * 24 * 3600),
        session_queue: config.limits.send_queue,
        max_subscriptions_per_session: config.limits.max_subscriptions,
        effects: config.effects.engine(),
        indexes: config.indexes.clone(),
        ..Config::default()
    };
    if config.origin != 0 {
        engine.origin = config.origin;
    }
    engine.cluster = config.cluster.as_ref().map(|c| c.engine());
    engine
}

/// Refuses to expose a server without rules beyond this machine unless told to.
fn check_exposure(
    config: &ServerConfig,
    addr: &SocketAddr,
    mounts: &[Box<dyn crate::Mount>],
) -> Result<(), ServerError> {
    if config.rules.is_some() || mounts.iter().any(|m| m.guards_access()) {
        return Ok(());
    }
    if addr.ip().is_loopback() {
        tracing::warn!(%addr, "no rules file: every client may read and write everything (reachable from this machine only)");
        return Ok(());
    }
    if config.insecure {
        tracing::warn!(%addr, "--insecure: every client on the network may read and write everything");
        return Ok(());
    }
    Err(ServerError::Insecure(format!(
        "refusing to serve on {addr} without a rules file; add rules or pass --insecure to let every client read and write everything"
    )))
}

/// Opens the store, builds the engine from `builder` (for interceptors and handlers), and
/// starts listening.
pub async fn start(config: ServerConfig, builder: KoraBuilder) -> Result<Running, ServerError> {
    start_with(config, builder, Vec::new()).await
}

/// [`start`], serving `mounts`' routes beside the core's (Firebase's protocols).
pub async fn start_with(
    config: ServerConfig,
    builder: KoraBuilder,
    mounts: Vec<Box<dyn crate::Mount>>,
) -> Result<Running, ServerError> {
    let addr = config.bind_addr()?;
    check_exposure(&config, &addr, &mounts)?;
    let verifier = kora_transport::auth::Verifier::from_config(&config.auth)?;
    let mut builder = mounts.iter().fold(builder, |builder, m| m.prepare(builder));
    let mut background = Vec::new();
    if let Some(path) = &config.rules {
        let rules = Arc::new(RulesInterceptor::load(path)?);
        tracing::info!(rules = %path.display(), "rules loaded");
        builder = builder.interceptor_arc("**", rules.clone());
        let files = rules
            .source()
            .map(|p| p.to_path_buf())
            .into_iter()
            .collect();
        background.push(tokio::spawn(crate::reload::watch(
            files,
            "rules",
            move || rules.reload(),
        )));
    }
    let store_url = config.store_url();
    let store = kora_store::open(&store_url)
        .await
        .map_err(kora_engine::Error::from)?;
    let kora = builder
        .store(store)
        .config(engine_config(&config))
        .build()
        .await?;
    let tls = match config.tls_files()? {
        Some((cert, key)) => {
            let certificate = crate::tls::Certificate::load(cert, key)?;
            background.push(tokio::spawn(crate::tls::reload(certificate.clone())));
            Some(crate::tls::server_config(certificate)?)
        }
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let addr = listener.local_addr()?;
    let redacted = kora_store::StoreUrl::parse(&store_url)
        .map(|u| u.redacted())
        .unwrap_or(store_url);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, %scheme, store = %redacted, "Kora is listening");
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving without TLS beyond this machine: tokens and data cross the network in the clear (set tls_cert and tls_key)");
    }
    let app = router(AppState::new(kora.clone(), config, verifier), &mounts);
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let task = match tls {
        Some(tls) => {
            let listener = crate::tls::TlsListener::new(listener, tls)?;
            let app = app
                .layer(axum::middleware::map_request(crate::tls::peer_address))
                .into_make_service_with_connect_info::<crate::tls::Peer>();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
        None => {
            // Replies and pushes are small frames that must leave at once: no Nagle delay.
            let listener = listener.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "TCP_NODELAY");
                }
            });
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
    };
    Ok(Running {
        addr,
        kora,
        background,
        stop,
        task,
    })
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
