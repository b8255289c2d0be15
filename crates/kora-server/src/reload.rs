//! Files the server reloads without a restart (the rules, the TLS certificate): on SIGHUP, and
//! when one of them changes, checked every [`RELOAD_POLL`]. A reload that fails is logged
//! once per state of the files and tried again at each check, so the old version stays in use
//! until the files load (a renewal written in two steps, or a rules file being edited).

use std::fmt::Display;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// How often watched files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Calls `reload` on SIGHUP and whenever one of `files` changes; `what` names it in the log.
pub async fn watch<E: Display>(
    files: Vec<PathBuf>,
    what: &'static str,
    mut reload: impl FnMut() -> Result<(), E>,
) {
    let modified = || -> Vec<Option<SystemTime>> {
        files
            .iter()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    };
    let mut loaded = modified();
    let mut failed = None;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(RELOAD_POLL);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = signalled => true,
            _ = tick.tick() => false,
        };
        let now = modified();
        if !forced && now == loaded {
            continue;
        }
        match reload() {
            Ok(()) => {
                tracing::info!("{what} reloaded");
                loaded = now;
                failed = None;
            }
            Err(error) => {
                if forced || failed.as_ref() != Some(&now) {
                    tracing::error!(%error, "{what} not reloaded; keeping the one in use");
                }
                failed = Some(now);
            }
        }
    }
}
