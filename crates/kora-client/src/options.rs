//! How a client connects, caches and retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kora_core::backoff::Backoff;

/// First wait before reconnecting after a failure.
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest wait between reconnection attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the client pings an idle server.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// Longest a request (a query, a call) waits for its reply.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Writes sent before their replies come back (the server handles 64 per connection).
pub const DEFAULT_WRITES_IN_FLIGHT: usize = 64;
/// Times [`crate::Client::transaction`] runs its update before giving up with `conflict`
/// (Firebase's SDKs give up after 25).
pub const DEFAULT_TRANSACTION_ATTEMPTS: u32 = 25;
/// First pause between a transaction's attempts; it doubles, with jitter, up to
/// [`TRANSACTION_BACKOFF_MAX`].
pub const TRANSACTION_BACKOFF_MIN: Duration = Duration::from_millis(1);
pub const TRANSACTION_BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Updates queued for one subscription handle that is not being read; beyond it they are
/// dropped and the handle gets `Update::Lagged`.
pub const DEFAULT_UPDATE_QUEUE: usize = 1_024;

/// Options for [`crate::Client::connect`].
#[derive(Debug, Clone)]
pub struct Options {
    /// A token (JWT) presented in the WebSocket handshake.
    pub token: Option<String>,
    /// Directory of the persistent local cache; `None` keeps the cache in memory (nothing
    /// survives the process, offline writes included).
    pub cache_dir: Option<PathBuf>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A ping goes out after this long without a frame from the server; a connection silent
    /// for three times as long is considered dead and replaced.
    pub heartbeat: Duration,
    pub request_timeout: Duration,
    pub writes_in_flight: usize,
    /// Updates queued per subscription handle (see [`DEFAULT_UPDATE_QUEUE`]).
    pub update_queue: usize,
    /// See [`DEFAULT_TRANSACTION_ATTEMPTS`].
    pub transaction_attempts: u32,
    /// TLS settings for `https://` servers; `None`: the web's certificate authorities
    /// (webpki-roots). [`Options::trusting`] makes one that trusts a private CA.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: None,
            cache_dir: None,
            backoff_min: DEFAULT_BACKOFF_MIN,
            backoff_max: DEFAULT_BACKOFF_MAX,
            heartbeat: DEFAULT_HEARTBEAT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            writes_in_flight: DEFAULT_WRITES_IN_FLIGHT,
            update_queue: DEFAULT_UPDATE_QUEUE,
            transaction_attempts: DEFAULT_TRANSACTION_ATTEMPTS,
            tls: None,
        }
    }
}

impl Options {
    /// Options with a persistent cache in `dir`.
    pub fn cached(dir: impl Into<PathBuf>) -> Self {
        Options {
            cache_dir: Some(dir.into()),
            ..Options::default()
        }
    }

    /// These options trusting the certificate authorities in the PEM file `ca` (a private
    /// CA, or a server's self-signed certificate) instead of the web's.
    pub fn trusting(mut self, ca: &std::path::Path) -> Result<Self, crate::ClientError> {
        use rustls::pki_types::pem::PemObject;
        let bad = |e: &dyn std::fmt::Display| {
            crate::ClientError::Invalid(format!("{}: {e}", ca.display()))
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no certificate in the file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The pause after a transaction's attempt `attempt` (1-based) lost to another writer:
    /// doubling from [`TRANSACTION_BACKOFF_MIN`], jittered, at most [`TRANSACTION_BACKOFF_MAX`].
    pub fn transaction_backoff(&self, attempt: u32) -> Duration {
        Backoff::new(TRANSACTION_BACKOFF_MIN, TRANSACTION_BACKOFF_MAX)
            .full_jitter(attempt, fastrand::f64())
    }

    /// The wait before reconnection attempt `attempt` (0-based): doubling from
    /// `backoff_min` up to `backoff_max`, with jitter in its upper half so that many
    /// clients cut off together do not return together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.backoff_min, self.backoff_max).half_jitter(attempt, fastrand::f64())
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Opening a connection.
    Connecting,
    /// Connected: subscriptions are live and queued writes are being sent.
    Online,
    /// Not connected; waiting before the next attempt. Reads come from the cache and
    /// writes are queued.
    Offline,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        let options = Options::default();
        for attempt in 0..40 {
            let wait = options.backoff(attempt);
            let base = DEFAULT_BACKOFF_MIN
                .saturating_mul(1 << attempt.min(20))
                .min(DEFAULT_BACKOFF_MAX);
            assert!(wait >= base / 2 && wait <= base, "{attempt}: {wait:?}");
        }
        assert!(options.backoff(30) >= DEFAULT_BACKOFF_MAX / 2);
    }
}
