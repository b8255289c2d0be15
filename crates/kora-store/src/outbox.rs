//! The effect outbox in memory: the bookkeeping of claims, leases, retries and dead letters
//! shared by the backends that keep their outbox in a key-value map (memory, embedded).
//! The SQL backends express the same rules as statements.
//!
//! The rules for one entry live on [`Entry`], so that a store that writes through to disk
//! (embedded) can change a copy, make it durable, and only then put it back in the
//! [`Outbox`]; the memory store changes entries in place.

use std::collections::BTreeMap;

use crate::error::StoreError;
use crate::store::{Claim, Effect, EffectState, NewEffect, Seq};

/// An outbox entry and its lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub effect: Effect,
    /// Leased to a runner until this time (ms); 0 when not leased.
    pub lease_until_ms: u64,
}

impl Entry {
    /// A new pending entry for an effect of commit `seq`, due at `now_ms`.
    pub fn new(id: u64, seq: Seq, new: NewEffect, now_ms: u64) -> Self {
        Entry {
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
        }
    }

    /// Pending, due at `now_ms`, and not leased by anyone.
    pub fn is_claimable(&self, now_ms: u64) -> bool {
        self.effect.state == EffectState::Pending
            && self.effect.next_at_ms <= now_ms
            && self.lease_until_ms <= now_ms
    }

    /// Leases the entry as `claim` asks ([`Claim::lease_until_ms`]).
    pub fn lease(&mut self, claim: Claim) {
        self.lease_until_ms = claim.lease_until_ms();
    }

    /// Records a failed try: runs again at `next_at_ms`.
    pub fn retry(&mut self, next_at_ms: u64, error: &str) {
        self.effect.attempts += 1;
        self.effect.next_at_ms = next_at_ms;
        self.effect.last_error = Some(error.to_string());
        self.lease_until_ms = 0;
    }

    /// Records a failed last try: the entry becomes a dead letter.
    pub fn bury(&mut self, error: &str) {
        self.effect.attempts += 1;
        self.effect.last_error = Some(error.to_string());
        self.effect.state = EffectState::Dead;
        self.lease_until_ms = 0;
    }

    /// Moves a dead entry back to pending with its tries reset; `NoSuchEffect` when the
    /// entry is not dead.
    pub fn revive(&mut self) -> Result<(), StoreError> {
        if self.effect.state != EffectState::Dead {
            return Err(StoreError::NoSuchEffect(self.effect.id));
        }
        self.effect.state = EffectState::Pending;
        self.effect.attempts = 0;
        self.effect.next_at_ms = 0;
        Ok(())
    }
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

    /// Reserves `n` consecutive ids and returns the first. Ids of entries that are never
    /// inserted (their commit failed) are simply not used.
    pub fn reserve_ids(&mut self, n: usize) -> u64 {
        let first = self.next_id.max(1);
        self.next_id = first + n as u64;
        first
    }

    /// Adds an effect of commit `seq`, due at `now_ms`. Returns the new entry.
    pub fn add(&mut self, seq: Seq, new: NewEffect, now_ms: u64) -> &Entry {
        let id = self.reserve_ids(1);
        self.entries
            .entry(id)
            .or_insert(Entry::new(id, seq, new, now_ms))
    }

    /// Puts an entry in, replacing the one with its id.
    pub fn insert(&mut self, entry: Entry) {
        self.next_id = self.next_id.max(entry.effect.id + 1);
        self.entries.insert(entry.effect.id, entry);
    }

    pub fn get(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// The entry `id`, or `NoSuchEffect`.
    pub fn require(&self, id: u64) -> Result<&Entry, StoreError> {
        self.entries.get(&id).ok_or(StoreError::NoSuchEffect(id))
    }

    /// Copies of up to `limit` claimable entries at `now_ms`, oldest first.
    pub fn claimable(&self, now_ms: u64, limit: usize) -> Vec<Entry> {
        self.entries
            .values()
            .filter(|e| e.is_claimable(now_ms))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Claims due, unleased pending effects (oldest first); returns the changed entries.
    pub fn claim(&mut self, claim: Claim) -> Vec<Effect> {
        self.claim_entries(claim)
            .into_iter()
            .map(|e| e.effect)
            .collect()
    }

    /// Like [`Outbox::claim`], returning whole entries (to be written back by a store).
    pub fn claim_entries(&mut self, claim: Claim) -> Vec<Entry> {
        let mut out = self.claimable(claim.now_ms, claim.limit);
        for entry in &mut out {
            entry.lease(claim);
            self.entries.insert(entry.effect.id, entry.clone());
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
        entry.retry(next_at_ms, error);
        Ok(entry)
    }

    pub fn bury(&mut self, id: u64, error: &str) -> Result<&Entry, StoreError> {
        let entry = self.entry_mut(id)?;
        entry.bury(error);
        Ok(entry)
    }

    pub fn revive(&mut self, id: u64) -> Result<&Entry, StoreError> {
        let entry = self.entry_mut(id)?;
        entry.revive()?;
        Ok(entry)
    }

    /// Removes a dead entry (`NoSuchEffect` when `id` is not a dead one).
    pub fn discard(&mut self, id: u64) -> Result<(), StoreError> {
        self.require_dead(id)?;
        self.complete(id)
    }

    /// The entry `id` when it is dead, or `NoSuchEffect`.
    pub fn require_dead(&self, id: u64) -> Result<&Entry, StoreError> {
        self.require(id)
            .ok()
            .filter(|e| e.effect.state == EffectState::Dead)
            .ok_or(StoreError::NoSuchEffect(id))
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
