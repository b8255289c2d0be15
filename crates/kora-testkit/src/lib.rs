//! # kora-testkit
//!
//! What Kora's integration tests share, so that each policy of a good test lives in one place:
//!
//! - [`seed`]: every randomized test draws from a seed it prints, and `KORA_TEST_SEED` replays
//!   it (the random choices replay exactly; the machine's timing does not).
//! - [`eventually`]: wait until a condition holds, polling, with a deadline that fails the
//!   test with what was awaited — never a fixed sleep that decides the outcome.
//! - [`service`]: a test that needs PostgreSQL, MariaDB, NATS or Cassandra says it was
//!   skipped when its `KORA_TEST_*` variable is not set, and fails instead under `CI=true`.
//! - [`tls`]: a certificate authority made in the test, and server certificates it signs.

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits before failing the test: generous, since CI machines are
/// slow and a condition that holds returns at once.
pub const EVENTUALLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often [`eventually`] checks its condition.
pub const EVENTUALLY_POLL: Duration = Duration::from_millis(10);

/// True when the service `var` names (a `KORA_TEST_*` variable, set by `scripts/services`) is
/// here. Otherwise prints that the test was skipped — and fails the test under `CI=true`,
/// where every service must be (any `CI` set counts).
pub fn service(var: &str) -> bool {
    if std::env::var_os(var).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs this test: set {var} (scripts/services starts what it names)"
    );
    println!("skipped: {var} is not set (run scripts/services)");
    false
}

/// The seed of a randomized test named `test`: `KORA_TEST_SEED` when set (to replay a failure),
/// else a fresh one. Printed either way, with the line that replays it.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("KORA_TEST_SEED")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {test}: {seed} (replay: KORA_TEST_SEED={seed} cargo test {test})");
    seed
}

/// A random-number generator from [`seed`].
pub fn rng(test: &str) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed(test))
}

/// Waits until `condition` holds, checking every [`EVENTUALLY_POLL`]; panics with `what` after
/// [`EVENTUALLY_TIMEOUT`].
pub async fn eventually<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, EVENTUALLY_TIMEOUT, condition).await;
}

/// [`eventually`] with its own deadline.
pub async fn eventually_within<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(EVENTUALLY_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn eventually_returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        eventually("the third call", || async {
            calls.fetch_add(1, Ordering::SeqCst) >= 2
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never")]
    async fn eventually_fails_with_what_it_awaited() {
        eventually_within("never", Duration::from_millis(30), || async { false }).await;
    }

    #[test]
    fn a_seed_replays_its_choices() {
        let mut a = fastrand::Rng::with_seed(7);
        let mut b = fastrand::Rng::with_seed(7);
        let draws = |rng: &mut fastrand::Rng| (0..8).map(|_| rng.u64(..)).collect::<Vec<_>>();
        assert_eq!(draws(&mut a), draws(&mut b));
    }
}

/// A certificate authority made for one test, and certificates it signs for `localhost` and
/// `127.0.0.1`, as PEM files.
pub mod tls {
    use std::path::{Path, PathBuf};

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    /// A test CA: its certificate (what clients trust) and what it signs with.
    pub struct TestCa {
        pub pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    /// A server certificate and key, and the CA that signed it, written to files.
    pub struct ServerFiles {
        pub cert: PathBuf,
        pub key: PathBuf,
        pub ca: PathBuf,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let key = KeyPair::generate().expect("a CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("Kora test CA {name}"));
            let cert = params.self_signed(&key).expect("a CA certificate");
            TestCa {
                pem: cert.pem(),
                issuer: Issuer::new(params, key),
            }
        }

        /// A server certificate for `localhost` and `127.0.0.1` signed by this CA, written
        /// with its key and this CA's certificate into `dir` as `<stem>.crt`, `<stem>.key`
        /// and `<stem>-ca.crt`.
        pub fn server_files(&self, dir: &Path, stem: &str) -> ServerFiles {
            let key = KeyPair::generate().expect("a server key");
            let params =
                CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                    .expect("server params");
            let cert = params
                .signed_by(&key, &self.issuer)
                .expect("a server certificate");
            let files = ServerFiles {
                cert: dir.join(format!("{stem}.crt")),
                key: dir.join(format!("{stem}.key")),
                ca: dir.join(format!("{stem}-ca.crt")),
            };
            std::fs::write(&files.cert, cert.pem()).expect("write the certificate");
            std::fs::write(&files.key, key.serialize_pem()).expect("write the key");
            std::fs::write(&files.ca, &self.pem).expect("write the CA");
            files
        }
    }
}
