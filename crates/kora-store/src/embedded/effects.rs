//! The embedded store's outbox: held in memory (`crate::outbox::Outbox`, loaded at open) and
//! written through to the `outbox` keyspace.
//!
//! Every change is made to a copy of the entry, made durable in its own fsynced
//! transaction, and only then put in memory, all under the outbox lock: memory never shows
//! what the disk would not have after a crash. Claims are written too, so a lease survives a
//! restart (a runner that crashed mid-effect is not joined by a second one before the lease
//! ends) and an effect runs at least once.

use std::sync::MutexGuard;

use fjall::Readable;

use super::codec;
use super::engine::{Engine, OUTBOX};
use super::Shared;
use crate::error::StoreError;
use crate::outbox::{Entry, Outbox};
use crate::store::{Claim, Effect};

/// Reads every outbox entry (at open).
pub fn load(e: &Engine) -> Result<Outbox, StoreError> {
    let mut entries = Vec::new();
    for guard in e.db.read_tx().iter(&e.outbox) {
        let (key, bytes) = guard.into_inner().map_err(|x| e.error(x))?;
        let id = codec::decode_u64(&key).map_err(|x| e.corrupted(OUTBOX, &key, x))?;
        entries.push(codec::decode_entry(id, &bytes).map_err(|x| e.corrupted(OUTBOX, &key, x))?);
    }
    Ok(Outbox::from_entries(entries))
}

/// Leases up to `limit` claimable effects.
pub fn claim(shared: &Shared, claim: Claim) -> Result<Vec<Effect>, StoreError> {
    let mut outbox = shared.outbox()?;
    let mut entries = outbox.claimable(claim.now_ms, claim.limit);
    entries.iter_mut().for_each(|e| e.lease(claim));
    write(shared, &entries)?;
    let claimed = entries.iter().map(|e| e.effect.clone()).collect();
    entries.into_iter().for_each(|e| outbox.insert(e));
    Ok(claimed)
}

/// Changes one entry with `change` and writes it back.
pub fn update(
    shared: &Shared,
    id: u64,
    change: impl FnOnce(&mut Entry) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut outbox = shared.outbox()?;
    let mut entry = outbox.require(id)?.clone();
    change(&mut entry)?;
    write(shared, std::slice::from_ref(&entry))?;
    outbox.insert(entry);
    Ok(())
}

/// Removes an entry that ran.
pub fn complete(shared: &Shared, id: u64) -> Result<(), StoreError> {
    let mut outbox: MutexGuard<'_, Outbox> = shared.outbox()?;
    outbox.require(id)?;
    let e = &shared.engine;
    let mut tx = e.write_tx();
    tx.remove(&e.outbox, codec::encode_u64(id));
    tx.commit().map_err(|x| e.error(x))?;
    outbox.complete(id)
}

/// Removes a dead entry.
pub fn discard(shared: &Shared, id: u64) -> Result<(), StoreError> {
    let mut outbox: MutexGuard<'_, Outbox> = shared.outbox()?;
    outbox.require_dead(id)?;
    let e = &shared.engine;
    let mut tx = e.write_tx();
    tx.remove(&e.outbox, codec::encode_u64(id));
    tx.commit().map_err(|x| e.error(x))?;
    outbox.discard(id)
}

/// Writes entries in one durable transaction.
fn write(shared: &Shared, entries: &[Entry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let e = &shared.engine;
    let mut tx = e.write_tx();
    for entry in entries {
        tx.insert(
            &e.outbox,
            codec::encode_u64(entry.effect.id),
            codec::encode_entry(entry),
        );
    }
    tx.commit().map_err(|x| e.error(x))
}
