//! # kora-testkit
//!
//! What Kora's integration tests share, so that each policy of a good test lives in one place:
//!
//! - [`seed`]: every randomized test draws from a seed it prints, and `KORA_TEST_SEED` replays
//!   it (the random choices replay exactly; the machine's timing does not).
//! - [`eventually`]: wait until a condition holds, polling, with a deadline that fails the
//!   test with what was awaited — never a fixed sleep that decides the outcome.

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits before failing the test: generous, since CI machines are
/// slow and a condition that holds returns at once.
pub const EVENTUALLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often [`eventually`] checks its condition.
pub const EVENTUALLY_POLL: Duration = Duration::from_millis(10);

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
