//! SIGKILL test: a child process writes through the group committer and
//! prints every acknowledged sequence number; the parent SIGKILLs it at a
//! random moment, reopens the store and checks that
//!   * every acknowledged sequence number is in `log`,
//!   * `log` is gap-free 1..=N (batches are atomic),
//!   * `nodes` holds exactly `leaves * N` leaves (each mutation writes new,
//!     unique leaves, so nodes and log must agree: atomic across keyspaces).
//!
//! Rounds reuse the same directory, so recovery-after-recovery is exercised.

use crate::kora::{
    count_subtree, encode_path, init_meta, last_seq, todo_mutation, ulid_for, Committer, Rng,
};
use crate::store::{EngineSpec, Ks};
use anyhow::{bail, ensure, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Child side: write forever until killed.
pub fn child(spec: &EngineSpec, dir: &Path, writers: usize, leaves: usize) -> Result<()> {
    let store = (spec.open)(dir)?;
    init_meta(&*store)?;
    let committer = Arc::new(Committer::start(store, 1024)?);
    println!("ready");
    let salt = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let committer = committer.clone();
            std::thread::spawn(move || -> Result<()> {
                let mut rng = Rng::new(salt.wrapping_mul(31).wrapping_add(w as u64 + 1));
                let mut out = std::io::stdout();
                loop {
                    // fresh, unique todo per mutation
                    let id = format!("{}-{}", ulid_for(rng.next_u64()), std::process::id());
                    let seq = committer.submit(todo_mutation(&id, leaves, &mut rng, w as u64))?;
                    writeln!(out, "{seq}")?; // one write(2) per line: stdout is line-buffered
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer panicked")?;
    }
    Ok(())
}

pub struct CrashRound {
    pub acked: u64,
    pub max_acked: u64,
    pub recovered: u64,
    pub lost: u64,
    pub reopen: Duration,
}

pub struct CrashReport {
    pub rounds: Vec<CrashRound>,
    pub failures: Vec<String>,
}

/// One round: spawn, wait `run_for`, SIGKILL, verify.
fn round(
    spec: &EngineSpec,
    dir: &Path,
    writers: usize,
    leaves: usize,
    run_for: Duration,
) -> Result<CrashRound> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["crash-child", spec.label, dir.to_str().unwrap()])
        .args([writers.to_string(), leaves.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    match lines.next() {
        Some(Ok(l)) if l == "ready" => {}
        other => bail!("child did not start: {other:?}"),
    }
    let killer = std::thread::spawn(move || {
        std::thread::sleep(run_for);
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    // Everything the child printed before dying is still in the pipe.
    let mut acked = Vec::new();
    for l in lines {
        acked.push(l?.trim().parse::<u64>().context("bad ack line")?);
    }
    killer.join().unwrap();
    let status = child.wait()?;
    ensure!(!status.success(), "child exited on its own: {status}");

    let t = Instant::now();
    let store = (spec.open)(dir)?;
    let reopen = t.elapsed();
    let n = last_seq(&*store)?;
    let mut present = vec![false; n as usize + 1];
    let mut expect = 1u64;
    store.scan(Ks::Log, Bound::Unbounded, Bound::Unbounded, &mut |k, _| {
        let s = u64::from_be_bytes(k.try_into().unwrap());
        if s == expect {
            present[s as usize] = true;
        }
        expect += 1;
        true
    })?;
    ensure!(
        expect == n + 1,
        "log has {} entries, last seq {n}",
        expect - 1
    );
    ensure!(present[1..].iter().all(|p| *p), "gap in log");
    let lost = acked
        .iter()
        .filter(|&&s| s > n || !present[s as usize])
        .count() as u64;
    let leaves_found = count_subtree(&*store, &encode_path(&["todos"]))?;
    ensure!(
        leaves_found == n * leaves as u64,
        "nodes/log mismatch: {leaves_found} leaves for {n} log entries"
    );
    store.close()?;
    Ok(CrashRound {
        acked: acked.len() as u64,
        max_acked: acked.iter().copied().max().unwrap_or(0),
        recovered: n,
        lost,
        reopen,
    })
}

/// `rounds` small rounds (8 writers, 1-leaf, killed after 0.2–1.2 s) on one
/// directory. Failures are collected, not fatal, so the report shows them.
pub fn run(spec: &EngineSpec, dir: &Path, rounds: usize) -> Result<CrashReport> {
    let mut rng = Rng::new(7);
    let mut report = CrashReport {
        rounds: Vec::new(),
        failures: Vec::new(),
    };
    for i in 0..rounds {
        let run_for = Duration::from_millis(200 + rng.below(1000));
        match round(spec, dir, 8, 1, run_for) {
            Ok(r) => {
                eprintln!(
                    "    round {i}: killed after {run_for:?}; acked {} (max seq {}), recovered {} entries, reopen {:?}",
                    r.acked, r.max_acked, r.recovered, r.reopen
                );
                if r.lost > 0 {
                    report
                        .failures
                        .push(format!("round {i}: {} acknowledged mutations lost", r.lost));
                }
                report.rounds.push(r)
            }
            Err(e) => report.failures.push(format!("round {i}: {e:#}")),
        }
    }
    Ok(report)
}

/// One bigger round: 64 writers, 10-leaf mutations, killed after `secs`
/// seconds, to see recovery time on a larger store.
pub fn big_round(spec: &EngineSpec, dir: &Path, secs: u64) -> Result<CrashRound> {
    round(spec, dir, 64, 10, Duration::from_secs(secs))
}
