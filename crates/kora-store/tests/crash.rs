//! Crash safety of the embedded store, tested for real: a child process writes with
//! concurrent writers and prints each acknowledged commit; the parent kills it with SIGKILL
//! at a random moment, reopens the directory (no repair step exists) and checks that
//!
//! - every acknowledged mutation is there, at the sequence it was acknowledged with;
//! - no mutation is half-applied: each writes three leaves under a fresh key and deletes a
//!   leaf of the writer's previous mutation, and either all of that shows or none of it;
//! - the change log has no gaps and holds exactly one entry per mutation found.
//!
//! Rounds reuse one directory, so the store grows and every round recovers from the last.
//! `KORA_CRASH_ROUNDS` sets the number of rounds (default [`DEFAULT_ROUNDS`]),
//! `KORA_CRASH_SEED` the random seed (printed, to replay a failure).
//!
//! The child is this test binary run again with `KORA_CRASH_CHILD=<dir>`, executing the
//! ignored test `crash_child` only.

mod conformance;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kora_core::{Clock, Mutation, Path as KoraPath, PathQuery};
use kora_store::{EmbeddedStore, LogRead, Store, Write};
use serde_json::{json, Value};

/// Rounds when `KORA_CRASH_ROUNDS` is not set: enough kills to land in every phase of a
/// commit (planning, journal write, fsync, acknowledgement) many times, in under a minute.
const DEFAULT_ROUNDS: u32 = 50;

/// Concurrent writers in the child: enough to form groups of commits.
const WRITERS: u32 = 16;

/// The child is killed this long after it reports ready, plus up to [`KILL_SPREAD_MS`].
/// Short, so that the store stays small enough to reopen quickly in a debug build (fjall
/// replays its whole journal on every open).
const KILL_AFTER_MS: u64 = 5;
const KILL_SPREAD_MS: u64 = 80;

/// How long the child may take to open the store and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Change-log entries read per page when checking the log.
const LOG_PAGE: usize = 1_000;

const CHILD_ENV: &str = "KORA_CRASH_CHILD";
const ROUND_ENV: &str = "KORA_CRASH_ROUND";

fn path(text: &str) -> KoraPath {
    KoraPath::parse(text).expect("valid path")
}

/// The key of writer `w`'s `k`th mutation.
fn key(w: u32, k: u64) -> String {
    format!("w{w:02}k{k:07}")
}

/// Writer `w`'s `k`th mutation in round `round`: three leaves under a fresh key, and the
/// delete of leaf `c` of the writer's previous mutation.
fn mutation(round: u32, w: u32, k: u64) -> Mutation {
    let base = format!("m/r{round:03}");
    let mut m = Mutation::merge(
        &path(&format!("{base}/{}", key(w, k))),
        json!({"a": k, "b": format!("writer {w}"), "c": true}),
    )
    .expect("valid mutation");
    if k > 0 {
        m = m.and_delete(&path(&format!("{base}/{}/c", key(w, k - 1))));
    }
    m
}

// ---------- the child ----------

/// The child side: writes until killed. Runs only when `KORA_CRASH_CHILD` names a directory.
#[test]
#[ignore = "run by sigkill_rounds in a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u32 = std::env::var(ROUND_ENV)
        .ok()
        .and_then(|r| r.parse().ok())
        .expect("KORA_CRASH_ROUND");
    conformance::runtime().block_on(async move {
        let store = Arc::new(EmbeddedStore::open(&dir).await.expect("child: open"));
        let clock = Arc::new(Clock::new(u64::from(round) + 1));
        println!("ready");
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(write_forever(store.clone(), clock.clone(), round, w)))
            .collect();
        for writer in writers {
            writer.await.expect("writer");
        }
    });
}

async fn write_forever(store: Arc<EmbeddedStore>, clock: Arc<Clock>, round: u32, w: u32) {
    for k in 0.. {
        let write = Write::new(clock.now(), mutation(round, w, k));
        let commit = store.commit(write).await.expect("child: commit");
        let mut out = std::io::stdout().lock();
        // One line per acknowledgement; stdout is line-buffered, so each is one write(2).
        let _ = writeln!(out, "ack {} {w} {k}", commit.seq);
    }
}

// ---------- the parent ----------

/// A commit the child acknowledged: its sequence, writer and counter.
#[derive(Debug, Clone, Copy)]
struct Ack {
    seq: u64,
    w: u32,
    k: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        seq: parts.next()?.parse().ok()?,
        w: parts.next()?.parse().ok()?,
        k: parts.next()?.parse().ok()?,
    })
}

/// xorshift64*: reproducible from the printed seed, without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sigkill_rounds() {
    let rounds: u32 = env_or("KORA_CRASH_ROUNDS", DEFAULT_ROUNDS);
    let seed: u64 = env_or("KORA_CRASH_SEED", kora_core::stamp::wall_millis() | 1);
    println!("crash: {rounds} rounds, seed {seed} (KORA_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let temp = tempfile::tempdir().expect("temporary directory");
    let rt = conformance::runtime();
    let started = Instant::now();
    let (mut acked, mut last_seq) = (0, 0);
    for round in 0..rounds {
        let kill_after = Duration::from_millis(KILL_AFTER_MS + rng.below(KILL_SPREAD_MS));
        let acks = run_child(temp.path(), round, kill_after);
        let seq = rt.block_on(verify_round(temp.path(), round, &acks, last_seq));
        println!(
            "  round {round}: killed after {kill_after:?}, {} acknowledged, log now ends at {seq}",
            acks.len()
        );
        acked += acks.len();
        last_seq = seq;
    }
    rt.block_on(verify_everything(temp.path(), rounds, last_seq));
    println!(
        "crash: {rounds} rounds passed, {acked} acknowledged mutations checked, \
         {last_seq} log entries, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(acked > 0, "no round acknowledged anything");
}

/// Runs the child, kills it `kill_after` after it is ready, and returns its acknowledgements.
fn run_child(dir: &Path, round: u32, kill_after: Duration) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--ignored", "--exact", "crash_child", "--nocapture"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let (ready_tx, ready_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "ready" {
                let _ = ready_tx.send(());
            } else if let Some(ack) = parse_ack(&line) {
                acks.push(ack);
            }
        }
        acks
    });
    if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
        kill(&mut child);
        panic!("round {round}: the child did not open the store");
    }
    std::thread::sleep(kill_after);
    kill(&mut child);
    reader.join().expect("reader thread")
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

/// Reads one path of a store.
async fn get(store: &EmbeddedStore, text: &str) -> Option<Value> {
    store.get(&PathQuery::new(path(text))).await.expect("read")
}

/// Reopens the store and checks one round; returns the new last sequence.
async fn verify_round(dir: &Path, round: u32, acks: &[Ack], before: u64) -> u64 {
    let store = EmbeddedStore::open(dir)
        .await
        .unwrap_or_else(|e| panic!("round {round}: reopening failed: {e}"));
    let last = store.last_seq().await.expect("last seq");
    assert!(
        last >= before,
        "round {round}: the log shrank from {before} to {last}"
    );
    let found = get(&store, &format!("m/r{round:03}")).await;
    let counts = check_mutations(round, found.as_ref(), acks);
    let in_round: u64 = counts.values().sum();
    assert_eq!(
        in_round,
        last - before,
        "round {round}: {in_round} mutations found, {} log entries added",
        last - before
    );
    let log = read_log(&store, before, last).await;
    for ack in acks {
        let entry = &log[(ack.seq - before - 1) as usize];
        let text = entry.to_json().to_string();
        assert!(
            text.contains(&key(ack.w, ack.k)),
            "round {round}: seq {} was acknowledged for {} but logs {text}",
            ack.seq,
            key(ack.w, ack.k)
        );
    }
    store.close().await.expect("close");
    last
}

/// Checks a round's mutations are all-or-nothing and include every acknowledged one.
/// Returns how many mutations of each writer are present.
fn check_mutations(round: u32, found: Option<&Value>, acks: &[Ack]) -> BTreeMap<u32, u64> {
    let empty = serde_json::Map::new();
    let found = found.and_then(Value::as_object).unwrap_or(&empty);
    let mut counts = BTreeMap::new();
    for w in 0..WRITERS {
        // Writer w's mutations are sequential: those present must be 0..n.
        let n = (0..)
            .take_while(|k| found.contains_key(&key(w, *k)))
            .count() as u64;
        for k in 0..n {
            let leaves = &found[&key(w, k)];
            let expected = if k + 1 < n {
                json!({"a": k, "b": format!("writer {w}")})
            } else {
                json!({"a": k, "b": format!("writer {w}"), "c": true})
            };
            assert_eq!(
                leaves,
                &expected,
                "round {round}: {} half-applied",
                key(w, k)
            );
        }
        counts.insert(w, n);
    }
    let total: u64 = counts.values().sum();
    assert_eq!(total as usize, found.len(), "round {round}: stray keys");
    for ack in acks {
        assert!(
            ack.k < counts[&ack.w],
            "round {round}: acknowledged {} (seq {}) is missing",
            key(ack.w, ack.k),
            ack.seq
        );
    }
    counts
}

/// The change log's entries `after+1 ..= last`, checked to have no gaps.
async fn read_log(store: &EmbeddedStore, after: u64, last: u64) -> Vec<Mutation> {
    let mut out = Vec::new();
    let mut next = after;
    while next < last {
        let LogRead::Changes(page) = store.changes(next, LOG_PAGE).await.expect("log") else {
            panic!("the log was compacted");
        };
        assert!(!page.is_empty(), "the log ends at {next}, before {last}");
        for change in page {
            assert_eq!(change.seq, next + 1, "gap in the change log");
            next = change.seq;
            out.push(change.mutation);
        }
    }
    assert_eq!(next, last);
    out
}

/// After the last round: the whole log, and every round's data, once more.
async fn verify_everything(dir: &Path, rounds: u32, last: u64) {
    let store = EmbeddedStore::open(dir).await.expect("final reopen");
    assert_eq!(store.last_seq().await.expect("last seq"), last);
    assert_eq!(read_log(&store, 0, last).await.len() as u64, last);
    let mut total = 0;
    for round in 0..rounds {
        let found = get(&store, &format!("m/r{round:03}")).await;
        total += check_mutations(round, found.as_ref(), &[])
            .values()
            .sum::<u64>();
    }
    assert_eq!(total, last, "one mutation per log entry");
    store.close().await.expect("close");
}
