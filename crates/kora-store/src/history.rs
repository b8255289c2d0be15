//! Which line of commits a store's sequence numbers count.
//!
//! A client resumes a subscription by sequence ("send me what changed after 812"). That is
//! only sound if 812 means the same commit to the client and to the store. A restored backup
//! breaks this: the restored store continues from the backup's sequence, and its next
//! commits reuse numbers that the original store had given to commits the restore lost. A
//! client that saw those would resume past them and silently keep data the server no longer
//! has (or miss what the restored server wrote under the same numbers).
//!
//! So every store that can be restored names its history with a random id, and a restore
//! starts a new history that remembers where it forked from. A resume is answered with a
//! replay only when the client's sequence is in the store's own history, or in an ancestor
//! at or before the fork; anything else gets a fresh snapshot (`reset`).

use serde::{Deserialize, Serialize};

use crate::store::Seq;

/// A store's history: its id and the histories it forked from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Random, 128 bits in hex.
    pub id: String,
    /// Ancestors, nearest first, each with the last sequence this history shares with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forks: Vec<Fork>,
}

/// A history this one continues, up to and including sequence `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    pub id: String,
    pub at: Seq,
}

impl History {
    /// A new history with no past.
    pub fn new() -> Self {
        History {
            id: format!("{:032x}", rand::random::<u128>()),
            forks: Vec::new(),
        }
    }

    /// The history of a store restored from a backup of this one taken at `at`: new
    /// commits after `at` are not this history's.
    pub fn fork(&self, at: Seq) -> History {
        let mut forks = vec![Fork {
            id: self.id.clone(),
            at,
        }];
        forks.extend(self.forks.iter().map(|f| Fork {
            id: f.id.clone(),
            at: f.at.min(at),
        }));
        History {
            id: History::new().id,
            forks,
        }
    }

    /// True when sequence `since` of history `id` names the same commit here, so changes
    /// after it can be replayed.
    pub fn shares(&self, id: &str, since: Seq) -> bool {
        id == self.id || self.forks.iter().any(|f| f.id == id && since <= f.at)
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_shares_its_past_and_nothing_after() {
        let original = History::new();
        let restored = original.fork(100);
        assert_ne!(restored.id, original.id);
        assert!(restored.shares(&restored.id, 5_000));
        assert!(restored.shares(&original.id, 100));
        assert!(!restored.shares(&original.id, 101));
        assert!(!restored.shares("someone-else", 1));
        // A backup of the restored store, taken later, restored again: the first history is
        // shared only up to the first fork.
        let again = restored.fork(300);
        assert!(again.shares(&restored.id, 300));
        assert!(!again.shares(&restored.id, 301));
        assert!(again.shares(&original.id, 100));
        assert!(!again.shares(&original.id, 150));
    }

    #[test]
    fn ids_differ() {
        assert_ne!(History::new().id, History::new().id);
        assert_eq!(History::new().id.len(), 32);
    }
}
