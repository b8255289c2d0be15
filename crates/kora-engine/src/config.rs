//! The engine's settings, each with the default a production database would want.

use std::time::Duration;

/// How conflicting writes are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conflicts {
    /// Per leaf, the newer stamp wins; offline writes keep the stamp of when they were made.
    #[default]
    Stamps,
    /// The server stamps every write on arrival (Firebase's behaviour).
    Arrival,
}

/// Attempts a write gets when what its interceptors read keeps changing under it: enough for
/// dozens of writers on one hot path (each retry waits for nothing but the next commit).
pub const DEFAULT_MAX_WRITE_ATTEMPTS: usize = 32;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Origin id of this node in the stamps it issues. Random by default.
    pub origin: u64,
    pub conflicts: Conflicts,
    /// A client stamp further ahead of this node's clock is replaced by a server stamp.
    pub max_clock_skew: Duration,
    /// Tombstones and change-log entries older than this are compacted; a client offline for
    /// longer resynchronises from a snapshot.
    pub retention: Duration,
    /// How often compaction runs.
    pub compaction_interval: Duration,
    /// Interceptors may add mutations that are intercepted in turn; this bounds the rounds
    /// so two interceptors feeding each other fail loudly instead of looping.
    pub max_intercept_rounds: usize,
    /// A write whose interceptors or rules read data that changed before it committed runs
    /// again on fresh data (`crate::reads`), at most this many times in all; then it is
    /// refused with `conflict`.
    pub max_write_attempts: usize,
    /// Events a session may have queued before it is told to resynchronise.
    pub session_queue: usize,
    /// Subscriptions one session may hold.
    pub max_subscriptions_per_session: usize,
    /// A resume replays at most this many changes; beyond it a snapshot is cheaper.
    pub max_replay: usize,
    /// How long the ordered feed waits for a missing sequence before reading it from the log.
    pub gap_timeout: Duration,
    pub effects: EffectsConfig,
    /// The cluster bus, when several nodes share the store.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Ordered child indexes for queries ordered by a child value (`crate::index`).
    pub indexes: crate::index::Declared,
}

/// How effects are run.
#[derive(Debug, Clone)]
pub struct EffectsConfig {
    /// Tries before an effect is moved to the dead letters.
    pub max_attempts: u32,
    /// Pause after the first failure; doubled after each further one up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A claimed effect not finished within this is claimed again (at-least-once).
    pub lease: Duration,
    /// One try of one effect may take this long.
    pub timeout: Duration,
    /// How often the runner looks for due effects when nothing woke it.
    pub poll: Duration,
    /// Effects claimed at a time.
    pub batch: usize,
    /// Set to false to not run effects on this node (they stay in the outbox).
    pub enabled: bool,
}

impl Default for EffectsConfig {
    fn default() -> Self {
        EffectsConfig {
            max_attempts: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            batch: 64,
            enabled: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            origin: random_origin(),
            conflicts: Conflicts::Stamps,
            max_clock_skew: Duration::from_millis(kora_core::stamp::DEFAULT_MAX_SKEW_MS),
            retention: Duration::from_secs(30 * 24 * 3600),
            compaction_interval: Duration::from_secs(3600),
            max_intercept_rounds: 8,
            max_write_attempts: DEFAULT_MAX_WRITE_ATTEMPTS,
            session_queue: 4096,
            max_subscriptions_per_session: 1_000,
            max_replay: 100_000,
            gap_timeout: Duration::from_millis(500),
            effects: EffectsConfig::default(),
            cluster: None,
            indexes: Default::default(),
        }
    }
}

/// A random 64-bit origin (from the standard library's randomly seeded hasher).
pub fn random_origin() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(kora_core::stamp::wall_millis());
    hasher.finish()
}
