//! # engines: redb vs fjall on Kora's storage workload
//!
//! The measurement that chose the embedded engine (fjall), moved here from the standalone
//! `kvbench` project. It runs Kora's embedded-storage layout and commit path over
//! **redb 4.6.0** and **fjall 3.1.13** (lsm-tree 3.1.10); redb is a dev-dependency only,
//! pinned with `=`. The same workload code drives both engines through a small common trait.
//! It predates `kora_store::embedded` and models its commit path (ancestor reads, a range
//! seek beneath each leaf, last-writer-wins, one log entry per mutation) rather than
//! calling it, so that both engines run exactly the same operations; `benches/store.rs`
//! measures the real store.
//!
//! ```sh
//! cargo bench -p kora-store --bench engines                   # full suite: redb + fjall, 3 interleaved reps (~6 min)
//! cargo bench -p kora-store --bench engines -- --quick        # 1/10 scale, 1 rep (~30 s)
//! cargo bench -p kora-store --bench engines -- --engines redb,redb-qr,fjall,fjall-8m --reps 1   # with the variants (~5 min)
//! cargo bench -p kora-store --bench engines -- write fjall 64 1 100000   # one ad-hoc write run (KEEP=1 keeps the dir)
//! cargo bench -p kora-store --bench engines -- reopen fjall <dir> 3      # time reopening an existing store
//! ```
//!
//! The suite prints its markdown tables on stdout and its progress on stderr. It writes its
//! data under `target/tmp/engines/<engine>/…` and deletes it afterwards. The figures quoted
//! in docs/benchmarks.md ("Storage") come from these runs.
//!
//! ## Layout
//!
//! | file | what |
//! |---|---|
//! | `engines/store.rs` | the common trait: `Store` (durable write txn, ordered scan, last key, close), `WriteTxn` (get, first-key-in-range seek, put), `Ks` (nodes / log / meta) |
//! | `engines/redb_store.rs` | redb: one table per keyspace, `Durability::Immediate`, optional `set_quick_repair(true)` (`redb-qr`) |
//! | `engines/fjall_store.rs` | fjall: `SingleWriterTxDatabase`, one keyspace per Kora keyspace, `write_tx().durability(Some(PersistMode::SyncAll))`; `fjall-8m` = 8 MiB memtables + 64 MiB journal cap |
//! | `engines/kora.rs` | Kora's path key encoding, leaf record, change-log entry, `apply_mutation` (ancestor point reads, range seek beneath the leaf, own-record read, LWW write, log insert) and the group-commit `Committer` |
//! | `engines/workload.rs` | the measured scenarios (writes, space/reopen/change-log read, subtree read) |
//! | `engines/crash.rs` | the SIGKILL test (child process + verifier) |
//! | `engines/util.rs` | percentiles, dir sizes, `/proc/self/io`, page-cache eviction |
//! | `engines.rs` | CLI, orchestration, markdown report |
//!
//! Writers are **OS threads** (64 for the concurrent runs). Each one blocks on a oneshot
//! (`std::sync::mpsc::sync_channel(1)`) until the committer has made its batch durable.
//!
//! The multi-second, fsync-bound runs fit a plain `harness = false` bench binary better than
//! Criterion's `iter_custom`, which is why this is one.

// The crash and cold-read measurements call libc: kill -9 a child, sync, drop the page cache.
#![allow(unsafe_code)]

#[path = "engines/crash.rs"]
mod crash;
#[path = "engines/fjall_store.rs"]
mod fjall_store;
#[path = "engines/kora.rs"]
mod kora;
#[path = "engines/redb_store.rs"]
mod redb_store;
#[path = "engines/store.rs"]
mod store;
#[path = "engines/util.rs"]
mod util;
#[path = "engines/workload.rs"]
mod workload;

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use store::EngineSpec;
use util::{fresh_dir, mib, ms};

const ENGINES: &[EngineSpec] = &[
    EngineSpec {
        label: "redb",
        open: redb_store::RedbStore::open_default,
    },
    EngineSpec {
        label: "fjall",
        open: fjall_store::FjallStore::open_default,
    },
    // variants, run only when named with --engines
    EngineSpec {
        label: "redb-qr",
        open: redb_store::RedbStore::open_quick_repair,
    },
    EngineSpec {
        label: "fjall-8m",
        open: fjall_store::FjallStore::open_small_memtables,
    },
];
const DEFAULT_ENGINES: &str = "redb,fjall";

/// (writers, leaves per mutation, mutations per repetition)
const SCENARIOS: [(usize, usize, u64); 4] = [
    (1, 1, 10_000),
    (1, 10, 10_000),
    (64, 1, 200_000),
    (64, 10, 100_000),
];

fn engine(label: &str) -> Result<&'static EngineSpec> {
    match ENGINES.iter().find(|e| e.label == label) {
        Some(e) => Ok(e),
        None => bail!("unknown engine {label}"),
    }
}

fn data_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines")
}

/// Lets the (virtual) disk settle between runs: file deletion on a `discard`
/// mount and leftover writeback otherwise leak into the next run's fsyncs.
fn settle() {
    unsafe { libc::sync() };
    std::thread::sleep(std::time::Duration::from_millis(300));
}

struct ScenarioResult {
    label: &'static str,
    writers: usize,
    leaves: usize,
    runs: Vec<workload::WriteRun>,
}

struct EngineResults {
    label: &'static str,
    space: workload::SpaceReport,
    subtree: workload::SubtreeReport,
    crash: crash::CrashReport,
    big_crash: Option<crash::CrashRound>,
    big_crash_size: u64,
}

/// All write scenarios, `reps` times, engines interleaved (and their order
/// rotated each repetition) so disk noise hits every engine alike. The
/// 64-writer single-leaf store of the last repetition is kept for the
/// space / reopen / change-log measurements.
fn run_writes(
    specs: &[&'static EngineSpec],
    reps: usize,
    scale: u64,
) -> Result<(Vec<ScenarioResult>, Vec<workload::SpaceReport>)> {
    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut space: Vec<Option<workload::SpaceReport>> = specs.iter().map(|_| None).collect();
    for rep in 0..reps {
        for (writers, leaves, total) in SCENARIOS {
            for k in 0..specs.len() {
                let e = (k + rep) % specs.len();
                let spec = specs[e];
                let dir = fresh_dir(
                    &data_root().join(spec.label),
                    &format!("w{writers}-l{leaves}"),
                )?;
                let store = (spec.open)(&dir)?;
                let (run, store) = workload::write_run(store, writers, leaves, total / scale)?;
                let p = util::percentiles(&mut run.lat_ns.clone());
                eprintln!(
                    "  rep {rep} [{}] {writers}w x {leaves} leaves: {:.0} mut/s, p50 {} p99 {} ({} commits)",
                    spec.label,
                    run.rate(),
                    ms(p.p50),
                    ms(p.p99),
                    run.commits
                );
                match results
                    .iter_mut()
                    .find(|r| r.label == spec.label && r.writers == writers && r.leaves == leaves)
                {
                    Some(r) => r.runs.push(run),
                    None => results.push(ScenarioResult {
                        label: spec.label,
                        writers,
                        leaves,
                        runs: vec![run],
                    }),
                }
                if writers == 64 && leaves == 1 && rep == reps - 1 {
                    space[e] = Some(workload::space_and_log(spec, &dir, store)?);
                } else {
                    store.close()?;
                }
                std::fs::remove_dir_all(&dir)?;
                settle();
            }
        }
    }
    Ok((results, space.into_iter().map(Option::unwrap).collect()))
}

fn run_reads_and_crash(
    spec: &'static EngineSpec,
    quick: bool,
    space: workload::SpaceReport,
) -> Result<EngineResults> {
    let root = data_root().join(spec.label);
    eprintln!("  [{}] subtree read", spec.label);
    let dir = fresh_dir(&root, "subtree")?;
    let subtree = workload::subtree_read(spec, &dir)?;
    std::fs::remove_dir_all(&dir)?;

    eprintln!("  [{}] crash test", spec.label);
    let dir = fresh_dir(&root, "crash")?;
    let crash = crash::run(spec, &dir, if quick { 3 } else { 10 })?;
    std::fs::remove_dir_all(&dir)?;
    let dir = fresh_dir(&root, "crash-big")?;
    let big_crash = crash::big_round(spec, &dir, if quick { 2 } else { 8 });
    let big_crash_size = util::dir_size(&dir)?.0;
    std::fs::remove_dir_all(&dir)?;
    let big_crash = match big_crash {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("  [{}] big crash round failed: {e:#}", spec.label);
            None
        }
    };
    std::fs::remove_dir_all(&root)?;
    settle();
    Ok(EngineResults {
        label: spec.label,
        space,
        subtree,
        crash,
        big_crash,
        big_crash_size,
    })
}

fn report(writes: &[ScenarioResult], results: &[EngineResults], reps: usize) {
    println!(
        "\n### Durable group-committed writes (64 writers = 64 OS threads; {reps} repetitions, engines interleaved)\n"
    );
    println!(
        "| engine | writers | leaves/mut | mutations (all reps) | mut/s median [min-max] | leaf writes/s | p50 | p99 | max | commits (= fsynced txns) | avg batch | max batch | disk bytes / logical bytes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut sorted: Vec<&ScenarioResult> = writes.iter().collect();
    sorted.sort_by_key(|r| (r.writers, r.leaves));
    for r in sorted {
        let mut rates: Vec<f64> = r.runs.iter().map(|w| w.rate()).collect();
        rates.sort_by(f64::total_cmp);
        let med = rates[rates.len() / 2];
        let mut lat: Vec<u64> = r
            .runs
            .iter()
            .flat_map(|w| w.lat_ns.iter().copied())
            .collect();
        let p = util::percentiles(&mut lat);
        let sum = |f: fn(&workload::WriteRun) -> u64| r.runs.iter().map(f).sum::<u64>();
        let (muts, commits) = (sum(|w| w.mutations), sum(|w| w.commits));
        println!(
            "| {} | {} | {} | {} | {:.0} [{:.0}-{:.0}] | {:.0} | {} | {} | {} | {} | {:.1} | {} | {:.1}x |",
            r.label,
            r.writers,
            r.leaves,
            muts,
            med,
            rates[0],
            rates[rates.len() - 1],
            med * r.leaves as f64,
            ms(p.p50),
            ms(p.p99),
            ms(p.max),
            commits,
            muts as f64 / commits as f64,
            r.runs.iter().map(|w| w.max_batch).max().unwrap(),
            sum(|w| w.disk_bytes) as f64 / sum(|w| w.logical_bytes) as f64,
        );
    }
    println!("\n### Reads\n");
    println!(
        "| engine | 10k-leaf subtree read, cold (median of 5) | (reopen before it) | warm (median of 10) | change log: 100k entries in batches of 1000, cold | warm (median of 5) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.label,
            ms(r.subtree.cold),
            ms(r.subtree.cold_open),
            ms(r.subtree.warm),
            ms(r.space.log_read_cold),
            ms(r.space.log_read_warm)
        );
    }
    if let Some(r) = results.first() {
        println!(
            "\nSubtree store: {} leaves under todos/ among {} leaves total, plus their log entries. Change log: from seq N/4+1 of the 200k-mutation store. Cold = store closed, its files evicted from the page cache (posix_fadvise DONTNEED), reopened.",
            r.subtree.leaves, r.subtree.total_keys
        );
    }
    println!(
        "\n### Space and reopen after 200k single-leaf mutations (64 writers), clean shutdown\n"
    );
    println!(
        "| engine | data dir (apparent) | data dir (allocated) | live key+value bytes | apparent / live | reopen, page cache warm (median of 3) | reopen, cold |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let s = &r.space;
        println!(
            "| {} | {} | {} | {} | {:.1}x | {} | {} |",
            r.label,
            mib(s.apparent),
            mib(s.allocated),
            mib(s.live_bytes),
            s.apparent as f64 / s.live_bytes as f64,
            ms(s.reopen_warm),
            ms(s.reopen_cold)
        );
    }
    println!(
        "\n### SIGKILL test (8 writers, 1-leaf mutations, killed after 0.2-1.2 s, same dir every round; big round: 64 writers x 10 leaves, killed after 8 s, 2 s with --quick)\n"
    );
    println!(
        "| engine | rounds passed | acked mutations (total) | acked but lost | reopen after kill (median / max) | big round: log entries recovered (acked), dir size, reopen after kill | failures |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in results {
        let c = &r.crash;
        let mut reopen: Vec<_> = c.rounds.iter().map(|x| x.reopen).collect();
        let max = reopen.iter().max().copied().unwrap_or_default();
        let med = if reopen.is_empty() {
            Default::default()
        } else {
            util::median(&mut reopen)
        };
        let big = match &r.big_crash {
            Some(b) => format!(
                "{} ({}), {}, {}",
                b.recovered,
                b.acked,
                mib(r.big_crash_size),
                ms(b.reopen)
            ),
            None => "FAILED".into(),
        };
        let total_rounds =
            c.rounds.len() + c.failures.iter().filter(|f| !f.contains("lost")).count();
        println!(
            "| {} | {}/{} | {} | {} | {} / {} | {} | {} |",
            r.label,
            c.rounds.iter().filter(|x| x.lost == 0).count(),
            total_rounds,
            c.rounds.iter().map(|x| x.acked).sum::<u64>(),
            c.rounds.iter().map(|x| x.lost).sum::<u64>(),
            ms(med),
            ms(max),
            big,
            if c.failures.is_empty() {
                "none".to_string()
            } else {
                c.failures.join("; ")
            },
        );
    }
}

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("crash-child") {
        let [_, label, dir, writers, leaves] = &args[..] else {
            bail!("bad crash-child args")
        };
        return crash::child(
            engine(label)?,
            Path::new(dir),
            writers.parse()?,
            leaves.parse()?,
        );
    }
    if args.first().map(String::as_str) == Some("write") {
        // ad-hoc single write run, e.g. under strace: write <engine> <writers> <leaves> <total>
        let [_, label, writers, leaves, total] = &args[..] else {
            bail!("bad write args")
        };
        let spec = engine(label)?;
        let dir = fresh_dir(&data_root(), &format!("adhoc-{label}"))?;
        let (mut run, store) = workload::write_run(
            (spec.open)(&dir)?,
            writers.parse()?,
            leaves.parse()?,
            total.parse()?,
        )?;
        store.close()?;
        let p = util::percentiles(&mut run.lat_ns);
        println!(
            "{label}: {:.0} mut/s, p50 {} p99 {} max {}, {} commits, disk/logical {:.1}x",
            run.rate(),
            ms(p.p50),
            ms(p.p99),
            ms(p.max),
            run.commits,
            run.disk_bytes as f64 / run.logical_bytes as f64
        );
        if std::env::var_os("KEEP").is_none() {
            std::fs::remove_dir_all(&dir)?;
        }
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("reopen") {
        // ad-hoc: reopen <engine> <dir> [times]: time opening an existing store
        let spec = engine(&args[1])?;
        for _ in 0..args.get(3).map_or(Ok(1), |n| n.parse())? {
            let t = std::time::Instant::now();
            let store = (spec.open)(Path::new(&args[2]))?;
            let opened = t.elapsed();
            let n = kora::last_seq(&*store)?;
            store.close()?;
            println!(
                "{}: open {} (last seq {n}), open+close {}",
                spec.label,
                ms(opened),
                ms(t.elapsed())
            );
        }
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let selected: Vec<&'static EngineSpec> = arg("--engines")
        .unwrap_or(DEFAULT_ENGINES.into())
        .split(',')
        .map(engine)
        .collect::<Result<_>>()?;
    let reps: usize = arg("--reps").map_or(Ok(if quick { 1 } else { 3 }), |r| r.parse())?;
    let t = std::time::Instant::now();
    let (writes, space) = run_writes(&selected, reps, if quick { 10 } else { 1 })?;
    eprintln!("== writes done in {:.0} s", t.elapsed().as_secs_f64());
    let mut results = Vec::new();
    for (spec, space) in selected.iter().zip(space) {
        results.push(run_reads_and_crash(spec, quick, space)?);
    }
    let _ = std::fs::remove_dir(data_root()); // only if empty
    eprintln!("== all done in {:.0} s", t.elapsed().as_secs_f64());
    report(&writes, &results, reps);
    Ok(())
}
