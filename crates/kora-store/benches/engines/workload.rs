//! The measured scenarios, engine-agnostic (they only see `EngineSpec` and
//! `dyn Store`).

use crate::kora::{
    apply_mutation, count_subtree, encode_path, init_meta, last_seq, new_stamp, subtree_end,
    todo_mutation, ulid_for, Committer, Leaf, LeafRecord, Mutation, Rng,
};
use crate::store::{EngineSpec, Ks, Store};
use crate::util::{dir_size, evict_page_cache, median, proc_write_bytes};
use anyhow::{ensure, Result};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Max mutations per group commit.
pub const GROUP_CAP: usize = 1024;
/// Mutations pick a todo id uniformly from this many ids (so the write
/// stream is a mix of inserts and overwrites at random key positions).
pub const ID_SPACE: u64 = 100_000;

pub struct WriteRun {
    pub mutations: u64,
    pub elapsed: Duration,
    /// per-mutation commit latency seen by the writer, in ns
    pub lat_ns: Vec<u64>,
    pub commits: u64,
    pub max_batch: u64,
    /// bytes sent to the block layer by this process during the run (incl. close)
    pub disk_bytes: u64,
    /// key + value bytes of every put
    pub logical_bytes: u64,
}

impl WriteRun {
    pub fn rate(&self) -> f64 {
        self.mutations as f64 / self.elapsed.as_secs_f64()
    }
}

/// Durable group-committed writes: `writers` OS threads each submit
/// `total / writers` mutations of `leaves` leaves and wait for each ack.
pub fn write_run(
    store: Arc<dyn Store>,
    writers: usize,
    leaves: usize,
    total: u64,
) -> Result<(WriteRun, Arc<dyn Store>)> {
    init_meta(&*store)?;
    let io0 = proc_write_bytes();
    let committer = Arc::new(Committer::start(store.clone(), GROUP_CAP)?);
    let per_writer = total / writers as u64;
    let barrier = Arc::new(Barrier::new(writers + 1));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (committer, barrier) = (committer.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<Vec<u64>> {
                let mut rng = Rng::new(w as u64 + 1);
                let mut lat = Vec::with_capacity(per_writer as usize);
                barrier.wait();
                for _ in 0..per_writer {
                    let id = ulid_for(rng.below(ID_SPACE));
                    let m = todo_mutation(&id, leaves, &mut rng, w as u64);
                    let t = Instant::now();
                    committer.submit(m)?;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                Ok(lat)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut lat = Vec::with_capacity(total as usize);
    for h in handles {
        lat.extend(h.join().expect("writer panicked")?);
    }
    let elapsed = start.elapsed();
    let stats = Arc::try_unwrap(committer)
        .ok()
        .expect("committer shared")
        .shutdown()?;
    ensure!(stats.mutations == per_writer * writers as u64);
    ensure!(last_seq(&*store)? == stats.mutations);
    let disk_bytes = proc_write_bytes() - io0;
    Ok((
        WriteRun {
            mutations: stats.mutations,
            elapsed,
            lat_ns: lat,
            commits: stats.batches,
            max_batch: stats.max_batch,
            disk_bytes,
            logical_bytes: stats.logical_bytes,
        },
        store,
    ))
}

pub struct SpaceReport {
    pub apparent: u64,
    pub allocated: u64,
    /// key + value bytes of the live data (nodes + log + meta)
    pub live_bytes: u64,
    pub reopen_warm: Duration,
    pub reopen_cold: Duration,
    pub log_read_cold: Duration,
    pub log_read_warm: Duration,
}

fn live_bytes(store: &dyn Store) -> Result<u64> {
    let mut total = 0u64;
    for ks in Ks::ALL {
        store.scan(ks, Bound::Unbounded, Bound::Unbounded, &mut |k, v| {
            total += (k.len() + v.len()) as u64;
            true
        })?;
    }
    Ok(total)
}

/// Reads `total` change-log entries starting at `from`, `batch` per read
/// snapshot, like a subscriber catching up.
pub fn read_log(store: &dyn Store, from: u64, total: u64, batch: u64) -> Result<Duration> {
    let t = Instant::now();
    let (mut next, mut got) = (from, 0u64);
    while got < total {
        let start = next.to_be_bytes();
        let (mut n, mut last) = (0u64, 0u64);
        store.scan(
            Ks::Log,
            Bound::Included(&start),
            Bound::Unbounded,
            &mut |k, v| {
                last = u64::from_be_bytes(k.try_into().unwrap());
                std::hint::black_box(&v[16..]); // stamp | JSON
                n += 1;
                n < batch.min(total - got)
            },
        )?;
        ensure!(n > 0 && last == next + n - 1, "log gap at {next}");
        got += n;
        next = last + 1;
    }
    Ok(t.elapsed())
}

/// Data dir size after the 200k-mutation run, reopen times, and the
/// change-log read, on the store `write_run` left behind.
pub fn space_and_log(spec: &EngineSpec, dir: &Path, store: Arc<dyn Store>) -> Result<SpaceReport> {
    let n = last_seq(&*store)?;
    store.close()?;
    let (apparent, allocated) = dir_size(dir)?;

    let mut warm = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let s = (spec.open)(dir)?;
        warm.push(t.elapsed());
        s.close()?;
    }
    evict_page_cache(dir)?;
    let t = Instant::now();
    let store = (spec.open)(dir)?;
    let reopen_cold = t.elapsed();
    ensure!(last_seq(&*store)? == n);

    let from = n / 4 + 1;
    let count = 100_000.min(n - from + 1);
    let log_read_cold = read_log(&*store, from, count, 1000)?;
    let mut w: Vec<_> = (0..5)
        .map(|_| read_log(&*store, from, count, 1000))
        .collect::<Result<_>>()?;
    let live = live_bytes(&*store)?;
    store.close()?;
    Ok(SpaceReport {
        apparent,
        allocated,
        live_bytes: live,
        reopen_warm: median(&mut warm),
        reopen_cold,
        log_read_cold,
        log_read_warm: median(&mut w),
    })
}

pub struct SubtreeReport {
    pub leaves: u64,
    pub total_keys: u64,
    /// reopen time of the (evicted) store before the cold read
    pub cold_open: Duration,
    pub cold: Duration,
    pub warm: Duration,
}

/// Reads all of `todos/` (10k leaves) in a store that also holds 90k other
/// leaves and their log entries. Cold = right after evicting the files from
/// the page cache and reopening; warm = repeated on an open store.
pub fn subtree_read(spec: &EngineSpec, dir: &Path) -> Result<SubtreeReport> {
    const TODOS: u64 = 10_000;
    const OTHERS: u64 = 45_000; // each for `projects/` and `users/`
    let store = (spec.open)(dir)?;
    init_meta(&*store)?;
    let mut rng = Rng::new(42);
    let mut muts: Vec<Mutation> = Vec::new();
    for i in 0..TODOS {
        muts.push(todo_mutation(&ulid_for(i), 1, &mut rng, 0));
    }
    for (coll, field) in [("projects", "title"), ("users", "name")] {
        for i in 0..OTHERS {
            let id = ulid_for(1_000_000 + i);
            let json = format!("\"{coll} {i}\"").into_bytes();
            muts.push(Mutation {
                stamp: new_stamp(0),
                leaves: vec![Leaf { key: encode_path(&[coll, &id, field]), json: json.clone() }],
                json: format!("{{\"merge\":{{\"{coll}\":{{\"{id}\":{{\"{field}\":\"{coll} {i}\"}}}}}},\"delete\":{{}}}}")
                    .into_bytes(),
            });
        }
    }
    // shuffle so the three collections are written interleaved
    for i in (1..muts.len()).rev() {
        muts.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut seq = last_seq(&*store)? + 1;
    for chunk in muts.chunks(1000) {
        store.write_durable(&mut |txn| {
            for (i, m) in chunk.iter().enumerate() {
                apply_mutation(txn, m, seq + i as u64)?;
            }
            Ok(())
        })?;
        seq += chunk.len() as u64;
    }
    store.close()?;

    let prefix = encode_path(&["todos"]);
    let end = subtree_end(&prefix);
    let read_all = |store: &dyn Store| -> Result<Duration> {
        let t = Instant::now();
        let mut bytes = 0usize;
        let n = store.scan(
            Ks::Nodes,
            Bound::Included(&prefix),
            Bound::Excluded(&end),
            &mut |k, v| {
                let rec = LeafRecord::decode(v).expect("record");
                bytes += k.len() + rec.json.len();
                true
            },
        )?;
        let d = t.elapsed();
        ensure!(n == TODOS, "expected {TODOS} todos, got {n}");
        std::hint::black_box(bytes);
        Ok(d)
    };

    let (mut cold, mut cold_open) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        evict_page_cache(dir)?;
        let t = Instant::now();
        let store = (spec.open)(dir)?;
        cold_open.push(t.elapsed());
        cold.push(read_all(&*store)?);
        store.close()?;
    }
    let store = (spec.open)(dir)?;
    let total_keys = count_subtree(&*store, &encode_path(&["projects"]))?
        + count_subtree(&*store, &encode_path(&["users"]))?
        + count_subtree(&*store, &prefix)?;
    let mut warm: Vec<_> = (0..10).map(|_| read_all(&*store)).collect::<Result<_>>()?;
    store.close()?;
    Ok(SubtreeReport {
        leaves: TODOS,
        total_keys,
        cold_open: median(&mut cold_open),
        cold: median(&mut cold),
        warm: median(&mut warm),
    })
}
