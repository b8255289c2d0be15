//! What a write's decision read, so the commit can check that it is still true.
//!
//! While the pipeline runs a write's interceptors and rules, every read they make through
//! the engine (`Kora::read_value`, `Kora::query`, `WriteLayer::data`, the rules' lookups) is
//! recorded here with the sequence its snapshot was read at. The write then commits on the
//! condition that none of those paths changed since (`kora_store::Condition::Unchanged`),
//! checked inside the store's transaction. If one did, the pipeline runs again for that write
//! alone, on fresh data (`Config::max_write_attempts` times at most): a derived write, a
//! server-set field or a data-dependent rule is always decided on the data it commits on.
//!
//! The record lives in a task-local, set around the interceptors of one attempt: reads made
//! on other tasks an interceptor spawns are not recorded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use kora_core::Path;
use kora_store::{Condition, Seq};

tokio::task_local! {
    static READS: ReadLog;
}

/// The paths one attempt of a write read, each with the oldest sequence it was read at.
#[derive(Clone, Default)]
pub struct ReadLog(Arc<Mutex<BTreeMap<Path, Seq>>>);

impl ReadLog {
    /// Runs `work` with its engine reads recorded here.
    pub async fn scope<F: Future>(&self, work: F) -> F::Output {
        READS.scope(self.clone(), work).await
    }

    /// Records reads of `paths` at `seq` in the log of the current task, if any.
    pub(crate) fn record<'a>(paths: impl IntoIterator<Item = &'a Path>, seq: Seq) {
        let _ = READS.try_with(|log| {
            if let Ok(mut reads) = log.0.lock() {
                for path in paths {
                    let at = reads.entry(path.clone()).or_insert(seq);
                    *at = (*at).min(seq);
                }
            }
        });
    }

    /// One `Unchanged` condition per path read.
    pub fn conditions(&self) -> Vec<Condition> {
        match self.0.lock() {
            Ok(reads) => reads
                .iter()
                .map(|(path, seq)| Condition::unchanged(path.clone(), *seq))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Path {
        Path::parse(text).unwrap()
    }

    #[tokio::test]
    async fn reads_inside_the_scope_are_recorded_at_their_oldest_sequence() {
        ReadLog::record([&p("outside")], 1);
        let log = ReadLog::default();
        log.scope(async {
            ReadLog::record([&p("a"), &p("b")], 7);
            ReadLog::record([&p("a")], 5);
            ReadLog::record([&p("b")], 9);
        })
        .await;
        assert_eq!(
            log.conditions(),
            vec![
                Condition::unchanged(p("a"), 5),
                Condition::unchanged(p("b"), 7)
            ]
        );
    }
}
