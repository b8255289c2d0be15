//! The effect outbox in memory: the bookkeeping of claims, leases, retries and dead letters
//! shared by the backends that keep their outbox in a key-value map (memory, embedded).
//! The SQL backends express the same rules as statements.

use std::collections::BTreeMap;

use crate::error::StoreError;
use crate::store::{Effect, EffectState, NewEffect, Seq};

/// An outbox entry and its lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub effect: Effect,
    /// Leased to a runner until this time (ms); 0 when not leased.
    pub lease_until_ms: u64,
}

/// Outbox entries by id.
#[derive(Debug, Default)]
pub struct Outbox {
    entries: BTreeMap<u64, Entry>,
    next_id: u64,
}

impl Outbox {
    /// An outbox holding `entries`, issuing ids after the largest.
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Self {
        let entries: BTreeMap<u64, Entry> = entries.into_iter().map(|e| (e.effect.id, e)).collect();
        let next_id = entries.keys().next_back().map_or(1, |id| id + 1);
        Outbox { entries, next_id }
    }

    /// Adds an effect of commit `seq`, due at `now_ms`. Returns the new entry.
    pub fn add(&mut self, seq: Seq, new: NewEffect, now_ms: u64) -> &Entry {
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        self.entries.entry(id).or_insert(Entry {
            effect: Effect {
                id,
                seq,
                kind: new.kind,
                payload: new.payload,
                attempts: 0,
                next_at_ms: now_ms,
                last_error: None,
                state: EffectState::Pending,
            },
            lease_until_ms: 0,
        })
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Claims due, unleased pending effects (oldest first); returns the changed entries.
    pub fn claim(&mut self, now_ms: u64, lease_ms: u64, limit: usize) -> Vec<Effect> {
        self.claim_entries(now_ms, lease_ms, limit)
            .into_iter()
            .map(|e| e.effect)
            .collect()
    }

    /// Like [`Outbox::claim`], returning whole entries (to be written back by a store).
    pub fn claim_entries(&mut self, now_ms: u64, lease_ms: u64, limit: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        for entry in self.entries.values_mut() {
            if out.len() >= limit {
                break;
            }
            let due = entry.effect.state == EffectState::Pending
                && entry.effect.next_at_ms <= now_ms
                && entry.lease_until_ms <= now_ms;
            if due {
                entry.lease_until_ms = now_ms.saturating_add(lease_ms).max(1);
                out.push(entry.clone());
            }
        }
        out
    }

    pub fn complete(&mut self, id: u64) -> Result<(), StoreError> {
        self.entries
            .remove(&id)
            .map(|_| ())
            .ok_or(StoreError::NoSuchEffect(id))
    }

    pub fn retry(&mut self, id: u64, next_at_ms: u64, error: &str) -> Result<&Entry, StoreError> {
        let entry = self.entry_mut(id)?;
        entry.effect.attempts += 1;
        entry.effect.next_at_ms = next_at_ms;
        entry.effect.last_error = Some(error.to_string());
        entry.lease_until_ms = 0;
        Ok(entry)
    }

    pub fn bury(&mut self, id: u64, error: &str) -> Result<&Entry, StoreError> {
        let entry = self.entry_mut(id)?;
        entry.effect.attempts += 1;
        entry.effect.last_error = Some(error.to_string());
        entry.effect.state = EffectState::Dead;
        entry.lease_until_ms = 0;
        Ok(entry)
    }

    pub fn revive(&mut self, id: u64) -> Result<&Entry, StoreError> {
        let entry = self.entry_mut(id)?;
        if entry.effect.state != EffectState::Dead {
            return Err(StoreError::NoSuchEffect(id));
        }
        entry.effect.state = EffectState::Pending;
        entry.effect.attempts = 0;
        entry.effect.next_at_ms = 0;
        Ok(entry)
    }

    pub fn dead(&self, limit: usize) -> Vec<Effect> {
        self.entries
            .values()
            .filter(|e| e.effect.state == EffectState::Dead)
            .take(limit)
            .map(|e| e.effect.clone())
            .collect()
    }

    /// (pending, dead) counts.
    pub fn counts(&self) -> (u64, u64) {
        let dead = self
            .entries
            .values()
            .filter(|e| e.effect.state == EffectState::Dead)
            .count() as u64;
        (self.entries.len() as u64 - dead, dead)
    }

    fn entry_mut(&mut self, id: u64) -> Result<&mut Entry, StoreError> {
        self.entries
            .get_mut(&id)
            .ok_or(StoreError::NoSuchEffect(id))
    }
}
