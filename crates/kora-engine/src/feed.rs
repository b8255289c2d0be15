//! The ordered feed: every committed change, in sequence order, exactly once, to the fan-out.
//!
//! Commits reach the feed from the writers that made them (and, in a cluster, from the bus),
//! in whatever order their tasks finish. The feed holds back a change until every earlier
//! sequence has passed. A sequence missing for longer than `gap_timeout` — its writer went
//! away, or a bus message was lost — is read from the store's change log, so the fan-out never
//! stalls and never skips.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use kora_store::{Change, LogRead, Seq};
use tokio::sync::mpsc;

use crate::kora::Kora;

/// A change on its way to subscribers, with the moment it became durable here.
#[derive(Debug, Clone)]
pub struct Committed {
    pub change: Change,
    pub at: Instant,
}

pub(crate) struct Feed {
    state: Mutex<State>,
    out: mpsc::UnboundedSender<Committed>,
}

struct State {
    next: Seq,
    pending: BTreeMap<Seq, Committed>,
    /// Since when the feed has been holding changes back for a missing sequence.
    stalled_since: Option<Instant>,
}

impl Feed {
    /// A feed that delivers from sequence `next` on, and the receiving end for the fan-out.
    pub fn new(next: Seq) -> (Feed, mpsc::UnboundedReceiver<Committed>) {
        let (out, rx) = mpsc::unbounded_channel();
        let feed = Feed {
            state: Mutex::new(State {
                next,
                pending: BTreeMap::new(),
                stalled_since: None,
            }),
            out,
        };
        (feed, rx)
    }

    /// Accepts a committed change; sends on every change now in order. Duplicates and
    /// changes already passed are dropped.
    pub fn push(&self, change: Change) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if change.seq < state.next {
            return;
        }
        let at = Instant::now();
        state.pending.insert(change.seq, Committed { change, at });
        loop {
            let next = state.next;
            let Some(committed) = state.pending.remove(&next) else {
                break;
            };
            state.next += 1;
            let _ = self.out.send(committed);
        }
        state.stalled_since = match (state.pending.is_empty(), state.stalled_since) {
            (true, _) => None,
            (false, None) => Some(at),
            (false, since) => since,
        };
    }

    /// The next sequence the feed waits for.
    pub fn next(&self) -> Seq {
        self.state.lock().map(|s| s.next).unwrap_or_default()
    }

    /// The missing sequences, `(after, up_to)`, when the feed has waited longer than allowed.
    fn overdue(&self, timeout: std::time::Duration) -> Option<(Seq, Seq)> {
        let state = self.state.lock().ok()?;
        let since = state.stalled_since?;
        let first_pending = *state.pending.keys().next()?;
        (since.elapsed() >= timeout).then_some((state.next - 1, first_pending - 1))
    }

    /// Skips ahead to `next` (after a reset: changes before it will not be delivered).
    pub fn skip_to(&self, next: Seq) {
        if let Ok(mut state) = self.state.lock() {
            if next > state.next {
                state.next = next;
                state.pending = state.pending.split_off(&next);
            }
        }
    }
}

/// Fills overdue gaps from the change log, and catches up when the store is ahead of the
/// feed for longer than the gap timeout (commits of other nodes that the bus did not bring).
pub(crate) async fn fill_gaps(kora: Kora) {
    let timeout = kora.inner.config.gap_timeout;
    let mut tick = tokio::time::interval(timeout / 2);
    let mut behind_since: Option<(Seq, Instant)> = None;
    loop {
        tick.tick().await;
        if let Some((after, up_to)) = kora.inner.feed.overdue(timeout) {
            read_log(&kora, after, (up_to - after) as usize).await;
            continue;
        }
        let next = kora.inner.feed.next();
        let Ok(last) = kora.inner.store.last_seq().await else {
            continue;
        };
        if last < next {
            behind_since = None;
            continue;
        }
        match behind_since {
            Some((waiting_for, since)) if waiting_for == next && since.elapsed() >= timeout => {
                behind_since = None;
                let limit = ((last + 1 - next) as usize).min(CATCH_UP_BATCH);
                read_log(&kora, next - 1, limit).await;
            }
            Some((waiting_for, _)) if waiting_for == next => {}
            _ => behind_since = Some((next, Instant::now())),
        }
    }
}

/// Changes read from the log per catch-up round.
pub const CATCH_UP_BATCH: usize = 10_000;

async fn read_log(kora: &Kora, after: Seq, limit: usize) {
    match kora.inner.store.changes(after, limit).await {
        Ok(LogRead::Changes(changes)) => {
            kora.inner.metrics.gap_fills.add(changes.len() as u64);
            for change in changes {
                kora.inner.feed.push(change);
            }
        }
        Ok(LogRead::Compacted { oldest }) => {
            tracing::warn!(oldest, "changes missing from the feed were compacted away");
            kora.inner.feed.skip_to(oldest);
        }
        Err(error) => tracing::warn!(%error, "reading the change log to fill a gap"),
    }
}

#[cfg(test)]
mod tests {
    use kora_core::{Mutation, Stamp};

    use super::*;

    fn change(seq: Seq) -> Change {
        Change {
            seq,
            stamp: Stamp::from_packed(seq, 1),
            mutation: Mutation::new(),
        }
    }

    #[test]
    fn delivers_in_sequence_order_once() {
        let (feed, mut rx) = Feed::new(1);
        for seq in [3, 1, 1, 2, 5, 4, 2] {
            feed.push(change(seq));
        }
        let got: Vec<Seq> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.change.seq)
            .collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn reports_an_overdue_gap() {
        let (feed, _rx) = Feed::new(1);
        feed.push(change(3));
        assert_eq!(feed.overdue(std::time::Duration::ZERO), Some((0, 2)));
        feed.push(change(1));
        feed.push(change(2));
        assert_eq!(feed.overdue(std::time::Duration::ZERO), None);
    }
}
